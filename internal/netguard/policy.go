package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// ErrBlocked matches (with errors.Is) every *BlockedError.
var ErrBlocked = errors.New("outbound address not allowed")

// ErrInvalidURL is wrapped by CheckURL's errors for URLs that are not
// usable webhook URLs at all: unparsable, not http(s), without a host, or
// with a host that looks numeric but is not a canonical IP address.
var ErrInvalidURL = errors.New("invalid webhook URL")

// BlockedError reports an outbound request refused by a Policy.
type BlockedError struct {
	// IP is the refused address; the zero Addr when a host name was refused
	// (e.g. "localhost").
	IP netip.Addr
	// Host is the host as written in the URL, when a URL was checked.
	Host string
	// Reason is why, one of the Reason constants.
	Reason string
}

// Error implements error, e.g. "address 10.0.0.1 is private: outbound
// requests to it are not allowed".
func (e *BlockedError) Error() string {
	var subject string
	switch {
	case e.IP.IsValid() && e.Host != "" && e.Host != e.IP.String():
		subject = fmt.Sprintf("address %s (host %q)", e.IP, e.Host)
	case e.IP.IsValid():
		subject = "address " + e.IP.String()
	default:
		subject = fmt.Sprintf("host %q", e.Host)
	}
	return subject + " is " + describe(e.Reason) + ": outbound requests to it are not allowed"
}

// Is makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// describe phrases a reason for messages.
func describe(reason string) string {
	switch reason {
	case ReasonCGNAT:
		return "in the shared (carrier-grade NAT) range"
	case ReasonMetadata:
		return "a cloud metadata endpoint"
	case ReasonInvalid:
		return "not a valid IP address"
	case "":
		return "blocked"
	default:
		return reason
	}
}

// Policy decides which addresses outbound requests may reach. The zero
// Policy blocks everything Classify blocks.
type Policy struct {
	// AllowLoopback allows loopback addresses and "localhost" (dev mode).
	AllowLoopback bool
	// AllowPrivate allows private (RFC 1918, fc00::/7) and shared
	// (100.64.0.0/10) addresses.
	AllowPrivate bool
	// Allow lists prefixes always allowed, checked first.
	Allow []netip.Prefix
}

// CheckIP returns nil if outbound requests to ip are allowed, else a
// *BlockedError.
func (p Policy) CheckIP(ip netip.Addr) error {
	bare := ip.WithZone("")
	for _, prefix := range p.Allow {
		prefix = prefix.Masked()
		if prefix.Contains(bare) || prefix.Contains(bare.Unmap()) {
			return nil
		}
	}
	reason, blocked := Classify(ip)
	switch {
	case !blocked:
		return nil
	case reason == ReasonLoopback && p.AllowLoopback:
		return nil
	case (reason == ReasonPrivate || reason == ReasonCGNAT) && p.AllowPrivate:
		return nil
	}
	return &BlockedError{IP: ip, Reason: reason}
}

// CheckURL checks a webhook URL before use: it must parse, be http or
// https, have a host, and have a port from 1 to 65535 if any. A literal IP
// host (dotted quad, bracketed IPv6, with or without a zone) must pass
// CheckIP; a host that looks numeric but is not a canonical dotted quad
// ("2130706433", "127.1", "0x7f.1", "0177.0.0.1"), which some resolvers
// read as an address, is refused; so are "localhost" and "*.localhost"
// unless AllowLoopback. Other host names pass: what they resolve to is
// checked at dial time by Control. Errors are a *BlockedError or wrap
// ErrInvalidURL.
func (p Policy) CheckURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q is not http or https", ErrInvalidURL, u.Scheme)
	}
	host := u.Hostname()
	if u.Opaque != "" || host == "" {
		return fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: port %q is out of range", ErrInvalidURL, port)
		}
	}
	return p.checkHost(host)
}

// checkHost checks the host part of a URL, without brackets or port.
func (p Policy) checkHost(host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := p.CheckIP(ip); err != nil {
			var be *BlockedError
			if errors.As(err, &be) {
				be.Host = host
			}
			return err
		}
		return nil
	}
	if strings.Contains(host, ":") {
		return fmt.Errorf("%w: host %q is not a valid IPv6 address", ErrInvalidURL, host)
	}
	name := strings.ToLower(host)
	if endsInNumber(name) {
		return fmt.Errorf("%w: host %q looks like an IP address but is not a canonical one", ErrInvalidURL, host)
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if (name == "localhost" || strings.HasSuffix(name, ".localhost")) && !p.AllowLoopback {
		return &BlockedError{Host: host, Reason: ReasonLoopback}
	}
	return nil
}

// endsInNumber reports whether a host's last label (ignoring one trailing
// dot) is decimal digits or "0x" and hex digits: the WHATWG URL standard
// parses such hosts as IPv4 addresses in any of the legacy inet_aton
// forms.
func endsInNumber(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// Control checks the address a connection is about to be made to. Set it
// as net.Dialer.Control: it runs after name resolution, on the IP actually
// dialled, so DNS rebinding cannot slip past CheckURL. Its errors are
// *BlockedError.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return &BlockedError{Host: address, Reason: ReasonInvalid}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return &BlockedError{Host: host, Reason: ReasonInvalid}
	}
	return p.CheckIP(ip)
}
