package http

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tidings/tidings"
)

// Login throttling (SPEC §7 Throttling).
const (
	// addrFailureLimit failed logins from one client address in
	// addrFailureWindow, and the address must wait until the oldest of them
	// is a window old.
	addrFailureLimit  = 10
	addrFailureWindow = time.Minute

	// loginFailureLimit failures against one login from all addresses in
	// loginFailureWindow, and the login is slowed to one attempt per
	// loginSlowInterval for addresses with recent failures. The window also
	// says what "recent" is: an address that failed any login within it is
	// a suspect, since an attacker who could wait a minute to look innocent
	// again would otherwise escape the slowdown.
	loginFailureLimit  = 20
	loginFailureWindow = 15 * time.Minute
	loginSlowInterval  = 5 * time.Second

	// addrLoginsInFlight bounds the attempts one address may have waiting
	// or hashing at once, below maxConcurrentLogins, so that a flood from
	// one address always leaves hash slots to everyone else.
	addrLoginsInFlight = 2

	// maxConcurrentLogins bounds the password hashes computed at once: each
	// takes 19 MiB and tens of milliseconds of CPU, so a crowd of logins
	// must queue rather than exhaust the machine.
	maxConcurrentLogins = 4

	// loginSlotWait is how long an attempt waits for a hash slot before it
	// is told to come back; only many addresses at once can make it wait.
	loginSlotWait = 10 * time.Second

	// Bounds of the throttle's memory under a spray of addresses and logins:
	// about 150 bytes an address and 250 a login. When a map is full, entries
	// whose windows passed go first, then the least-failed of a few sampled.
	maxThrottledAddrs  = 50_000
	maxThrottledLogins = 10_000
	evictionSample     = 8

	// throttleSweepInterval is how often entries whose windows passed are
	// forgotten even when the maps are not full.
	throttleSweepInterval = time.Minute
)

// loginThrottle decides, before a password is hashed, whether a login
// attempt may go ahead, and learns from its outcome. It knows nothing of
// HTTP beyond the client address, so that every way of logging in (the JSON
// API, the login page) shares one set of counts.
//
// Budgets are reserved when an attempt begins, not when it fails: an attempt
// in flight counts as a failure until it is known not to be one, so that a
// thousand concurrent attempts cannot all pass a count that none of them has
// raised yet.
type loginThrottle struct {
	now   func() time.Time
	epoch time.Time // times are kept as offsets from it: 8 bytes, monotonic

	slots chan struct{} // hash slots, shared by all addresses

	mu        sync.Mutex
	addrs     map[netip.Addr]*addrLogins
	logins    map[string]*loginFailures
	lastSweep time.Duration
}

// addrLogins is what the throttle knows about one client address.
type addrLogins struct {
	failures    recentLog     // the newest addrFailureLimit failures
	lastFailure time.Duration // of any login; 0 for none
	inFlight    int
}

// loginFailures is what the throttle knows about one login.
type loginFailures struct {
	failures recentLog     // the newest loginFailureLimit failures
	last     time.Duration // the last attempt let through or failed
	inFlight int
}

func newLoginThrottle(now func() time.Time) *loginThrottle {
	if now == nil {
		now = time.Now
	}
	return &loginThrottle{
		now:    now,
		epoch:  now(),
		slots:  make(chan struct{}, maxConcurrentLogins),
		addrs:  make(map[netip.Addr]*addrLogins),
		logins: make(map[string]*loginFailures),
	}
}

// clock is the time as an offset from the epoch; it starts at 1 so that 0
// can mean "never".
func (t *loginThrottle) clock() time.Duration {
	return t.now().Sub(t.epoch) + 1
}

// loginAttempt is an attempt the throttle let through; finish it with its
// outcome.
type loginAttempt struct {
	t        *loginThrottle
	addrKey  netip.Addr
	addr     *addrLogins
	loginKey string
	login    *loginFailures // nil for a login that cannot exist
}

