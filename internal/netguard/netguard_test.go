package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	t.Parallel()

	tests := []struct {
		ip     string
		reason string // empty: allowed
	}{
		{"127.0.0.1", ReasonLoopback},
		{"127.255.0.9", ReasonLoopback},
		{"::1", ReasonLoopback},
		{"10.0.0.1", ReasonPrivate},
		{"172.16.0.1", ReasonPrivate},
		{"172.31.255.255", ReasonPrivate},
		{"192.168.1.1", ReasonPrivate},
		{"fc00::1", ReasonPrivate},
		{"fd12:3456::1", ReasonPrivate},
		{"fec0::1", ReasonPrivate},
		{"100.64.1.1", ReasonCGNAT},
		{"100.127.255.254", ReasonCGNAT},
		{"169.254.169.254", ReasonMetadata},
		{"fd00:ec2::254", ReasonMetadata},
		{"::ffff:169.254.169.254", ReasonMetadata},
		{"169.254.1.1", ReasonLinkLocal},
		{"fe80::1", ReasonLinkLocal},
		{"fe80::1%eth0", ReasonLinkLocal},
		{"0.0.0.0", ReasonUnspecified},
		{"::", ReasonUnspecified},
		{"0.1.2.3", ReasonReserved},
		{"224.0.0.1", ReasonMulticast},
		{"239.255.255.250", ReasonMulticast},
		{"ff02::1", ReasonMulticast},
		{"255.255.255.255", ReasonBroadcast},
		{"240.0.0.1", ReasonReserved},
		{"192.0.2.10", ReasonReserved},
		{"198.51.100.7", ReasonReserved},
		{"203.0.113.200", ReasonReserved},
		{"198.18.0.1", ReasonReserved},
		{"198.19.255.255", ReasonReserved},
		{"192.0.0.8", ReasonReserved},
		{"2001:db8::1", ReasonReserved},
		{"3fff::1", ReasonReserved},
		{"2001:2::1", ReasonReserved},
		{"2001::1", ReasonReserved},
		{"100::1", ReasonReserved},
		{"::127.0.0.1", ReasonReserved},
		{"::ffff:10.0.0.1", ReasonPrivate},
		{"::ffff:127.0.0.1", ReasonLoopback},
		{"64:ff9b::a00:1", ReasonPrivate},      // NAT64 of 10.0.0.1
		{"64:ff9b::7f00:1", ReasonLoopback},    // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", ReasonMetadata}, // NAT64 of 169.254.169.254
		{"2002:c0a8:0101::1", ReasonPrivate},   // 6to4 of 192.168.1.1
		{"64:ff9b:1::1", ReasonReserved},       // local-use NAT64
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"172.32.0.1", ""},
		{"169.255.0.1", ""},
		{"198.20.0.1", ""},
		{"223.255.255.255", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""},     // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},      // 6to4 of 8.8.8.8
		{"2606:4700:4700::1111", ""}, // a public v6
		{"2a00:1450:4001:80b::200e", ""},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.ip)
		reason, blocked := Classify(ip)
		require.Equal(t, tt.reason, reason, tt.ip)
		require.Equal(t, tt.reason != "", blocked, tt.ip)
	}

	reason, blocked := Classify(netip.Addr{})
	require.True(t, blocked)
	require.Equal(t, ReasonInvalid, reason)
}

