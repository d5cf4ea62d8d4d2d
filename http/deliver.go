package http

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tidings/tidings"
)

// errShutdown ends a stream because the server is shutting down.
var errShutdown = errors.New("server shutting down")

// errGone ends a delivery whose client left.
var errGone = errors.New("client gone")

// accessChangesKey carries, in a request's context, the hub's count of ended
// credentials from before the request's credential was checked.
type accessChangesKey struct{}

// delivery describes one client of the delivery loop. Long polling, SSE and
// WebSocket all run the same loop; they differ only in how they encode what
// it finds and in whether they answer once or keep going.
type delivery struct {
	// transport names the client's transport for Metrics.
	transport string

	userID int64
	since  *tidings.Cursor // nil: start with what is deliverable now

	// once answers the first batch that has messages or a gap, or an empty
	// batch with the cursor unchanged when hold passes or the server shuts
	// down: long polling.
	once bool
	hold time.Duration

	// send writes a batch to the client. For streams it is called for every
	// batch with messages or a gap.
	send func(*tidings.MessageBatch) error

	// heartbeat, if set, is called after every heartbeatEvery without a
	// batch, to keep proxies and the client sure the connection lives.
	heartbeat      func() error
	heartbeatEvery time.Duration

	// readable, if set, is called when the client sent something (or left)
	// while the delivery waited: a WebSocket's control frames, or the end
	// of a parked connection. errGone ends the delivery quietly.
	readable func() error

	// ready, if set, is called once, after the first read succeeded and
	// before anything is sent: a stream starts its answer there, so that a
	// cursor the store refuses is still answered with an error.
	ready func() error
}

// What a delivery waits for. Every source of news — the hub, its timers, the
// server's shutdown, the client — only sets bits; whoever runs the delivery
// takes them. A delivery thus needs no goroutine of its own while it waits:
// a parked one is resumed on a new goroutine by the first bit that arrives.
type event uint16

const (
	evWake     event = 1 << iota // messages committed
	evAccess                     // a credential of the user ended
	evRetry                      // the pause after an unavailable database passed
	evDeadline                   // a long poll's hold passed
	evBeat                       // a heartbeat is due
	evShutdown                   // the server shuts down
	evGone                       // the client left
	evReadable                   // the client sent something
)

// run is one delivery in progress.
type run struct {
	s    *Server
	d    delivery
	cred credential
	ctx  context.Context // the store's reads; a parked run's is the server's

	mu      sync.Mutex
	pending event
	parked  func()        // set while parked: starts a goroutine that resumes the run
	signal  chan struct{} // for a run that waits on a goroutine: news came

	cancelSub    func()
	stopShutdown func() bool
	stopGone     func() bool
	deadline     *time.Timer
	beat         *time.Timer
	retry        *time.Timer

	cursor   *tidings.Cursor
	readNow  bool // a read is owed: the first, a wake-up, or a batch with more
	begun    bool // a first read succeeded: the client is being served
	recheck  bool // a credential check is owed before anything is sent
	pause    time.Duration
	finished bool
}

// startRun subscribes a delivery and arms its timers; the caller steps it
// and must close it. It subscribes before anything is read, so that no
// commit can slip between the read and the wait; while it waits it costs no
// database work at all: one read when it starts, one per wake-up.
func (s *Server) startRun(ctx context.Context, r *http.Request, d delivery) *run {
	x := &run{s: s, d: d, cred: credentialOf(r), ctx: ctx, cursor: d.since, readNow: true,
		pause: retryPauseMin}
	x.cancelSub = s.Hub.Subscribe(d.userID, x.notify)
	s.metrics().DeliveryOpened(d.transport)
	if before, ok := r.Context().Value(accessChangesKey{}).(uint64); !ok || before != s.Hub.AccessChanges() {
		// A credential ended between the request's check and the
		// subscription, unseen by it: maybe this request's own.
		x.post(evAccess)
	}
	x.stopShutdown = context.AfterFunc(s.shutdownCtx, func() { x.post(evShutdown) })
	x.stopGone = context.AfterFunc(ctx, func() { x.post(evGone) })
	if d.once && d.hold > 0 {
		x.deadline = time.AfterFunc(d.hold, func() { x.post(evDeadline) })
	}
	if d.heartbeat != nil && d.heartbeatEvery > 0 {
		x.beat = time.AfterFunc(d.heartbeatEvery, func() { x.post(evBeat) })
	}
	return x
}

