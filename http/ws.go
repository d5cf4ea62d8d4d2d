package http

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	gws "github.com/gobwas/ws"
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
// While it waits, the socket parks like a held poll; over TLS it keeps a
// reader goroutine that answers pings and notices the client leaving.
func (s *Server) handleWebSocket(w http.ResponseWriter, r *http.Request) error {
	if err := checkUpgrade(r); err != nil {
		return err
	}
	// Browsers send cookies with a WebSocket from any page, so a cookie
	// only counts from this site or an allowed origin. A bearer token
	// cannot ride along by itself: whoever sends it holds it.
	if r.Header.Get("Authorization") == "" && !s.webSocketOriginAllowed(r) {
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
	park := s.canPark(r)
	user := tidings.UserFromContext(r.Context())
	ws := &wsConn{timeout: s.streamWriteTimeout()}
	var x *run
	var pc *parkedConn
	var upgradeErr error
	x = s.startRun(r.Context(), r, delivery{
		transport: TransportWebSocket,
		userID:    user.ID,
		since:     since,
		ready: func() error {
			if park {
				p, rest, err := s.hijackParked(w)
				if err != nil {
					upgradeErr = err
					return err
				}
				pc = p
				ws.conn, ws.in = p.conn, rest
			} else {
				c, rw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					upgradeErr = err
					return err
				}
				ws.conn = c
				if n := rw.Reader.Buffered(); n > 0 {
					b, _ := rw.Reader.Peek(n)
					ws.in = bytes.Clone(b)
				}
			}
			if err := ws.handshake(r); err != nil {
				upgradeErr = err
				return err
			}
			if !park {
				go ws.readLoop(func() { x.post(evGone) })
			} else if len(ws.in) > 0 {
				rest := ws.in
				ws.in = nil
				if err := ws.feed(rest); err != nil {
					return err
				}
			}
			return nil
		},
		send:           ws.send,
		heartbeat:      ws.ping,
		heartbeatEvery: s.heartbeatEvery(),
	})
	over, err := x.step()
	if !over && pc != nil {
		p := &parked{s: s, x: x, pc: pc, done: done}
		p.finish = func(err error) { s.endWebSocket(ws, user.ID, err) }
		p.start(func() error { return p.drain(ws.feed) })
		return nil
	}
	defer done()
	if !over {
		err = x.wait()
	}
	x.close()
	if ws.conn == nil || upgradeErr != nil {
		if ws.conn != nil {
			ws.conn.Close()
		}
		if upgradeErr != nil {
			s.Logger.Debug("websocket upgrade failed", "err", upgradeErr)
			return nil
		}
		if r.Context().Err() != nil || errors.Is(err, errGone) {
			return nil
		}
		return err
	}
	s.endWebSocket(ws, user.ID, err)
	return nil
}

