package http

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/tidings/tidings"
)

// wsReadLimit bounds what a WebSocket client may send in one message:
// clients send nothing the server reads, only control frames.
const wsReadLimit = 4 << 10

// wsFrame is one JSON frame to a WebSocket client: a message, or a gap. A
// gap that no message follows carries the cursor after it.
type wsFrame struct {
	Type    string           `json:"type"`
	Message *tidings.Message `json:"message,omitempty"`
	Missed  int64            `json:"missed,omitempty"`
	Cursor  string           `json:"cursor,omitempty"`
}

// handleWebSocket serves the WebSocket transport. The first read comes
// before the upgrade, so that a refused cursor is answered like any other
// error; after the upgrade the handler owns the connection, which the
// server's Shutdown does not wait for, so it counts itself in s.streams.
func (s *Server) handleWebSocket(w http.ResponseWriter, r *http.Request) error {
	if err := checkUpgrade(r); err != nil {
		return err
	}
	// Browsers send cookies with a WebSocket from any page, so a cookie
	// only counts from this site or an allowed origin. A bearer token
	// cannot ride along by itself: whoever sends it holds it.
	cookie := r.Header.Get("Authorization") == ""
	if cookie && !s.webSocketOriginAllowed(r) {
		return tidings.Errorf(tidings.EFORBIDDEN, "Cross-origin request refused.")
	}
	since, err := parseSince(r.URL.Query().Get("since"))
	if err != nil {
		return err
	}
	done, ok := s.beginStream()
	if !ok {
		return tidings.Errorf(tidings.EUNAVAILABLE, "The server is shutting down; try again in a moment.")
	}
	defer done()

	user := tidings.UserFromContext(r.Context())
	ws := &wsWriter{timeout: s.streamWriteTimeout()}
	gone := make(chan struct{})
	var acceptErr error
	err = s.deliver(r.Context(), delivery{
		transport: TransportWebSocket,
		req:       r,
		userID:    user.ID,
		since:     since,
		ready: func() error {
			conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
				OriginPatterns:     s.AllowedOrigins,
				InsecureSkipVerify: !cookie,
			})
			if err != nil {
				acceptErr = err // Accept has answered
				return err
			}
			ws.conn = conn
			conn.SetReadLimit(wsReadLimit)
			// The reader answers pings and notices the client leaving.
			context.AfterFunc(conn.CloseRead(context.Background()), func() { close(gone) })
			return nil
		},
		send:           ws.send,
		heartbeat:      ws.ping,
		heartbeatEvery: s.heartbeatEvery(),
		closed:         gone,
	})
	if ws.conn == nil {
		if acceptErr != nil {
			s.Logger.Debug("websocket upgrade failed", "err", acceptErr)
			return nil
		}
		if r.Context().Err() != nil {
			return nil
		}
		return err
	}
	defer ws.conn.CloseNow()
	s.logStreamEnd(r, user.ID, "ws", err)
	var we *writeError
	switch {
	case errors.Is(err, errShutdown):
		ws.conn.Close(websocket.StatusGoingAway, "The server is shutting down.")
	case accessEnded(err):
		ws.conn.Close(websocket.StatusPolicyViolation, "The session or token has ended; log in again.")
	case err == nil, errors.As(err, &we), r.Context().Err() != nil:
		// The client left or stopped reading: nobody to tell.
	default:
		ws.conn.Close(websocket.StatusInternalError, "Internal error.")
	}
	return nil
}

// checkUpgrade refuses, with an error body, a request that is no WebSocket
// handshake, which Accept would answer in plain text.
func checkUpgrade(r *http.Request) error {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return tidings.Errorf(tidings.EINVALID, "This path takes a WebSocket upgrade; use /api/v1/poll or /api/v1/stream over plain HTTP.")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return tidings.Errorf(tidings.EINVALID, "Only WebSocket version 13 is supported.")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key")))
	if err != nil || len(key) != 16 || len(r.Header.Values("Sec-WebSocket-Key")) != 1 {
		return tidings.Errorf(tidings.EINVALID, "The WebSocket handshake needs one valid Sec-WebSocket-Key.")
	}
	return nil
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// webSocketOriginAllowed accepts a handshake without Origin (not from a
// browser), from this server's own host, or from an allowed origin.
func (s *Server) webSocketOriginAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host) || s.originAllowed(origin)
}

// wsWriter encodes batches as WebSocket frames. A batch must be written
// within the timeout; when it is not, the library closes the connection.
type wsWriter struct {
	conn    *websocket.Conn
	timeout time.Duration
}

func (e *wsWriter) send(b *tidings.MessageBatch) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	if b.Missed > 0 {
		f := wsFrame{Type: "missed", Missed: b.Missed}
		if len(b.Messages) == 0 {
			f.Cursor = b.Cursor.String()
		}
		if err := e.write(ctx, f); err != nil {
			return err
		}
	}
	for _, m := range b.Messages {
		if err := e.write(ctx, wsFrame{Type: "message", Message: m}); err != nil {
			return err
		}
	}
	return nil
}

func (e *wsWriter) write(ctx context.Context, f wsFrame) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := e.conn.Write(ctx, websocket.MessageText, data); err != nil {
		return &writeError{deadline(ctx, err)}
	}
	return nil
}

// ping waits for the client's pong: a client that no longer reads is
// dropped by its heartbeat even when no messages come.
func (e *wsWriter) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	if err := e.conn.Ping(ctx); err != nil {
		return &writeError{deadline(ctx, err)}
	}
	return nil
}

// deadline marks an error of a write whose time ran out as such.
func deadline(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errors.Join(os.ErrDeadlineExceeded, err)
	}
	return err
}
