package http_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings"
	tidingshttp "github.com/tidings/tidings/http"
)

// WithTrustedProxies makes the server believe X-Forwarded-For from cidrs.
func WithTrustedProxies(cidrs string) Option {
	return func(s *TestServer) {
		p, err := tidingshttp.ParseTrustedProxies(cidrs)
		if err != nil {
			panic(err)
		}
		s.TrustedProxies = p
	}
}

// WithThrottleClock makes the login and publish throttles use c.
func WithThrottleClock(c *testClock) Option { return func(s *TestServer) { s.Server.Now = c.Now } }

// WithUserPublishRate sets the plain users' publish rate.
func WithUserPublishRate(perSecond float64) Option {
	return func(s *TestServer) { s.UserPublishRate = perSecond }
}

// loginAnswer is what a login attempt got.
type loginAnswer struct {
	status     int
	code       string
	retryAfter string
}

// loginVia logs in through the test's connection, which the server sees
// coming from 127.0.0.1, claiming the X-Forwarded-For xff (none if empty).
func loginVia(tb testing.TB, s *TestServer, client *http.Client, xff, login, password string) loginAnswer {
	tb.Helper()
	req := s.NewRequest(tb, "POST", "/api/v1/login", "", map[string]any{"login": login, "password": password})
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apiError
	json.Unmarshal(b, &e)
	return loginAnswer{resp.StatusCode, e.Error.Code, resp.Header.Get("Retry-After")}
}

func loginFrom(tb testing.TB, s *TestServer, xff, login, password string) loginAnswer {
	tb.Helper()
	return loginVia(tb, s, http.DefaultClient, xff, login, password)
}

// mustBeThrottled requires a 429 rate_limited with a Retry-After of 1 to
// most seconds.
func mustBeThrottled(tb testing.TB, a loginAnswer, most int, what string) int {
	tb.Helper()
	if a.status != http.StatusTooManyRequests || a.code != tidings.ERATELIMITED {
		tb.Fatalf("%s: status %d %q, want 429 rate_limited", what, a.status, a.code)
	}
	secs, err := strconv.Atoi(a.retryAfter)
	if err != nil || secs < 1 || secs > most {
		tb.Fatalf("%s: Retry-After %q, want whole seconds from 1 to %d", what, a.retryAfter, most)
	}
	return secs
}

func mustStatus(tb testing.TB, a loginAnswer, want int, what string) {
	tb.Helper()
	if a.status != want {
		tb.Fatalf("%s: status %d %q, want %d", what, a.status, a.code, want)
	}
}

// TestLoginThrottlePerAddress: an address that failed 10 times in a minute
// is refused, even with the right password, until the minute has passed;
// another address behind the same proxy is not affected.
func TestLoginThrottlePerAddress(t *testing.T) {
	clock := newTestClock()
	s := MustOpenServer(t, WithTrustedProxies("127.0.0.1/32"), WithThrottleClock(clock))
	s.MustCreateUser(t, "bob", false)
	const a, b = "203.0.113.10", "203.0.113.20"

	for i := range 10 {
		mustStatus(t, loginFrom(t, s, a, "bob", "wrong-password"), 401, fmt.Sprintf("wrong password %d from A", i+1))
	}
	secs := mustBeThrottled(t, loginFrom(t, s, a, "bob", "wrong-password"), 60, "11th wrong password from A")
	if secs != 60 {
		t.Errorf("Retry-After right after the 10th failure is %d, want 60", secs)
	}
	mustBeThrottled(t, loginFrom(t, s, a, "bob", "password1"), 60, "right password from A within the minute")
	mustStatus(t, loginFrom(t, s, b, "bob", "password1"), 200, "right password from B meanwhile")

	clock.Advance(45 * time.Second)
	if secs := mustBeThrottled(t, loginFrom(t, s, a, "bob", "password1"), 60, "A after 45 s"); secs != 15 {
		t.Errorf("Retry-After 45 s into the minute is %d, want 15", secs)
	}
	clock.Advance(15 * time.Second)
	mustStatus(t, loginFrom(t, s, a, "bob", "password1"), 200, "right password from A once the minute has passed")
}

