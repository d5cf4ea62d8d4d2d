package http

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// SetPasswordCheckHook makes s call f, with the throttle key of the client,
// each time it is about to hash a password: tests count the hashes a flood
// costs.
func SetPasswordCheckHook(s *Server, f func(client netip.Addr)) { s.onPasswordCheck = f }

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestLoginThrottleMemoryIsBounded sprays failed logins from ever new
// addresses against ever new logins: the maps stay within their caps, and
// once the windows have passed they are forgotten.
func TestLoginThrottleMemoryIsBounded(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	th := newLoginThrottle(clock.Now)
	n := maxThrottledAddrs + maxThrottledLogins
	for i := range n {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		at, err := th.begin(addr, fmt.Sprintf("user%d", i))
		if err != nil {
			t.Fatalf("attempt %d from a new address refused: %v", i, err)
		}
		at.finish(true)
		if i%1000 == 0 {
			clock.Advance(time.Millisecond)
		}
	}
	if len(th.addrs) > maxThrottledAddrs || len(th.logins) > maxThrottledLogins {
		t.Fatalf("after %d sprayed failures the throttle holds %d addresses and %d logins; caps are %d and %d",
			n, len(th.addrs), len(th.logins), maxThrottledAddrs, maxThrottledLogins)
	}

	clock.Advance(loginFailureWindow + time.Second)
	at, err := th.begin(netip.MustParseAddr("192.0.2.1"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	at.finish(false)
	if len(th.addrs) != 0 || len(th.logins) != 0 {
		t.Fatalf("after the windows passed the throttle still holds %d addresses and %d logins", len(th.addrs), len(th.logins))
	}
}

// TestLoginThrottleKeepsHeavyHittersWhenFull: when the address map is full
// of live entries, the one that is evicted is one with few failures, not an
// address that has used up its budget.
func TestLoginThrottleKeepsHeavyHittersWhenFull(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	th := newLoginThrottle(clock.Now)
	attacker := netip.MustParseAddr("203.0.113.1")
	for range addrFailureLimit {
		at, err := th.begin(attacker, "bob")
		if err != nil {
			t.Fatal(err)
		}
		at.finish(true)
	}
	for i := range 2 * maxThrottledAddrs {
		at, err := th.begin(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), "x")
		if err != nil {
			t.Fatal(err)
		}
		at.finish(true)
	}
	if _, err := th.begin(attacker, "bob"); err == nil {
		t.Fatal("the address that used its budget was forgotten while the map was full")
	}
}

// TestPublishLimiterForgetsFullBuckets: a user who stopped publishing long
// enough to have a full bucket again is not remembered.
func TestPublishLimiterForgetsFullBuckets(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	p := newPublishLimiter(5, clock.Now)
	for id := range int64(1000) {
		if err := p.allow(id); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(throttleSweepInterval)
	if err := p.allow(5000); err != nil {
		t.Fatal(err)
	}
	if len(p.users) != 1 {
		t.Fatalf("the limiter remembers %d users, want only the one that just published", len(p.users))
	}
}

// TestClientAddr walks X-Forwarded-For as the doc of clientAddr says.
func TestClientAddr(t *testing.T) {
	trusted, err := ParseTrustedProxies("127.0.0.1, 10.0.0.0/8, 2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{TrustedProxies: trusted}
	cases := []struct {
		name   string
		peer   string
		xff    []string
		want   string
		secure bool
	}{
		{"untrusted peer: header ignored", "192.0.2.9:5000", []string{"203.0.113.1"}, "192.0.2.9", false},
		{"trusted peer, no header", "127.0.0.1:5000", nil, "127.0.0.1", false},
		{"one proxy", "127.0.0.1:5000", []string{"203.0.113.1"}, "203.0.113.1", false},
		{"client-written entries on the left are not believed", "127.0.0.1:5000", []string{"6.6.6.6, 203.0.113.1"}, "203.0.113.1", false},
		{"trusted hops are skipped", "127.0.0.1:5000", []string{"6.6.6.6, 203.0.113.1, 10.1.2.3"}, "203.0.113.1", false},
		{"several headers are one list", "127.0.0.1:5000", []string{"6.6.6.6", "203.0.113.1", "10.1.2.3"}, "203.0.113.1", false},
		{"all trusted: the leftmost", "127.0.0.1:5000", []string{"10.9.9.9, 10.1.2.3"}, "10.9.9.9", false},
		{"empty elements skipped", "127.0.0.1:5000", []string{"203.0.113.1, ,"}, "203.0.113.1", false},
		{"ports are allowed", "127.0.0.1:5000", []string{"203.0.113.1:4711"}, "203.0.113.1", false},
		{"IPv6 with port", "127.0.0.1:5000", []string{"[2001:db8::7]:4711"}, "2001:db8::7", false},
		{"IPv6 in brackets", "127.0.0.1:5000", []string{"[2001:db8::7]"}, "2001:db8::7", false},
		{"mapped IPv4 is IPv4", "127.0.0.1:5000", []string{"::ffff:203.0.113.1"}, "203.0.113.1", false},
		{"malformed stops the walk at the proxy", "127.0.0.1:5000", []string{"203.0.113.1, unknown"}, "127.0.0.1", false},
		{"malformed beyond a trusted hop", "127.0.0.1:5000", []string{"unknown, 10.1.2.3"}, "10.1.2.3", false},
		{"malformed left of the client is never read", "127.0.0.1:5000", []string{"garbage, 203.0.113.1"}, "203.0.113.1", false},
		{"IPv6 peer in a trusted prefix", "[2001:db8:ffff::1]:5000", []string{"2001:db8::7"}, "2001:db8::7", false},
		{"mapped IPv4 peer", "[::ffff:127.0.0.1]:5000", []string{"203.0.113.1"}, "203.0.113.1", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.peer
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.clientAddr(r); got != netip.MustParseAddr(c.want) {
				t.Fatalf("client address %s, want %s", got, c.want)
			}
		})
	}
}

func TestViaHTTPS(t *testing.T) {
	s := &Server{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	cases := []struct {
		peer  string
		proto []string
		want  bool
	}{
		{"127.0.0.1:1", nil, false},
		{"127.0.0.1:1", []string{"https"}, true},
		{"127.0.0.1:1", []string{"HTTPS"}, true},
		{"127.0.0.1:1", []string{"http"}, false},
		{"127.0.0.1:1", []string{"http, https"}, true},
		{"127.0.0.1:1", []string{"https", "http"}, false},
		{"192.0.2.1:1", []string{"https"}, false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.proto {
			r.Header.Add("X-Forwarded-Proto", v)
		}
		if got := s.viaHTTPS(r); got != c.want {
			t.Errorf("peer %s, X-Forwarded-Proto %q: via HTTPS %v, want %v", c.peer, c.proto, got, c.want)
		}
	}
}

func TestThrottleKeyGroupsIPv6By64(t *testing.T) {
	a := throttleKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))
	b := throttleKey(netip.MustParseAddr("2001:db8:1:2:ffff:ffff:ffff:ffff"))
	c := throttleKey(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c {
		t.Fatalf("keys %s %s %s: want one /64 to share a key and the next /64 not", a, b, c)
	}
	if v4 := netip.MustParseAddr("203.0.113.1"); throttleKey(v4) != v4 {
		t.Fatal("an IPv4 address must be its own key")
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.7 ,::1,192.168.1.9/24,::ffff:172.16.0.0/108,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "::1/128", "192.168.1.0/24", "172.16.0.0/12"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.org", "10.0.0", "fe80::1%eth0"} {
		if _, err := ParseTrustedProxies("10.0.0.0/8," + bad); err == nil {
			t.Errorf("%q was accepted", bad)
		} else if !strings.Contains(err.Error(), bad) {
			t.Errorf("error %q does not name %q", err, bad)
		}
	}
}