// endWebSocket closes a socket whose delivery is over, telling the client
// why when it is still there to hear it.
func (s *Server) endWebSocket(ws *wsConn, userID int64, err error) {
	defer ws.conn.Close()
	s.logStreamEnd(errors.Is(err, errGone), userID, "ws", err)
	var we *writeError
	switch {
	case errors.Is(err, errShutdown):
		ws.close(gws.StatusGoingAway, "The server is shutting down.")
	case accessEnded(err):
		ws.close(gws.StatusPolicyViolation, "The session or token has ended; log in again.")
	case err == nil, errors.Is(err, errGone), errors.As(err, &we), errors.Is(err, context.Canceled):
		// The client left or stopped reading: nobody to tell.
	default:
		ws.close(gws.StatusInternalServerError, "Internal error.")
	}
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

// wsConn is the server's end of a WebSocket: it writes frames, and reads
// the client's control frames. Clients send nothing the server reads.
type wsConn struct {
	conn    net.Conn
	timeout time.Duration

	mu      sync.Mutex // writes, and the frames being read
	in      []byte     // the start of a client frame not yet whole
	pinged  bool       // a ping is not answered yet
	closing bool       // a close frame was sent
}

// handshake answers the upgrade: 101 with the accept key.
func (c *wsConn) handshake(r *http.Request) error {
	sum := sha1.Sum([]byte(strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key")) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := io.WriteString(c.conn, head)
	return err
}

// writeFrame writes one unmasked frame within the timeout.
func (c *wsConn) writeFrame(op gws.OpCode, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeFrameLocked(op, payload)
}

func (c *wsConn) writeFrameLocked(op gws.OpCode, payload []byte) error {
	if c.closing {
		return &writeError{net.ErrClosed}
	}
	var head bytes.Buffer
	_ = gws.WriteHeader(&head, gws.Header{Fin: true, OpCode: op, Length: int64(len(payload))})
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	bufs := net.Buffers{head.Bytes(), payload}
	if _, err := bufs.WriteTo(c.conn); err != nil {
		return &writeError{err}
	}
	if op == gws.OpClose {
		c.closing = true
	}
	return nil
}

func (c *wsConn) send(b *tidings.MessageBatch) error {
	if b.Missed > 0 {
		f := wsFrame{Type: "missed", Missed: b.Missed}
		if len(b.Messages) == 0 {
			f.Cursor = b.Cursor.String()
		}
		if err := c.write(f); err != nil {
			return err
		}
	}
	for _, m := range b.Messages {
		if err := c.write(wsFrame{Type: "message", Message: m}); err != nil {
			return err
		}
	}
	return nil
}

func (c *wsConn) write(f wsFrame) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return c.writeFrame(gws.OpText, data)
}

// ping is the heartbeat: a client that has not answered the last ping by
// the next one no longer reads, and is dropped.
func (c *wsConn) ping() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pinged {
		return &writeError{os.ErrDeadlineExceeded}
	}
	c.pinged = true
	return c.writeFrameLocked(gws.OpPing, nil)
}

// close sends a close frame.
func (c *wsConn) close(code gws.StatusCode, reason string) {
	_ = c.writeFrame(gws.OpClose, gws.NewCloseFrameBody(code, reason))
}

// feed takes bytes the client sent and acts on every whole frame: a ping
// is answered, a pong noted, a close answered and the end reported as
// errGone. A data frame, or a frame too large, is refused with a close.
func (c *wsConn) feed(data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.in = append(c.in, data...)
	for len(c.in) > 0 {
		h, err := gws.ReadHeader(bytes.NewReader(c.in))
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				break // not whole yet
			}
			_ = c.writeFrameLocked(gws.OpClose, gws.NewCloseFrameBody(gws.StatusProtocolError, ""))
			return errGone
		}
		if h.Length > wsReadLimit || !h.Masked {
			_ = c.writeFrameLocked(gws.OpClose, gws.NewCloseFrameBody(gws.StatusProtocolError, ""))
			return errGone
		}
		size := gws.HeaderSize(h) + int(h.Length)
		if len(c.in) < size {
			break
		}
		payload := c.in[gws.HeaderSize(h):size]
		gws.Cipher(payload, h.Mask, 0)
		switch h.OpCode {
		case gws.OpPing:
			if err := c.writeFrameLocked(gws.OpPong, payload); err != nil {
				return err
			}
		case gws.OpPong:
			c.pinged = false
		case gws.OpClose:
			code, _ := gws.ParseCloseFrameData(payload)
			if code.Empty() {
				code = gws.StatusNormalClosure
			}
			_ = c.writeFrameLocked(gws.OpClose, gws.NewCloseFrameBody(code, ""))
			return errGone
		default:
			_ = c.writeFrameLocked(gws.OpClose, gws.NewCloseFrameBody(gws.StatusPolicyViolation, "The server reads no messages."))
			return errGone
		}
		c.in = c.in[size:]
	}
	if len(c.in) == 0 {
		c.in = nil // a parked socket keeps no buffer while it waits
	} else {
		c.in = bytes.Clone(c.in)
	}
	return nil
}

// readLoop reads the client's frames on a goroutine of its own, for a
// socket that is not parked; gone is called when the client left.
func (c *wsConn) readLoop(gone func()) {
	defer gone()
	c.mu.Lock()
	rest := c.in
	c.in = nil
	c.mu.Unlock()
	if len(rest) > 0 {
		if err := c.feed(rest); err != nil {
			return
		}
	}
	buf := make([]byte, 512)
	for {
		_ = c.conn.SetReadDeadline(time.Time{})
		n, err := c.conn.Read(buf)
		if n > 0 {
			if c.feed(buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