// TestLoginThrottlePerLogin: after more than 20 failures against one login
// from many addresses, those addresses get one attempt per 5 s, while the
// real user from an address without failures logs in at once.
func TestLoginThrottlePerLogin(t *testing.T) {
	clock := newTestClock()
	s := MustOpenServer(t, WithTrustedProxies("127.0.0.1/32"), WithThrottleClock(clock))
	s.MustCreateUser(t, "bob", false)
	s.MustCreateUser(t, "carol", false)
	attacker := func(i int) string { return fmt.Sprintf("198.51.100.%d", i) }

	for i := range 21 {
		mustStatus(t, loginFrom(t, s, attacker(i), "bob", "guess"+strconv.Itoa(i)), 401, fmt.Sprintf("guess %d", i+1))
	}
	mustBeThrottled(t, loginFrom(t, s, attacker(3), "bob", "guess-again"), 5, "a guessing address within 5 s")
	mustBeThrottled(t, loginFrom(t, s, attacker(4), "bob", "password1"), 5, "even with the right password")
	mustStatus(t, loginFrom(t, s, "192.0.2.50", "bob", "password1"), 200, "the real user from a fresh address")
	mustStatus(t, loginFrom(t, s, attacker(5), "carol", "password1"), 200, "another login from a guessing address")

	clock.Advance(5 * time.Second)
	mustStatus(t, loginFrom(t, s, attacker(3), "bob", "guess-again"), 401, "a guessing address after 5 s")
	mustBeThrottled(t, loginFrom(t, s, attacker(6), "bob", "guess-more"), 5, "the next one within 5 s")

	clock.Advance(15 * time.Minute)
	mustStatus(t, loginFrom(t, s, attacker(6), "bob", "password1"), 200, "once the failures are 15 minutes old")
}

// TestLoginThrottleIgnoresForwardedForFromStrangers: X-Forwarded-For from a
// peer that is not a trusted proxy changes nothing; the peer is throttled.
func TestLoginThrottleIgnoresForwardedForFromStrangers(t *testing.T) {
	clock := newTestClock()
	s := MustOpenServer(t, WithThrottleClock(clock)) // no trusted proxies
	s.MustCreateUser(t, "bob", false)
	for i := range 10 {
		mustStatus(t, loginFrom(t, s, fmt.Sprintf("203.0.113.%d", i), "bob", "wrong-password"), 401, "wrong password")
	}
	mustBeThrottled(t, loginFrom(t, s, "203.0.113.99", "bob", "password1"), 60, "a new X-Forwarded-For from the same peer")
	mustBeThrottled(t, loginFrom(t, s, "", "bob", "password1"), 60, "the peer itself")
}

// TestLoginThrottleBelievesOnlyTrustedHops: entries a client put in front of
// X-Forwarded-For do not give it a new address, and IPv6 clients are one
// client per /64.
func TestLoginThrottleBelievesOnlyTrustedHops(t *testing.T) {
	clock := newTestClock()
	s := MustOpenServer(t, WithTrustedProxies("127.0.0.1/32, 10.0.0.0/8"), WithThrottleClock(clock))
	s.MustCreateUser(t, "bob", false)
	for i := range 10 {
		xff := fmt.Sprintf("192.0.2.%d, 203.0.113.7, 10.0.0.1", i) // the first entry is the client's invention
		mustStatus(t, loginFrom(t, s, xff, "bob", "wrong-password"), 401, "wrong password")
	}
	mustBeThrottled(t, loginFrom(t, s, "203.0.113.7", "bob", "password1"), 60, "the same client through one proxy")
	mustStatus(t, loginFrom(t, s, "203.0.113.8, 10.0.0.1", "bob", "password1"), 200, "its neighbour")

	for i := range 10 {
		xff := fmt.Sprintf("2001:db8:1:2::%x", i+1)
		mustStatus(t, loginFrom(t, s, xff, "bob", "wrong-password"), 401, "wrong password over IPv6")
	}
	mustBeThrottled(t, loginFrom(t, s, "2001:db8:1:2:ffff::1", "bob", "password1"), 60, "another address of the same /64")
	mustStatus(t, loginFrom(t, s, "2001:db8:1:3::1", "bob", "password1"), 200, "the next /64")
}

// TestLoginFloodFromOneAddress: a flood of concurrent logins from one
// address is refused beyond its budget without hashing, and another
// address's login goes through meanwhile.
func TestLoginFloodFromOneAddress(t *testing.T) {
	var mu sync.Mutex
	hashes := map[netip.Addr]int{}
	countHashes := func(s *TestServer) {
		tidingshttp.SetPasswordCheckHook(s.Server, func(client netip.Addr) {
			mu.Lock()
			hashes[client]++
			mu.Unlock()
		})
	}
	clock := newTestClock()
	s := MustOpenServer(t, WithTrustedProxies("127.0.0.1/32"), WithThrottleClock(clock), countHashes)
	s.MustCreateUser(t, "bob", false)
	const flood = 200
	a := netip.MustParseAddr("203.0.113.66")

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: flood}}
	defer client.CloseIdleConnections()
	start := make(chan struct{})
	statuses := make(chan int, flood)
	var wg sync.WaitGroup
	for range flood {
		wg.Go(func() {
			<-start
			statuses <- loginVia(t, s, client, a.String(), "bob", "wrong-password").status
		})
	}
	close(start)
	mustStatus(t, loginFrom(t, s, "203.0.113.77", "bob", "password1"), 200, "B's login during A's flood")
	wg.Wait()
	close(statuses)

	count := map[int]int{}
	for st := range statuses {
		count[st]++
	}
	mu.Lock()
	hashedA := hashes[a]
	mu.Unlock()
	if count[401]+count[429] != flood {
		t.Fatalf("A's flood got %v; want only 401 and 429", count)
	}
	if hashedA > 10 || count[401] != hashedA {
		t.Fatalf("A's flood cost %d hashes and got %d answers 401; want at most 10 of each, one per hash", hashedA, count[401])
	}
	if count[429] < flood-10 {
		t.Fatalf("A's flood got %d answers 429, want at least %d", count[429], flood-10)
	}
}