// begin reserves an attempt from addr (a throttle key) against login, or
// refuses it with a rateLimitError that says when to come back.
func (t *loginThrottle) begin(addr netip.Addr, login string) (*loginAttempt, error) {
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now-t.lastSweep >= throttleSweepInterval {
		t.sweep(now)
	}

	a := t.addrs[addr]
	if a != nil {
		a.failures.prune(now - addrFailureWindow)
		if a.inFlight >= addrLoginsInFlight {
			return nil, rateLimited(time.Second, "Too many logins at once from your address; try again in a moment.")
		}
		if n := len(a.failures.at); n+a.inFlight >= addrFailureLimit {
			wait := time.Second // until the attempts in flight are decided
			if n >= addrFailureLimit {
				wait = a.failures.at[0] + addrFailureWindow - now
			}
			return nil, rateLimited(wait, "Too many failed logins from your address; try again later.")
		}
	}
	// A correct password from an address that has not failed lately goes
	// through even when its login is slowed, so that a stranger guessing
	// never locks out the real user.
	suspect := a != nil && (a.inFlight > 0 || (a.lastFailure != 0 && now-a.lastFailure < loginFailureWindow))

	// A login that cannot exist is never the real user's; the address's
	// budget is enough for it, and it must not take room in the map.
	track := tidings.ValidateLogin(login) == nil
	var l *loginFailures
	if track {
		l = t.logins[login]
		if l != nil {
			l.failures.prune(now - loginFailureWindow)
			slowed := len(l.failures.at)+l.inFlight >= loginFailureLimit
			if suspect && slowed && now-l.last < loginSlowInterval {
				return nil, rateLimited(l.last+loginSlowInterval-now, "Too many failed logins for this account; try again in a few seconds.")
			}
		}
	}

	if a == nil {
		if a = t.addAddr(addr, now); a == nil {
			return nil, rateLimited(time.Second, "Too many logins at once; try again in a moment.")
		}
	}
	if track && l == nil {
		if l = t.addLogin(login, now); l == nil {
			return nil, rateLimited(time.Second, "Too many logins at once; try again in a moment.")
		}
	}
	a.inFlight++
	if l != nil {
		l.inFlight++
		l.last = now
	}
	return &loginAttempt{t: t, addrKey: addr, addr: a, loginKey: login, login: l}, nil
}

// finish records the outcome: failed is a wrong login or password; any
// other end (success, the client gone, the database away) only returns the
// reservation.
func (at *loginAttempt) finish(failed bool) {
	t := at.t
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	at.addr.inFlight--
	if failed {
		at.addr.failures.add(now, addrFailureLimit)
		at.addr.lastFailure = now
	}
	if l := at.login; l != nil {
		l.inFlight--
		if failed {
			l.failures.add(now, loginFailureLimit)
			l.last = max(l.last, now)
		}
	}
	// An address or login that only ever succeeds is not kept at all. The
	// entries cannot have been replaced: one in flight is never evicted.
	if at.addr.forgettable(now) {
		delete(t.addrs, at.addrKey)
	}
	if l := at.login; l != nil && l.forgettable(now) {
		delete(t.logins, at.loginKey)
	}
}

// acquireSlot waits for a hash slot; it reports false when the wait ended
// without one (the client went away, or the server is swamped).
func (t *loginThrottle) acquireSlot(done <-chan struct{}) (release func(), ok bool) {
	select {
	case t.slots <- struct{}{}:
		return func() { <-t.slots }, true
	default:
	}
	timer := time.NewTimer(loginSlotWait)
	defer timer.Stop()
	select {
	case t.slots <- struct{}{}:
		return func() { <-t.slots }, true
	case <-done:
	case <-timer.C:
	}
	return nil, false
}

func (a *addrLogins) forgettable(now time.Duration) bool {
	return a.inFlight == 0 && a.failures.empty(now-addrFailureWindow) &&
		(a.lastFailure == 0 || now-a.lastFailure >= loginFailureWindow)
}

