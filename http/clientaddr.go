package http

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxies parses a comma-separated list of CIDRs such as
// "10.0.0.0/8, ::1"; a bare address stands for itself alone (/32 or /128).
// Empty elements are skipped. The error names the value that is wrong.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		p, err := parseProxy(v)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseProxy(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, &proxyError{v}
		}
		// 192.168.1.7/24 is meant as the network, not as one host.
		p = p.Masked()
		if p.Addr().Is4In6() {
			// Peers are compared unmapped, so ::ffff:10.0.0.0/104 must be
			// 10.0.0.0/8 to ever match.
			if p.Bits() < 96 {
				return netip.Prefix{}, &proxyError{v}
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, &proxyError{v}
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

type proxyError struct{ value string }

func (e *proxyError) Error() string {
	return "\"" + e.value + "\" is not an IP address or CIDR such as 10.0.0.0/8"
}

// peerAddr is the address of the TCP peer, unmapped so that an IPv4 client
// of a dual-stack listener is keyed like one of an IPv4 listener.
func peerAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	// RemoteAddr has no port in handlers that tests call directly.
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

func (s *Server) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range s.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address the request came from: the TCP peer, or, when
// the peer is a trusted proxy, the last address in X-Forwarded-For that is
// not itself trusted. Each proxy appends the address of its own peer, so the
// entries right of the first untrusted one were written by proxies we trust
// and the ones left of it by whoever the client is: only that one entry is
// both believable and the client's.
//
// The walk goes from the right over all X-Forwarded-For headers, taken as
// one comma-separated list; empty elements are skipped. An entry that is not
// an address (with or without a port) stops the walk: a trusted proxy wrote
// it, so it is not the client's to forge, and the proxy itself, the last
// address read, is the best that can be said. When every entry is trusted,
// the leftmost is the client.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	addr := peerAddr(r)
	if !s.trusted(addr) {
		return addr
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		entries := strings.Split(values[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			e := strings.TrimSpace(entries[j])
			if e == "" {
				continue
			}
			a, ok := parseForwarded(e)
			if !ok {
				return addr
			}
			addr = a
			if !s.trusted(a) {
				return a
			}
		}
	}
	return addr
}

// parseForwarded reads one X-Forwarded-For entry: an address, or an address
// with a port as some proxies write it ("192.0.2.7:4711", "[2001:db8::1]:4711").
func parseForwarded(e string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(e); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(e); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	// "[2001:db8::1]" without a port.
	if h, _, err := net.SplitHostPort(e + ":0"); err == nil && strings.HasPrefix(e, "[") {
		if a, err := netip.ParseAddr(h); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// viaHTTPS reports whether the client reached us over TLS: directly, or, as
// a trusted proxy says in X-Forwarded-Proto, to that proxy. Of several
// values the last counts, since it is the one our peer wrote or passed on;
// from any other peer the header is ignored, because a client could claim
// anything.
func (s *Server) viaHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !s.trusted(peerAddr(r)) {
		return false
	}
	values := r.Header.Values("X-Forwarded-Proto")
	for i := len(values) - 1; i >= 0; i-- {
		entries := strings.Split(values[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			if e := strings.TrimSpace(entries[j]); e != "" {
				return strings.EqualFold(e, "https")
			}
		}
	}
	return false
}

// throttleKey is the address a client is throttled by: IPv6 clients by
// their /64, since one host is usually given a whole /64 and could otherwise
// rotate through 2^64 addresses.
func throttleKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