// TestPublishRateForPlainUsers: a plain user may publish a burst of 20,
// then at the rate; the refused message is not stored. The bucket is the
// user's, whichever credential they publish with.
func TestPublishRateForPlainUsers(t *testing.T) {
	clock := newTestClock()
	s := MustOpenServer(t, WithThrottleClock(clock))
	_, bobTok := s.MustCreateUser(t, "bob", false)
	_, carolTok := s.MustCreateUser(t, "carol", false)
	s.MustCreateProject(t, bobTok, "Office move", "carol")
	start := s.MustPoll(t, carolTok, "timeout=0").Cursor
	publish := func(tok string, i int) (int, string, apiError) {
		req := s.NewRequest(t, "POST", "/api/v1/messages", tok, map[string]any{"recipients": []string{"carol"}, "text": fmt.Sprintf("m%d", i)})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e apiError
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, resp.Header.Get("Retry-After"), e
	}

	for i := range 20 {
		if st, _, _ := publish(bobTok, i); st != http.StatusAccepted {
			t.Fatalf("publish %d: status %d, want 202", i+1, st)
		}
	}
	st, retry, e := publish(bobTok, 20)
	if secs, err := strconv.Atoi(retry); st != 429 || e.Error.Code != tidings.ERATELIMITED || err != nil || secs < 1 {
		t.Fatalf("21st publish: status %d %q, Retry-After %q; want 429 rate_limited with whole seconds ≥ 1", st, e.Error.Code, retry)
	}
	bob := loginClient(t, s, "bob")
	if st, _ := bob.Do(t, "POST", "/api/v1/messages", map[string]any{"recipients": []string{"carol"}, "text": "by session"}); st != 429 {
		t.Fatalf("publish through bob's session after his token's burst: status %d, want 429", st)
	}
	var texts []string
	for _, m := range s.MustPoll(t, carolTok, "timeout=0&since="+start).Messages {
		if m.Module == "message" { // not bob's login notice
			texts = append(texts, m.Text)
		}
	}
	if len(texts) != 20 || texts[19] != "m19" {
		t.Fatalf("carol has %d messages (%q), want the 20 that were accepted", len(texts), texts)
	}

	clock.Advance(time.Second)
	for i := range 5 {
		if st, _, _ := publish(bobTok, 100+i); st != http.StatusAccepted {
			t.Fatalf("publish %d in the next second: status %d, want 202 (5 a second)", i+1, st)
		}
	}
	if st, _, _ := publish(bobTok, 200); st != 429 {
		t.Fatalf("6th publish in the next second: status %d, want 429", st)
	}
}

// TestPublishRateSparesAdminsAndPublishTokens: admins and publish tokens
// feed notifications from other systems and are not limited.
func TestPublishRateSparesAdminsAndPublishTokens(t *testing.T) {
	clock := newTestClock()
	s := MustOpenServer(t, WithThrottleClock(clock))
	_, adminTok := s.MustCreateUser(t, "alice", true)
	dave, _ := s.MustCreateUser(t, "dave", false)
	_, carolTok := s.MustCreateUser(t, "carol", false)
	publishTok := s.MustCreateToken(t, dave, tidings.ScopePublish)
	start := s.MustPoll(t, carolTok, "timeout=0").Cursor
	for name, tok := range map[string]string{"admin": adminTok, "publish token": publishTok} {
		for i := range 50 {
			s.MustPublish(t, tok, map[string]any{"recipients": []string{"carol"}, "text": fmt.Sprintf("%s %d", name, i)})
		}
	}
	if p := s.MustPoll(t, carolTok, "timeout=0&since="+start); len(p.Messages) != 100 {
		t.Fatalf("carol has %d messages, want 100", len(p.Messages))
	}
}

// TestPublishRateZeroIsUnlimited: --user-publish-rate 0 switches the limit
// off.
func TestPublishRateZeroIsUnlimited(t *testing.T) {
	s := MustOpenServer(t, WithThrottleClock(newTestClock()), WithUserPublishRate(0))
	_, bobTok := s.MustCreateUser(t, "bob", false)
	for i := range 50 {
		s.MustPublish(t, bobTok, map[string]any{"recipients": []string{"bob"}, "text": "note " + strings.Repeat("!", i)})
	}
}