// notify takes the hub's signals.
func (x *run) notify(sig tidings.Signal) {
	var e event
	if sig&tidings.SignalWake != 0 {
		e |= evWake
	}
	if sig&tidings.SignalAccess != 0 {
		e |= evAccess
	}
	x.post(e)
}

// post records news for the run, and resumes it if it is parked.
func (x *run) post(e event) {
	x.mu.Lock()
	x.pending |= e
	resume := x.parked
	x.parked = nil
	signal := x.signal
	x.mu.Unlock()
	if resume != nil {
		x.s.waiting.Add(-1)
		resume()
		return
	}
	select {
	case signal <- struct{}{}: // nil for a parked run: it steps again by itself
	default:
	}
}

// take returns and clears the pending events in mask.
func (x *run) take(mask event) event {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.pending & mask
	x.pending &^= e
	return e
}

// park leaves the run without a goroutine until news arrives, when resume
// is called once. It reports false, and parks nothing, if news has already
// arrived: the caller steps again.
func (x *run) park(resume func()) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.pending != 0 {
		return false
	}
	x.parked = resume
	x.s.waiting.Add(1)
	return true
}

// close ends the run's subscription and timers. It may be called more than
// once.
func (x *run) close() {
	if x.finished {
		return
	}
	x.finished = true
	x.cancelSub()
	x.stopShutdown()
	x.stopGone()
	for _, t := range []*time.Timer{x.deadline, x.beat, x.retry} {
		if t != nil {
			t.Stop()
		}
	}
	x.s.metrics().DeliveryClosed(x.d.transport)
}

// wait steps the run on the calling goroutine until it is over.
func (x *run) wait() error {
	x.mu.Lock()
	if x.signal == nil {
		x.signal = make(chan struct{}, 1)
	}
	x.mu.Unlock()
	for {
		over, err := x.step()
		if over {
			return err
		}
		x.s.waiting.Add(1)
		<-x.signal
		x.s.waiting.Add(-1)
	}
}

// deliver runs a delivery on the calling goroutine until the client leaves,
// the server shuts down or, for a long poll, one answer was sent.
func (s *Server) deliver(ctx context.Context, r *http.Request, d delivery) error {
	x := s.startRun(ctx, r, d)
	defer x.close()
	return x.wait()
}

// step does what the pending events ask for, and reads and sends while there
// is something to send. It returns over when the delivery has ended, with
// the reason; otherwise it must wait for more news.
func (x *run) step() (over bool, err error) {
	for {
		if x.readNow {
			x.readNow = false
			if over, err := x.read(); over {
				return true, err
			}
			continue
		}
		e := x.take(^event(0))
		if e == 0 {
			return false, nil
		}
		if e&evGone != 0 {
			if x.ctx.Err() != nil {
				return true, x.ctx.Err()
			}
			return true, errGone
		}
		if e&evReadable != 0 && x.d.readable != nil {
			if err := x.d.readable(); err != nil {
				return true, err
			}
		}
		if e&evAccess != 0 {
			if err := x.s.recheck(x.cred); err != nil {
				if !x.unavailable(err) {
					return true, err
				}
				x.recheck = true
			}
		}
		if x.cursor == nil {
			// Nothing was read yet (the database is away): only the first
			// read can tell where the client stands.
			if e&evShutdown != 0 {
				return true, errShutdown
			}
			x.readNow = e&evRetry != 0 || e&evWake != 0
			continue
		}
		if e&evShutdown != 0 {
			if x.d.once {
				return true, x.d.send(emptyBatch(*x.cursor))
			}
			return true, errShutdown
		}
		if e&evDeadline != 0 {
			return true, x.d.send(emptyBatch(*x.cursor))
		}
		if e&evBeat != 0 && x.d.heartbeat != nil {
			if err := x.d.heartbeat(); err != nil {
				return true, err
			}
			x.beat.Reset(x.d.heartbeatEvery)
		}
		if e&(evWake|evRetry) != 0 {
			x.readNow = true
		}
	}
}