func TestCheckIP(t *testing.T) {
	t.Parallel()

	ip := netip.MustParseAddr
	tests := []struct {
		name    string
		policy  Policy
		ip      string
		blocked string // reason; empty: allowed
	}{
		{"default loopback", Policy{}, "127.0.0.1", ReasonLoopback},
		{"default private", Policy{}, "10.0.0.1", ReasonPrivate},
		{"default metadata", Policy{}, "169.254.169.254", ReasonMetadata},
		{"default v6 loopback", Policy{}, "::1", ReasonLoopback},
		{"default mapped private", Policy{}, "::ffff:10.0.0.1", ReasonPrivate},
		{"default cgnat", Policy{}, "100.64.1.1", ReasonCGNAT},
		{"default public", Policy{}, "8.8.8.8", ""},
		{"default public v6", Policy{}, "2606:4700:4700::1111", ""},
		{"dev loopback", Policy{AllowLoopback: true}, "127.0.0.1", ""},
		{"dev v6 loopback", Policy{AllowLoopback: true}, "::1", ""},
		{"dev still no private", Policy{AllowLoopback: true}, "192.168.0.1", ReasonPrivate},
		{"dev still no metadata", Policy{AllowLoopback: true}, "169.254.169.254", ReasonMetadata},
		{"private allowed", Policy{AllowPrivate: true}, "10.0.0.1", ""},
		{"private allows cgnat", Policy{AllowPrivate: true}, "100.64.1.1", ""},
		{"private allows ula", Policy{AllowPrivate: true}, "fd12::1", ""},
		{"private not metadata", Policy{AllowPrivate: true}, "169.254.169.254", ReasonMetadata},
		{"private not aws v6 metadata", Policy{AllowPrivate: true}, "fd00:ec2::254", ReasonMetadata},
		{"private not loopback", Policy{AllowPrivate: true}, "127.0.0.1", ReasonLoopback},
		{"private not link-local", Policy{AllowPrivate: true}, "169.254.3.4", ReasonLinkLocal},
		{"allowlist", Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}, "10.1.2.3", ""},
		{"allowlist unmasked prefix", Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/16")}}, "10.1.9.9", ""},
		{"allowlist outside", Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}, "10.2.0.1", ReasonPrivate},
		{"allowlist mapped", Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}, "::ffff:10.1.0.1", ""},
		{"allowlist v6 zone", Policy{Allow: []netip.Prefix{netip.MustParsePrefix("fe80::/64")}}, "fe80::1%eth0", ""},
		{"allowlist metadata explicitly", Policy{Allow: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}}, "169.254.169.254", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.CheckIP(ip(tt.ip))
			if tt.blocked == "" {
				require.NoError(t, err)
				return
			}
			var be *BlockedError
			require.ErrorAs(t, err, &be)
			require.Equal(t, tt.blocked, be.Reason)
			require.Equal(t, ip(tt.ip), be.IP)
			require.ErrorIs(t, err, ErrBlocked)
		})
	}
}

func TestBlockedErrorMessage(t *testing.T) {
	t.Parallel()

	err := Policy{}.CheckIP(netip.MustParseAddr("10.0.0.1"))
	require.EqualError(t, err, "address 10.0.0.1 is private: outbound requests to it are not allowed")

	err = Policy{}.CheckIP(netip.MustParseAddr("169.254.169.254"))
	require.EqualError(t, err, "address 169.254.169.254 is a cloud metadata endpoint: outbound requests to it are not allowed")

	err = Policy{}.CheckURL("http://LocalHost:8080/hook")
	require.EqualError(t, err, `host "LocalHost" is loopback: outbound requests to it are not allowed`)

	err = Policy{}.CheckURL("http://[::ffff:10.0.0.1]/")
	require.EqualError(t, err, `address ::ffff:10.0.0.1 is private: outbound requests to it are not allowed`)

	err = Policy{}.CheckURL("http://[fe80::1%25eth0]/")
	require.EqualError(t, err, `address fe80::1%eth0 is link-local: outbound requests to it are not allowed`)

	err = (&BlockedError{IP: netip.MustParseAddr("::1"), Host: "ip6-localhost", Reason: ReasonLoopback})
	require.EqualError(t, err, `address ::1 (host "ip6-localhost") is loopback: outbound requests to it are not allowed`)
}

