package http

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tidings/tidings"
)

// errShutdown ends a stream because the server is shutting down.
var errShutdown = errors.New("server shutting down")

// accessChangesKey carries, in a request's context, the hub's count of ended
// credentials from before the request's credential was checked.
type accessChangesKey struct{}

// delivery describes one client of the delivery loop. Long polling, SSE and
// WebSocket all run the same loop; they differ only in how they encode what
// it finds and in whether they answer once or keep going.
type delivery struct {
	// transport names the client's transport for Metrics.
	transport string

	// req is the request the client is served on: its credential is
	// checked again whenever one of the user's credentials ends.
	req    *http.Request
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

	// closed, if set, ends the loop when the transport notices its client
	// left (a WebSocket reader).
	closed <-chan struct{}

	// ready, if set, is called once, after the first read succeeded and
	// before anything is sent: a stream starts its answer there, so that a
	// cursor the store refuses is still answered with an error.
	ready func() error
}

// deliver runs the delivery loop until the client leaves, the server shuts
// down or, for a long poll, one answer was sent. It subscribes before it
// reads, so that no commit can slip between the read and the wait; while it
// waits it costs no database work at all: one read when it starts, one per
// wake-up.
func (s *Server) deliver(ctx context.Context, d delivery) error {
	sub := s.Hub.Subscribe(d.userID)
	defer sub.Cancel()
	m := s.metrics()
	m.DeliveryOpened(d.transport)
	defer m.DeliveryClosed(d.transport)
	if before, ok := d.req.Context().Value(accessChangesKey{}).(uint64); !ok || before != s.Hub.AccessChanges() {
		// A credential ended between the request's check and the
		// subscription, unseen by it: maybe this request's own.
		if err := s.recheck(d.req); err != nil {
			return err
		}
	}

	var deadline <-chan time.Time
	if d.once {
		if d.hold > 0 {
			t := time.NewTimer(d.hold)
			defer t.Stop()
			deadline = t.C
		}
	}
	var beat *time.Ticker
	var beats <-chan time.Time
	if d.heartbeat != nil && d.heartbeatEvery > 0 {
		beat = time.NewTicker(d.heartbeatEvery)
		defer beat.Stop()
		beats = beat.C
	}

	// While the database is away a delivery that has begun stays open: it
	// reads again after a pause, and again, until the database answers.
	var retry <-chan time.Time
	pause := retryPauseMin
	begun := false // a first read succeeded: the client is being served
	unavailable := func(err error) bool {
		if tidings.ErrorCode(err) != tidings.EUNAVAILABLE || !begun || ctx.Err() != nil {
			return false // nothing begun yet: the request is answered 503
		}
		retry = time.After(pause)
		pause = min(2*pause, retryPauseMax)
		return true
	}
	recheck := false // a credential check is owed before anything is sent

	cursor := d.since
	for {
		batch, err := s.MessageService.FindMessages(ctx, d.userID, cursor, tidings.MaxBatch)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !unavailable(err) {
				return err
			}
			batch = nil
		}
		// The hub signals an ended credential before it wakes anyone for a
		// later commit: checking here means that nothing committed after
		// this request's credential ended is ever sent on it.
		select {
		case <-sub.Access:
			recheck = true
		default:
		}
		if recheck && batch != nil {
			if err := s.recheck(d.req); err != nil {
				if !unavailable(err) {
					return err
				}
				batch = nil
			} else {
				recheck = false
			}
		}
		if batch != nil {
			begun, pause = true, retryPauseMin
			if d.ready != nil {
				if err := d.ready(); err != nil {
					return err
				}
				d.ready = nil
			}
			if len(batch.Messages) > 0 || batch.Missed > 0 {
				if err := d.send(batch); err != nil {
					return err
				}
				m.Delivered(d.transport, batch.Messages)
				if d.once {
					return nil
				}
				next := batch.Cursor
				cursor = &next
				if beat != nil {
					beat.Reset(d.heartbeatEvery)
				}
				if batch.More {
					continue
				}
			} else if cursor == nil {
				next := batch.Cursor // nothing deliverable: wait from the head
				cursor = &next
			}
			if d.once && d.hold <= 0 {
				return d.send(emptyBatch(*cursor))
			}
		}

	wait:
		for {
			select {
			case <-sub.Wake:
				break wait
			case <-retry:
				retry = nil
				break wait
			case <-sub.Access:
				if err := s.recheck(d.req); err != nil {
					if !unavailable(err) {
						return err
					}
					recheck = true
				}
			case <-ctx.Done():
				return ctx.Err()
			case <-d.closed:
				return nil
			case <-s.shutdown:
				if d.once {
					return d.send(emptyBatch(*cursor))
				}
				return errShutdown
			case <-deadline:
				return d.send(emptyBatch(*cursor))
			case <-beats:
				if err := d.heartbeat(); err != nil {
					return err
				}
			}
		}
	}
}

// The pauses of a delivery that waits for the database to come back.
const (
	retryPauseMin = 250 * time.Millisecond
	retryPauseMax = 5 * time.Second
)

// recheck checks a delivery's credential again after one of its user's
// credentials ended. EUNAUTHORIZED when it was this one.
func (s *Server) recheck(r *http.Request) error {
	auth, err := s.authenticate(r)
	if err != nil {
		return err
	}
	if prev := tidings.AuthFromContext(r.Context()); prev != nil && prev.User != nil && auth.User.ID != prev.User.ID {
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