func (l *loginFailures) forgettable(now time.Duration) bool {
	return l.inFlight == 0 && l.failures.empty(now-loginFailureWindow)
}

// sweep forgets every entry whose windows have passed.
func (t *loginThrottle) sweep(now time.Duration) {
	t.lastSweep = now
	for k, a := range t.addrs {
		if a.forgettable(now) {
			delete(t.addrs, k)
		}
	}
	for k, l := range t.logins {
		if l.forgettable(now) {
			delete(t.logins, k)
		}
	}
}

// addAddr makes room if need be and adds an entry for addr; nil if every
// entry looked at is in flight.
func (t *loginThrottle) addAddr(addr netip.Addr, now time.Duration) *addrLogins {
	if len(t.addrs) >= maxThrottledAddrs {
		t.sweepWhenFull(now)
	}
	if len(t.addrs) >= maxThrottledAddrs {
		// Map order is random: a sample of a few entries. Dropping the one
		// with the fewest failures costs the least protection.
		var victim netip.Addr
		var best *addrLogins
		i := 0
		for k, a := range t.addrs {
			if a.inFlight == 0 && (best == nil || len(a.failures.at) < len(best.failures.at)) {
				victim, best = k, a
			}
			if i++; i == evictionSample {
				break
			}
		}
		if best == nil {
			return nil
		}
		delete(t.addrs, victim)
	}
	a := &addrLogins{}
	t.addrs[addr] = a
	return a
}

// addLogin is addAddr for logins.
func (t *loginThrottle) addLogin(login string, now time.Duration) *loginFailures {
	if len(t.logins) >= maxThrottledLogins {
		t.sweepWhenFull(now)
	}
	if len(t.logins) >= maxThrottledLogins {
		var victim string
		var best *loginFailures
		i := 0
		for k, l := range t.logins {
			if l.inFlight == 0 && (best == nil || len(l.failures.at) < len(best.failures.at)) {
				victim, best = k, l
			}
			if i++; i == evictionSample {
				break
			}
		}
		if best == nil {
			return nil
		}
		delete(t.logins, victim)
	}
	l := &loginFailures{}
	t.logins[login] = l
	return l
}

// sweepWhenFull sweeps a full map, but at most once a second: under a spray
// that keeps it full, a sweep on every attempt would cost a walk of the
// whole map each time.
func (t *loginThrottle) sweepWhenFull(now time.Duration) {
	if now-t.lastSweep >= time.Second {
		t.sweep(now)
	}
}

// recentLog holds the times of the newest few events, oldest first.
type recentLog struct{ at []time.Duration }

// add records an event, keeping only the newest max.
func (l *recentLog) add(at time.Duration, max int) {
	if l.at == nil {
		l.at = make([]time.Duration, 0, max)
	}
	if len(l.at) == max {
		l.at = l.at[:copy(l.at, l.at[1:])]
	}
	l.at = append(l.at, at)
}

// prune drops the events at or before since.
func (l *recentLog) prune(since time.Duration) {
	i := 0
	for i < len(l.at) && l.at[i] <= since {
		i++
	}
	l.at = l.at[:copy(l.at, l.at[i:])]
}

// empty reports whether no event is after since.
func (l *recentLog) empty(since time.Duration) bool {
	return len(l.at) == 0 || l.at[len(l.at)-1] <= since
}

// userPublishBurst is how many messages a plain user may publish at once
// before the rate applies.
const userPublishBurst = 20

// publishLimiter holds a token bucket per plain user. Only buckets that are
// not full need remembering: a full one is what a new user gets anyway, so
// forgetting idle users changes nothing and keeps the map to the users who
// published in the last few seconds.
type publishLimiter struct {
	rate rate.Limit // 0: unlimited
	now  func() time.Time

	mu        sync.Mutex
	users     map[int64]*rate.Limiter
	lastSweep time.Time
}

func newPublishLimiter(perSecond float64, now func() time.Time) *publishLimiter {
	if now == nil {
		now = time.Now
	}
	return &publishLimiter{rate: rate.Limit(perSecond), now: now, users: make(map[int64]*rate.Limiter)}
}