func TestCheckURL(t *testing.T) {
	t.Parallel()

	const (
		ok      = ""
		invalid = "invalid"
	)
	tests := []struct {
		url    string
		policy Policy
		want   string // ok, invalid, or the block reason
	}{
		{"https://example.com/hook", Policy{}, ok},
		{"http://example.com:8080/hook?x=1", Policy{}, ok},
		{"HTTPS://Example.COM/", Policy{}, ok},
		{"https://8.8.8.8/hook", Policy{}, ok},
		{"https://[2606:4700:4700::1111]:443/", Policy{}, ok},
		{"https://1e100.net/", Policy{}, ok},
		{"https://123.example.com/", Policy{}, ok},
		{"https://user:pass@example.com/", Policy{}, ok},
		{"https://internal.example/", Policy{}, ok}, // checked at dial time

		{"ftp://example.com/", Policy{}, invalid},
		{"file:///etc/passwd", Policy{}, invalid},
		{"gopher://127.0.0.1/", Policy{}, invalid},
		{"javascript:alert(1)", Policy{}, invalid},
		{"example.com/hook", Policy{}, invalid},
		{"//example.com/hook", Policy{}, invalid},
		{"", Policy{}, invalid},
		{"http://", Policy{}, invalid},
		{"http:///path", Policy{}, invalid},
		{"http:example.com", Policy{}, invalid},
		{"http://:8080/", Policy{}, invalid},
		{"http://./", Policy{}, invalid},
		{"http://exa mple.com/", Policy{}, invalid},
		{"http://[::1/", Policy{}, invalid},
		{"http://[zz::1]/", Policy{}, invalid},
		{"http://example.com:99999999999/", Policy{}, invalid},

		{"http://127.0.0.1/", Policy{}, ReasonLoopback},
		{"http://127.0.0.1:8080/", Policy{}, ReasonLoopback},
		{"http://[::1]:8080/", Policy{}, ReasonLoopback},
		{"http://[::ffff:127.0.0.1]/", Policy{}, ReasonLoopback},
		{"http://[::ffff:7f00:1]/", Policy{}, ReasonLoopback},
		{"http://10.0.0.1/", Policy{}, ReasonPrivate},
		{"http://169.254.169.254/latest/meta-data/", Policy{}, ReasonMetadata},
		{"http://[fd00:ec2::254]/", Policy{}, ReasonMetadata},
		{"http://[fe80::1%25eth0]/", Policy{}, ReasonLinkLocal},
		{"http://0.0.0.0/", Policy{}, ReasonUnspecified},
		{"http://[::]/", Policy{}, ReasonUnspecified},
		{"http://100.64.0.1/", Policy{}, ReasonCGNAT},
		{"http://%31%32%37.0.0.1/", Policy{}, invalid},
		{"http://example.com:0/", Policy{}, invalid},
		{"http://localhost/", Policy{}, ReasonLoopback},
		{"http://localhost./", Policy{}, ReasonLoopback},
		{"http://LOCALHOST:3000/", Policy{}, ReasonLoopback},
		{"http://api.localhost/", Policy{}, ReasonLoopback},

		// Numeric hosts in legacy forms are refused whatever they decode to.
		{"http://2130706433/", Policy{}, invalid},
		{"http://127.1/", Policy{}, invalid},
		{"http://0x7f.1/", Policy{}, invalid},
		{"http://0x7f000001/", Policy{}, invalid},
		{"http://0177.0.0.1/", Policy{}, invalid},
		{"http://127.0.0.1./", Policy{}, invalid},
		{"http://010.0.0.1/", Policy{}, invalid},
		{"http://1.2.3.4.5/", Policy{}, invalid},
		{"http://0X7F.0.0.1/", Policy{}, invalid},
		{"http://134744072/", Policy{}, invalid}, // 8.8.8.8, but not canonical
		{"http://example.0x/", Policy{}, invalid},
		{"http://2130706433/", Policy{AllowLoopback: true}, invalid},

		{"http://localhost:8080/", Policy{AllowLoopback: true}, ok},
		{"http://127.0.0.1:8080/", Policy{AllowLoopback: true}, ok},
		{"http://[::1]:8080/", Policy{AllowLoopback: true}, ok},
		{"http://10.0.0.1/", Policy{AllowPrivate: true}, ok},
		{"http://10.0.0.1/", Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}}, ok},
		{"http://169.254.169.254/", Policy{AllowPrivate: true, AllowLoopback: true}, ReasonMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.CheckURL(tt.url)
			switch tt.want {
			case ok:
				require.NoError(t, err)
			case invalid:
				require.ErrorIs(t, err, ErrInvalidURL)
				require.NotErrorIs(t, err, ErrBlocked)
			default:
				var be *BlockedError
				require.ErrorAs(t, err, &be)
				require.Equal(t, tt.want, be.Reason)
				require.NotEmpty(t, be.Host)
			}
		})
	}
}

