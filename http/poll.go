package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings"
)

func (s *Server) registerPollRoutes() {
	s.handle("GET /api/v1/poll", userAccess, s.handlePoll)
	s.handle("POST /api/v1/poll", userAccess, s.handlePoll)
	s.handle("GET /api/v1/cursor", userAccess, s.handleCursor)
}

// pollParams are the fields of a poll, from the query (GET) or a form or
// JSON body (POST).
type pollParams struct {
	Since   string       `json:"since"`
	Timeout *pollTimeout `json:"timeout"`
}

// pollTimeout is a number of seconds, given as a JSON number or string.
type pollTimeout struct{ raw string }

func (t *pollTimeout) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		t.raw = str
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return &fieldError{tidings.Invalidf("timeout", "timeout must be a number of seconds.")}
	}
	t.raw = n.String()
	return nil
}

// readPollParams reads since and timeout from where the method says.
func readPollParams(w http.ResponseWriter, r *http.Request) (pollParams, error) {
	var p pollParams
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		p.Since = q.Get("since")
		if q.Has("timeout") {
			p.Timeout = &pollTimeout{raw: q.Get("timeout")}
		}
		return p, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == "application/x-www-form-urlencoded":
		body, err := readBody(w, r)
		if err != nil {
			return p, err
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return p, tidings.Errorf(tidings.EINVALID, "The form body is malformed.")
		}
		for k := range form {
			if k != "since" && k != "timeout" {
				return p, tidings.Invalidf(k, "Unknown field %q.", k)
			}
		}
		p.Since = form.Get("since")
		if form.Has("timeout") {
			p.Timeout = &pollTimeout{raw: form.Get("timeout")}
		}
		return p, nil
	case ct == "" || mt == "application/json":
		body, err := readBody(w, r)
		if err != nil {
			return p, err
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return p, nil // no fields: a poll without since and with the default timeout
		}
		err = unmarshalJSON(body, &p)
		return p, err
	default:
		return p, tidings.Errorf(tidings.EINVALID, "A poll body must be a form or JSON, not %q.", ct)
	}
}

// timeoutPattern is a number of seconds written as JSON writes numbers, an
// exponent allowed: no sign, hex, infinity or NaN.
var timeoutPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// parseTimeout turns the timeout field into a hold: default and maximum are
// the server's poll timeout.
func (s *Server) parseTimeout(t *pollTimeout) (time.Duration, error) {
	if t == nil || strings.TrimSpace(t.raw) == "" {
		return s.PollTimeout, nil
	}
	raw := strings.TrimSpace(t.raw)
	if strings.HasPrefix(raw, "-") && timeoutPattern.MatchString(raw[1:]) {
		return 0, tidings.Invalidf("timeout", "timeout must not be negative.")
	}
	if !timeoutPattern.MatchString(raw) {
		return 0, tidings.Invalidf("timeout", "timeout must be a number of seconds such as 25 or 0.5, not %q.", clipString(t.raw, 40))
	}
	secs, err := strconv.ParseFloat(raw, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, tidings.Invalidf("timeout", "timeout must be a number of seconds, not %q.", clipString(t.raw, 40))
	}
	if secs >= s.PollTimeout.Seconds() {
		return s.PollTimeout, nil
	}
	return time.Duration(secs * float64(time.Second)), nil
}