// read reads what is deliverable after the cursor and sends it.
func (x *run) read() (over bool, err error) {
	batch, err := x.s.MessageService.FindMessages(x.ctx, x.d.userID, x.cursor, tidings.MaxBatch)
	if err != nil {
		if x.ctx.Err() != nil {
			return true, x.ctx.Err()
		}
		if !x.unavailable(err) {
			return true, err
		}
		return false, nil
	}
	// The hub signals an ended credential before it wakes anyone for a
	// later commit: checking here means that nothing committed after this
	// request's credential ended is ever sent on it.
	if x.take(evAccess) != 0 {
		x.recheck = true
	}
	if x.recheck {
		if err := x.s.recheck(x.cred); err != nil {
			if !x.unavailable(err) {
				return true, err
			}
			return false, nil
		}
		x.recheck = false
	}
	x.begun, x.pause = true, retryPauseMin
	if x.d.ready != nil {
		if err := x.d.ready(); err != nil {
			return true, err
		}
		x.d.ready = nil
	}
	if len(batch.Messages) > 0 || batch.Missed > 0 {
		if err := x.d.send(batch); err != nil {
			return true, err
		}
		x.s.metrics().Delivered(x.d.transport, batch.Messages)
		if x.d.once {
			return true, nil
		}
		next := batch.Cursor
		x.cursor = &next
		if x.beat != nil {
			x.beat.Reset(x.d.heartbeatEvery)
		}
		x.readNow = batch.More
		return false, nil
	}
	if x.cursor == nil {
		next := batch.Cursor // nothing deliverable: wait from the head
		x.cursor = &next
	}
	if x.d.once && x.d.hold <= 0 {
		return true, x.d.send(emptyBatch(*x.cursor))
	}
	return false, nil
}

// unavailable reports whether err is the database being away from a
// delivery that has begun: it stays open, and reads again after a pause,
// and again, until the database answers. Before anything was read the
// request is answered 503 instead.
func (x *run) unavailable(err error) bool {
	if tidings.ErrorCode(err) != tidings.EUNAVAILABLE || !x.begun || x.ctx.Err() != nil {
		return false
	}
	if x.retry == nil {
		x.retry = time.AfterFunc(x.pause, func() { x.post(evRetry) })
	} else {
		x.retry.Reset(x.pause)
	}
	x.pause = min(2*x.pause, retryPauseMax)
	return true
}

// The pauses of a delivery that waits for the database to come back.
const (
	retryPauseMin = 250 * time.Millisecond
	retryPauseMax = 5 * time.Second
)

// credential is what a delivery shows again when one of its user's
// credentials ended: a token or a session secret. It is kept instead of the
// request, which a parked connection no longer has.
type credential struct {
	token, session string
	userID         int64
}

func credentialOf(r *http.Request) credential {
	c := credential{userID: tidings.UserIDFromContext(r.Context())}
	if h := r.Header.Get("Authorization"); h != "" {
		if _, secret, ok := strings.Cut(h, " "); ok {
			c.token = strings.TrimSpace(secret)
		}
		return c
	}
	if ck, err := r.Cookie(SessionCookie); err == nil {
		c.session = ck.Value
	}
	return c
}

// recheck checks a delivery's credential again after one of its user's
// credentials ended. EUNAUTHORIZED when it was this one.
func (s *Server) recheck(c credential) error {
	var auth *tidings.Auth
	var err error
	switch {
	case c.token != "":
		auth, err = s.authenticateCached("token", c.token, func() (*tidings.Auth, error) {
			return s.AuthService.AuthenticateToken(s.ctx, c.token)
		})
	case c.session != "":
		auth, err = s.authenticateCached("session", c.session, func() (*tidings.Auth, error) {
			return s.AuthService.AuthenticateSession(s.ctx, c.session)
		})
	default:
		err = tidings.Errorf(tidings.EUNAUTHORIZED, "Log in or send an API token.")
	}
	if err != nil {
		return err
	}
	if auth.User == nil || auth.User.ID != c.userID {
		return tidings.Errorf(tidings.EUNAUTHORIZED, "The session has ended; log in again.")
	}
	return nil
}

// accessEnded reports whether err ended a delivery because its credential
// ended.
func accessEnded(err error) bool { return tidings.ErrorCode(err) == tidings.EUNAUTHORIZED }

func emptyBatch(c tidings.Cursor) *tidings.MessageBatch {
	return &tidings.MessageBatch{Messages: []*tidings.Message{}, Cursor: c}
}
