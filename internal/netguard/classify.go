// Package netguard keeps outbound webhook requests away from addresses they
// must not reach: the node itself, private networks, link-local and cloud
// metadata endpoints, and other special-purpose ranges (SSRF protection).
//
// Checking a URL when a destination is configured (Policy.CheckURL) gives
// an early, friendly error, but a host name can resolve to anything, and to
// something else on the next lookup. The check that holds is at dial time:
// set Policy.Control as the net.Dialer's Control function, so the address
// actually connected to is checked after resolution. Do not route webhook
// requests through a proxy (http.Transport.Proxy must be nil), or the proxy
// is what gets checked.
package netguard

import "net/netip"

// Reasons an address is blocked, as returned by Classify.
const (
	ReasonInvalid     = "invalid"
	ReasonUnspecified = "unspecified"
	ReasonLoopback    = "loopback"
	ReasonPrivate     = "private"
	ReasonCGNAT       = "cgnat"
	ReasonLinkLocal   = "link-local"
	ReasonMetadata    = "metadata"
	ReasonMulticast   = "multicast"
	ReasonBroadcast   = "broadcast"
	ReasonReserved    = "reserved"
)

// rangeReason is a special-purpose range and why it is blocked.
type rangeReason struct {
	prefix netip.Prefix
	reason string
}

var (
	// metadata are cloud instance metadata endpoints (AWS, GCP, Azure,
	// OpenStack, …; AWS over IPv6). They sit in ranges blocked anyway but
	// earn their own reason.
	metadata = []netip.Addr{
		netip.MustParseAddr("169.254.169.254"),
		netip.MustParseAddr("fd00:ec2::254"),
	}

	broadcast = netip.MustParseAddr("255.255.255.255")

	// blocked4 are the IPv4 ranges of the IANA special-purpose registry that
	// are not globally reachable, plus multicast and the reserved 240/4.
	blocked4 = []rangeReason{
		{netip.MustParsePrefix("0.0.0.0/8"), ReasonReserved},       // "this network"
		{netip.MustParsePrefix("10.0.0.0/8"), ReasonPrivate},       // RFC 1918
		{netip.MustParsePrefix("100.64.0.0/10"), ReasonCGNAT},      // RFC 6598 shared address space
		{netip.MustParsePrefix("127.0.0.0/8"), ReasonLoopback},     // RFC 1122
		{netip.MustParsePrefix("169.254.0.0/16"), ReasonLinkLocal}, // RFC 3927
		{netip.MustParsePrefix("172.16.0.0/12"), ReasonPrivate},    // RFC 1918
		{netip.MustParsePrefix("192.0.0.0/24"), ReasonReserved},    // IETF protocol assignments
		{netip.MustParsePrefix("192.0.2.0/24"), ReasonReserved},    // TEST-NET-1 (documentation)
		{netip.MustParsePrefix("192.88.99.0/24"), ReasonReserved},  // 6to4 relay anycast (deprecated)
		{netip.MustParsePrefix("192.168.0.0/16"), ReasonPrivate},   // RFC 1918
		{netip.MustParsePrefix("198.18.0.0/15"), ReasonReserved},   // benchmarking
		{netip.MustParsePrefix("198.51.100.0/24"), ReasonReserved}, // TEST-NET-2 (documentation)
		{netip.MustParsePrefix("203.0.113.0/24"), ReasonReserved},  // TEST-NET-3 (documentation)
		{netip.MustParsePrefix("224.0.0.0/4"), ReasonMulticast},
		{netip.MustParsePrefix("240.0.0.0/4"), ReasonReserved}, // future use
	}

	// blocked6 are the IPv6 ranges that are not globally reachable. The
	// unspecified and loopback addresses, IPv4-mapped addresses and
	// addresses embedding IPv4 ones are handled before this table.
	blocked6 = []rangeReason{
		{netip.MustParsePrefix("::/8"), ReasonReserved},           // IPv4-compatible and other reserved
		{netip.MustParsePrefix("64:ff9b:1::/48"), ReasonReserved}, // local-use NAT64 (RFC 8215)
		{netip.MustParsePrefix("100::/64"), ReasonReserved},       // discard-only (RFC 6666)
		{netip.MustParsePrefix("2001::/32"), ReasonReserved},      // Teredo
		{netip.MustParsePrefix("2001:2::/48"), ReasonReserved},    // benchmarking
		{netip.MustParsePrefix("2001:10::/28"), ReasonReserved},   // ORCHID
		{netip.MustParsePrefix("2001:20::/28"), ReasonReserved},   // ORCHIDv2
		{netip.MustParsePrefix("2001:db8::/32"), ReasonReserved},  // documentation
		{netip.MustParsePrefix("3fff::/20"), ReasonReserved},      // documentation (RFC 9637)
		{netip.MustParsePrefix("5f00::/16"), ReasonReserved},      // SRv6 SIDs (RFC 9602)
		{netip.MustParsePrefix("fc00::/7"), ReasonPrivate},        // unique local
		{netip.MustParsePrefix("fe80::/10"), ReasonLinkLocal},
		{netip.MustParsePrefix("fec0::/10"), ReasonPrivate}, // site-local (deprecated)
		{netip.MustParsePrefix("ff00::/8"), ReasonMulticast},
	}

	// nat64 is the well-known NAT64 prefix (RFC 6052): the last 32 bits
	// are an IPv4 address the translator connects to.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	// sixToFour is 6to4 (RFC 3056): bits 16-47 are an IPv4 address.
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Classify reports whether outbound requests to ip are blocked by default,
// and why: one of the Reason constants. IPv4-mapped IPv6 addresses are
// judged as the IPv4 address they map; NAT64 (64:ff9b::/96) and 6to4
// (2002::/16) addresses by the IPv4 address they embed. A zone is ignored.
func Classify(ip netip.Addr) (reason string, blocked bool) {
	if !ip.IsValid() {
		return ReasonInvalid, true
	}
	ip = ip.WithZone("").Unmap()
	for _, m := range metadata {
		if ip == m {
			return ReasonMetadata, true
		}
	}
	if ip.Is4() {
		if ip == broadcast {
			return ReasonBroadcast, true
		}
		if ip.IsUnspecified() {
			return ReasonUnspecified, true
		}
		return lookup(blocked4, ip)
	}
	switch {
	case ip.IsUnspecified():
		return ReasonUnspecified, true
	case ip.IsLoopback():
		return ReasonLoopback, true
	case nat64.Contains(ip):
		b := ip.As16()
		return Classify(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(ip):
		b := ip.As16()
		return Classify(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return lookup(blocked6, ip)
}

// lookup returns the reason of the first range in table containing ip.
func lookup(table []rangeReason, ip netip.Addr) (string, bool) {
	for _, r := range table {
		if r.prefix.Contains(ip) {
			return r.reason, true
		}
	}
	return "", false
}