func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// parseSince reads an optional cursor.
func parseSince(v string) (*tidings.Cursor, error) {
	if v == "" {
		return nil, nil
	}
	c, err := tidings.ParseCursor(v)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func (s *Server) handlePoll(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	p, err := readPollParams(w, r)
	if err != nil {
		return err
	}
	hold, err := s.parseTimeout(p.Timeout)
	if err != nil {
		return err
	}
	since, err := parseSince(p.Since)
	if err != nil {
		return err
	}
	user := tidings.UserFromContext(r.Context())
	var answer *tidings.MessageBatch
	x := s.startRun(r.Context(), r, delivery{
		transport: TransportPoll,
		userID:    user.ID,
		since:     since,
		once:      true,
		hold:      hold,
		send: func(b *tidings.MessageBatch) error {
			answer = b
			return nil
		},
	})
	over, err := x.step()
	if !over && s.parkPoll(w, r, x, &answer) {
		return nil // answered later, by whoever resumes the run
	}
	if !over {
		err = x.wait()
	}
	x.close()
	if err != nil {
		if r.Context().Err() != nil || errors.Is(err, errGone) {
			return nil // the client left: nobody to answer
		}
		return err
	}
	return writePollAnswer(w, answer)
}

// parkPoll parks a held poll's connection: the handler returns, and the
// answer is written to the connection when the run ends, by the goroutine
// that ran it last. It reports false, having touched nothing, when the
// connection cannot be parked.
func (s *Server) parkPoll(w http.ResponseWriter, r *http.Request, x *run, answer **tidings.MessageBatch) bool {
	if !s.canPark(r) {
		return false
	}
	done, ok := s.beginStream()
	if !ok {
		return false
	}
	header := pairsOf(w.Header()) // what the middleware set: cookies, CORS, …
	pc, rest, err := s.hijackParked(w)
	if err != nil {
		// The connection is gone with the hijack; so is the client.
		done()
		x.close()
		return true
	}
	keepAlive := keepAliveAfter(r)
	method := r.Method
	p := &parked{s: s, x: x, pc: pc, done: done}
	p.finish = func(err error) {
		if err != nil && (errors.Is(err, errGone) || s.ctx.Err() != nil) {
			pc.conn.Close()
			return
		}
		b := &bufferedResponse{header: header.header()}
		if err != nil {
			s.writeError(b, &http.Request{Method: method, URL: &url.URL{Path: "/api/v1/poll"}}, err)
		} else {
			_ = writePollAnswer(b, *answer)
		}
		keep := keepAlive && !s.draining.Load()
		if err := b.writeTo(pc.conn, keep, s.streamWriteTimeout()); err != nil || !keep {
			pc.conn.Close()
			return
		}
		s.idle(pc, rest)
	}
	// A poll's client sends nothing while it waits, but a client may send
	// its next request early; it is kept for after the answer.
	p.start(func() error {
		return p.drain(func(b []byte) error {
			if len(rest)+len(b) > maxEarlyBytes {
				return errGone
			}
			rest = append(rest, b...)
			return nil
		})
	})
	return true
}

// maxEarlyBytes bounds what a client may send ahead while its poll is held
// (kept for after the answer), or on a stream (read and dropped): a client
// that sends more is cut off. net/http's own reader keeps one byte at most
// while a handler runs; a next request with its headers fits in 8 KiB.
const maxEarlyBytes = 8 << 10

// writePollAnswer writes a poll's answer as pollAnswer encodes it, but
// straight from the messages' kept encodings to the connection: no second
// copy of up to a MiB is built first, so a client that reads slowly holds
// no more than the batch itself until the write timeout drops it.
func writePollAnswer(w http.ResponseWriter, b *tidings.MessageBatch) error {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, `{"messages":[`); err != nil {
		return nil // the client is gone: nobody to answer
	}
	for i, m := range b.Messages {
		enc, err := m.MarshalJSON()
		if err != nil {
			return fmt.Errorf("encode message %s: %w", m.ID, err)
		}
		if i > 0 {
			if _, err := io.WriteString(w, ","); err != nil {
				return nil
			}
		}
		if _, err := w.Write(enc); err != nil {
			return nil
		}
	}
	tail := `],"cursor":"` + b.Cursor.String() + `","missed":` + strconv.FormatInt(b.Missed, 10)
	if b.More {
		tail += `,"more":true`
	}
	io.WriteString(w, tail+"}\n")
	return nil
}

// handleCursor answers the cursor after the caller's newest message: a page
// takes it before it reads what it shows, and starts its client there.
func (s *Server) handleCursor(w http.ResponseWriter, r *http.Request) error {
	c, err := s.MessageService.CurrentCursor(r.Context(), tidings.UserIDFromContext(r.Context()))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"cursor": c.String()})
	return nil
}