func TestControl(t *testing.T) {
	t.Parallel()

	var p Policy
	require.ErrorIs(t, p.Control("tcp4", "127.0.0.1:80", nil), ErrBlocked)
	require.ErrorIs(t, p.Control("tcp6", "[::1]:80", nil), ErrBlocked)
	require.ErrorIs(t, p.Control("tcp6", "[fe80::1%eth0]:80", nil), ErrBlocked)
	require.ErrorIs(t, p.Control("tcp4", "169.254.169.254:80", nil), ErrBlocked)
	require.ErrorIs(t, p.Control("unix", "/var/run/docker.sock", nil), ErrBlocked)
	require.ErrorIs(t, p.Control("tcp", "example.com:80", nil), ErrBlocked)
	require.NoError(t, p.Control("tcp4", "8.8.8.8:443", nil))
	require.NoError(t, p.Control("tcp6", "[2606:4700:4700::1111]:443", nil))
	require.NoError(t, Policy{AllowLoopback: true}.Control("tcp4", "127.0.0.1:80", nil))
}

// guardedClient returns an HTTP client whose every connection passes
// through p.Control.
func guardedClient(p Policy) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: p.Control}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       dialer.DialContext,
			DisableKeepAlives: true,
		},
	}
}

func TestDialGuard(t *testing.T) {
	t.Parallel()

	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)

	get := func(p Policy, url string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		require.NoError(t, err)
		resp, err := guardedClient(p).Do(req)
		if resp != nil {
			resp.Body.Close()
		}
		return resp, err
	}

	// Refused at dial time, even though the URL was never checked: no
	// connection reaches the server.
	_, err = get(Policy{}, srv.URL)
	var be *BlockedError
	require.ErrorAs(t, err, &be)
	require.Equal(t, ReasonLoopback, be.Reason)
	require.ErrorIs(t, err, ErrBlocked)

	// A name resolving to loopback is caught the same way (what a
	// rebinding DNS answer would do).
	_, err = get(Policy{}, "http://localhost:"+port+"/")
	require.ErrorIs(t, err, ErrBlocked)

	// Private allowed is still not loopback.
	_, err = get(Policy{AllowPrivate: true}, srv.URL)
	require.ErrorIs(t, err, ErrBlocked)
	require.Zero(t, hits.Load())

	// Dev mode lets it through.
	resp, err := get(Policy{AllowLoopback: true}, srv.URL)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)

	// So does an explicit allowlist entry.
	resp, err = get(Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, srv.URL)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, int32(2), hits.Load())
}

func TestEndsInNumber(t *testing.T) {
	t.Parallel()

	for host, want := range map[string]bool{
		"1": true, "127.1": true, "0x7f.1": true, "0x": true, "a.0x1f": true, "1.2.3.4.": true,
		"example.com": false, "0x7g": false, "1e100.net": false, "a.": false, "0x1.b": false, "x1": false,
	} {
		require.Equal(t, want, endsInNumber(host), host)
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/hook", "http://127.0.0.1:8080/", "http://[::1]/", "http://[fe80::1%25eth0]/",
		"http://2130706433/", "http://0x7f.1/", "http://localhost./", "ftp://x/", "http://%31%32%37.0.0.1/",
		"http://[::ffff:169.254.169.254]/", "http:opaque", "", "http://a.localhost:1/",
	} {
		f.Add(s)
	}
	policies := []Policy{{}, {AllowLoopback: true, AllowPrivate: true}}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, p := range policies {
			err := p.CheckURL(raw)
			if err == nil {
				continue
			}
			var be *BlockedError
			if errors.As(err, &be) {
				require.NotEmpty(t, be.Reason)
				require.NotEmpty(t, be.Host)
				require.True(t, strings.HasSuffix(err.Error(), "outbound requests to it are not allowed"))
				// A blocked literal address is blocked by CheckIP too.
				if be.IP.IsValid() {
					require.Error(t, p.CheckIP(be.IP))
				}
				continue
			}
			require.ErrorIs(t, err, ErrInvalidURL)
		}
	})
}