// allow takes one message from the user's bucket, or refuses with a
// rateLimitError that says when the next one may be sent.
func (p *publishLimiter) allow(userID int64) error {
	if p.rate <= 0 {
		return nil
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.lastSweep) >= throttleSweepInterval {
		p.lastSweep = now
		for id, lim := range p.users {
			if lim.TokensAt(now) >= userPublishBurst {
				delete(p.users, id)
			}
		}
	}
	lim := p.users[userID]
	if lim == nil {
		lim = rate.NewLimiter(p.rate, userPublishBurst)
		p.users[userID] = lim
	}
	if lim.AllowN(now, 1) {
		return nil
	}
	missing := 1 - lim.TokensAt(now)
	wait := time.Duration(missing / float64(p.rate) * float64(time.Second))
	return rateLimited(wait, "You publish too fast: at most %s messages a second (bursts of %d); try again in a moment.",
		strconv.FormatFloat(float64(p.rate), 'f', -1, 64), userPublishBurst)
}

// rateLimitError is an ERATELIMITED error that knows when to come back.
type rateLimitError struct {
	err   *tidings.Error
	after time.Duration
}

func (e *rateLimitError) Error() string { return e.err.Error() }

func (e *rateLimitError) Unwrap() error { return e.err }

func rateLimited(after time.Duration, format string, args ...any) error {
	return &rateLimitError{err: tidings.Errorf(tidings.ERATELIMITED, format, args...), after: after}
}

// setRetryAfter sets Retry-After for a rateLimitError: whole seconds,
// rounded up so that a client that waits as told is let in, and at least 1,
// since 0 would invite an immediate retry.
func setRetryAfter(w http.ResponseWriter, err error) {
	e, ok := err.(*rateLimitError)
	if !ok {
		return
	}
	secs := int64(math.Ceil(e.after.Seconds()))
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
}

// failedElsewhere counts a failed login that another node saw, as if it
// had failed here: with several nodes, the limits hold for all of them
// together.
func (t *loginThrottle) failedElsewhere(addr netip.Addr, login string) {
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.addrs[addr]
	if a == nil {
		if a = t.addAddr(addr, now); a == nil {
			return
		}
	}
	a.failures.add(now, addrFailureLimit)
	a.lastFailure = now
	if tidings.ValidateLogin(login) != nil {
		return
	}
	l := t.logins[login]
	if l == nil {
		if l = t.addLogin(login, now); l == nil {
			return
		}
	}
	l.failures.add(now, loginFailureLimit)
	l.last = max(l.last, now)
}

// publishedElsewhere takes from a user's bucket what they published on
// another node.
func (p *publishLimiter) publishedElsewhere(userID int64) {
	if p.rate <= 0 {
		return
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	lim := p.users[userID]
	if lim == nil {
		lim = rate.NewLimiter(p.rate, userPublishBurst)
		p.users[userID] = lim
	}
	lim.ReserveN(now, 1) // taken, even into debt: it was published
}

// loginFailureKey is how a failed login travels to the other nodes.
func loginFailureKey(addr netip.Addr, login string) string { return addr.String() + "~" + login }

// LoginFailedElsewhere counts failed logins that other nodes saw, given as
// "address~login".
func (s *Server) LoginFailedElsewhere(keys ...string) {
	if s.logins == nil {
		return
	}
	for _, k := range keys {
		a, login, ok := strings.Cut(k, "~")
		addr, err := netip.ParseAddr(a)
		if !ok || err != nil {
			continue
		}
		s.logins.failedElsewhere(throttleKey(addr), login)
	}
}

// PublishedElsewhere counts, against the publish limit, what plain users
// published on other nodes.
func (s *Server) PublishedElsewhere(userIDs ...int64) {
	if s.publishes == nil {
		return
	}
	for _, id := range userIDs {
		s.publishes.publishedElsewhere(id)
	}
}
