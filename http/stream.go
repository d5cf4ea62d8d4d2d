package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/tidings/tidings"
)

// DefaultStreamWriteTimeout is how long a stream waits for a client that
// does not read before it drops it.
const DefaultStreamWriteTimeout = 10 * time.Second

// sseRetry is the reconnection delay an event stream asks browsers for.
const sseRetry = 2 * time.Second

// sseBufferKeep is the largest encoding buffer a stream keeps between
// batches; a larger one, grown by a big batch, is given back.
const sseBufferKeep = 64 << 10

// registerStreamRoutes registers server-sent events and WebSocket.
func (s *Server) registerStreamRoutes() {
	s.handle("GET /api/v1/stream", userAccess, s.handleStream)
	s.handle("GET /api/v1/ws", userAccess, s.handleWebSocket)
}

func (s *Server) streamWriteTimeout() time.Duration {
	if s.StreamWriteTimeout > 0 {
		return s.StreamWriteTimeout
	}
	return DefaultStreamWriteTimeout
}

func (s *Server) heartbeatEvery() time.Duration {
	if s.Heartbeat > 0 {
		return s.Heartbeat
	}
	return DefaultHeartbeat
}

// handleStream serves server-sent events. The browser sends Last-Event-ID
// when it reconnects while the URL keeps the since it was opened with, so
// the header wins.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) error {
	raw := r.URL.Query().Get("since")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		raw = id
	}
	since, err := parseSince(raw)
	if err != nil {
		return err
	}
	user := tidings.UserFromContext(r.Context())
	sse := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: s.streamWriteTimeout()}
	x := s.startRun(r.Context(), r, delivery{
		transport:      TransportSSE,
		userID:         user.ID,
		since:          since,
		ready:          sse.open,
		send:           sse.send,
		heartbeat:      sse.ping,
		heartbeatEvery: s.heartbeatEvery(),
	})
	over, err := x.step()
	if !over && sse.started && s.parkStream(w, r, x, sse) {
		return nil
	}
	if !over {
		err = x.wait()
	}
	x.close()
	if !sse.started {
		if r.Context().Err() != nil || errors.Is(err, errGone) {
			return nil // the client left: nobody to answer
		}
		return err
	}
	// The answer ends normally, also on shutdown: the server still writes
	// the end of the chunked body, which needs a deadline of its own.
	_ = sse.rc.SetWriteDeadline(time.Now().Add(sse.timeout))
	s.logStreamEnd(r.Context().Err() != nil, user.ID, "sse", err)
	return nil
}

// parkStream parks an event stream whose answer has begun: its events are
// written as chunks straight to the connection from now on.
func (s *Server) parkStream(w http.ResponseWriter, r *http.Request, x *run, sse *sseWriter) bool {
	if !s.canPark(r) {
		return false
	}
	done, ok := s.beginStream()
	if !ok {
		return false
	}
	pc, _, err := s.hijackParked(w)
	if err != nil {
		done()
		x.close()
		return true
	}
	sse.conn, sse.w, sse.rc = pc.conn, nil, nil
	userID := x.d.userID
	p := &parked{s: s, x: x, pc: pc, done: done}
	p.finish = func(err error) {
		if !errors.Is(err, errGone) {
			_ = pc.conn.SetWriteDeadline(time.Now().Add(sse.timeout))
			_, _ = pc.conn.Write([]byte("0\r\n\r\n")) // the end of the chunked body
		}
		pc.conn.Close()
		s.logStreamEnd(errors.Is(err, errGone), userID, "sse", err)
	}
	limit := maxEarlyBytes
	p.start(func() error {
		// A stream's client only listens; one that keeps sending is cut off.
		return p.drain(func(b []byte) error {
			if limit -= len(b); limit < 0 {
				return errGone
			}
			return nil
		})
	})
	return true
}

// logStreamEnd logs why a stream ended, when that is worth knowing.
func (s *Server) logStreamEnd(gone bool, userID int64, transport string, err error) {
	var we *writeError
	switch {
	case err == nil, errors.Is(err, errShutdown), errors.Is(err, errGone), gone:
	case accessEnded(err):
		s.Logger.Debug("stream ended with its credential", "transport", transport, "user", userID)
	case errors.As(err, &we) && errors.Is(err, os.ErrDeadlineExceeded):
		s.Logger.Info("dropped a stream client that stopped reading", "transport", transport, "user", userID)
	case errors.As(err, &we):
		s.Logger.Debug("stream client gone", "transport", transport, "user", userID, "err", err)
	default:
		s.Logger.Error("stream", "transport", transport, "user", userID, "err", err)
	}
}

// writeError is a failed write to a stream's client: it stopped reading or
// went away, which is no fault of the server's.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write to stream client: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// sseWriter encodes batches as server-sent events. Each batch is written
// and flushed at once, under a write deadline: a client that does not read
// fills its socket buffers, the deadline passes, and the stream ends.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	conn    net.Conn // once parked: events go to it as chunks
	timeout time.Duration
	buf     bytes.Buffer
	started bool
}

// open starts the answer: headers, and the reconnection delay.
func (e *sseWriter) open() error {
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	e.w.WriteHeader(http.StatusOK)
	e.started = true
	e.buf.WriteString("retry: " + strconv.FormatInt(sseRetry.Milliseconds(), 10) + "\n\n")
	return e.flush()
}

// send writes a gap as a missed event and each message as a message event
// whose id is its cursor. A gap without messages carries the cursor after
// it, so that a reconnecting browser is not told of the same gap again.
func (e *sseWriter) send(b *tidings.MessageBatch) error {
	if b.Missed > 0 {
		if len(b.Messages) == 0 {
			e.buf.WriteString("id: " + b.Cursor.String() + "\n")
		}
		e.buf.WriteString(`event: missed` + "\n" + `data: {"missed": ` + strconv.FormatInt(b.Missed, 10) + "}\n\n")
	}
	enc := json.NewEncoder(&e.buf) // one line: JSON escapes every newline
	for _, m := range b.Messages {
		e.buf.WriteString("id: " + m.ID + "\nevent: message\ndata: ")
		if err := enc.Encode(m); err != nil {
			return err
		}
		e.buf.WriteByte('\n')
	}
	return e.flush()
}

// ping writes a comment, which keeps proxies from closing an idle stream.
func (e *sseWriter) ping() error {
	e.buf.WriteString(": ping\n\n")
	return e.flush()
}

func (e *sseWriter) flush() error {
	defer func() {
		e.buf.Reset()
		if e.buf.Cap() > sseBufferKeep || e.conn != nil {
			// A parked stream keeps no buffer while it waits.
			e.buf = bytes.Buffer{}
		}
	}()
	if e.conn != nil {
		// A chunk of the body net/http began: size, data, CRLF.
		_ = e.conn.SetWriteDeadline(time.Now().Add(e.timeout))
		size := strconv.FormatInt(int64(e.buf.Len()), 16) + "\r\n"
		bufs := net.Buffers{[]byte(size), e.buf.Bytes(), []byte("\r\n")}
		if _, err := bufs.WriteTo(e.conn); err != nil {
			return &writeError{err}
		}
		return nil
	}
	if err := e.rc.SetWriteDeadline(time.Now().Add(e.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return &writeError{err}
	}
	if _, err := e.w.Write(e.buf.Bytes()); err != nil {
		return &writeError{err}
	}
	if err := e.rc.Flush(); err != nil {
		return &writeError{err}
	}
	return nil
}
