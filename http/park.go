package http

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A held poll, stream or socket that waits is parked: its connection is
// taken from net/http (hijacked), its goroutines end, and what is left is
// the delivery's state, the connection and a registration with the poller.
// News — a commit, a timer, the client — resumes it on a new goroutine for
// as long as it takes to read and write, after which it parks again. A long
// poll answered on a parked connection that stays open parks once more as
// an idle connection, and is handed back to net/http when its client sends
// the next request.

// connKey carries the request's connection in its context, so that a
// handler knows whether it can park it before it takes it.
type connKey struct{}

// canPark reports whether r's connection can be parked: plain TCP (TLS
// connections keep their goroutines) on a system with a poller, and the
// server not shutting down.
func (s *Server) canPark(r *http.Request) bool {
	if s.poller == nil || s.handoff == nil || s.draining.Load() {
		return false
	}
	switch r.Context().Value(connKey{}).(type) {
	case *net.TCPConn, *prefixConn:
		return true
	}
	return false
}

// hijackParked takes r's connection from net/http. Bytes the client has
// already sent beyond the request are returned with it.
func (s *Server) hijackParked(w http.ResponseWriter) (*parkedConn, []byte, error) {
	c, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := rw.Writer.Flush(); err != nil {
		c.Close()
		return nil, nil, err
	}
	var tcp *net.TCPConn
	var rest []byte
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		rest = bytes.Clone(b)
	}
	switch c := c.(type) {
	case *net.TCPConn:
		tcp = c
	case *prefixConn:
		tcp = c.TCPConn
		rest = append(rest, c.prefix...)
	default:
		c.Close()
		return nil, nil, net.ErrClosed
	}
	_ = tcp.SetDeadline(time.Time{})
	pc, err := newParkedConn(tcp)
	if err != nil {
		tcp.Close()
		return nil, nil, err
	}
	return pc, rest, nil
}

// parked runs a delivery on a parked connection.
type parked struct {
	s  *Server
	x  *run
	pc *parkedConn
	// finish ends the transport's answer once the delivery is over; the
	// connection is no longer watched then.
	finish func(err error)
	done   func() // counted in s.streams, which Close waits for
}

// start parks a run that has just been stepped and must wait. The run's
// reads use the server's context from now on: the request's ends with the
// handler.
func (p *parked) start(readable func() error) {
	p.x.stopGone()
	p.x.stopGone = func() bool { return false } // lets go of the request's context
	p.x.ctx = p.s.ctx
	p.x.d.readable = readable
	p.rewatch()
	p.park()
}

// rewatch asks the poller to tell of the client once more.
func (p *parked) rewatch() {
	if err := p.s.poller.watch(p.pc, p.onReadable); err != nil {
		p.x.post(evGone)
	}
}

func (p *parked) onReadable() { p.x.post(evReadable) }

func (p *parked) resume() { go p.loop() }

func (p *parked) loop() {
	over, err := p.x.step()
	if !over {
		p.park()
		return
	}
	p.x.close()
	p.s.poller.forget(p.pc)
	p.finish(err)
	p.done()
}

// park leaves the run without a goroutine, or steps it again at once if
// news came in the meantime.
func (p *parked) park() {
	if !p.x.park(p.resume) {
		p.loop()
	}
}

// drain reads what the client of a parked connection has sent, without
// waiting, and gives it to take piece by piece; once nothing is left it
// watches the connection again. A client that left ends the delivery
// quietly (errGone), as does an error from take.
func (p *parked) drain(take func([]byte) error) error {
	var buf [512]byte
	for {
		n, err := p.pc.readNow(buf[:])
		if err != nil {
			return errGone
		}
		if n == 0 {
			p.rewatch()
			return nil
		}
		if err := take(buf[:n]); err != nil {
			return err
		}
	}
}

// headerPairs keeps a header in a flat list, which costs a parked poll a
// fraction of a cloned map.
type headerPairs []string

func pairsOf(h http.Header) headerPairs {
	var p headerPairs
	for k, vs := range h {
		for _, v := range vs {
			p = append(p, k, v)
		}
	}
	return p
}

func (p headerPairs) header() http.Header {
	h := make(http.Header, len(p)/2+4)
	for i := 0; i+1 < len(p); i += 2 {
		h[p[i]] = append(h[p[i]], p[i+1])
	}
	return h
}

// bufferedResponse is an http.ResponseWriter that keeps the answer, which
// is then written to a parked connection as one HTTP/1.1 response.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// writeTo writes the response to c within timeout.
func (b *bufferedResponse) writeTo(c net.Conn, keepAlive bool, timeout time.Duration) error {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	h := b.header
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set("Content-Length", strconv.Itoa(b.body.Len()))
	if !keepAlive {
		h.Set("Connection", "close")
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 " + strconv.Itoa(b.status) + " " + http.StatusText(b.status) + "\r\n")
	_ = h.Write(&head)
	head.WriteString("\r\n")
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	bufs := net.Buffers{head.Bytes(), b.body.Bytes()}
	_, err := bufs.WriteTo(c)
	return err
}

// idle parks a connection whose answer was written until its client sends
// the next request, when it is handed back to net/http; it is closed after
// the server's idle timeout, or when the server shuts down.
func (s *Server) idle(pc *parkedConn, rest []byte) {
	if len(rest) > 0 {
		s.handBack(pc.conn, rest) // the next request is already here
		return
	}
	var claimed atomic.Bool
	var timer *time.Timer
	var stop func() bool
	var mu sync.Mutex // orders the setup against an early claim
	end := func(back bool) {
		if claimed.Swap(true) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		s.poller.forget(pc)
		timer.Stop()
		stop()
		if back {
			s.handBack(pc.conn, nil)
		} else {
			pc.conn.Close()
		}
	}
	mu.Lock()
	timer = time.AfterFunc(s.server.IdleTimeout, func() { end(false) })
	stop = context.AfterFunc(s.shutdownCtx, func() { end(false) })
	err := s.poller.watch(pc, func() { go end(true) })
	mu.Unlock()
	if err != nil {
		end(false)
	}
}

// handBack gives a connection to net/http again, to read its next request.
func (s *Server) handBack(c *net.TCPConn, rest []byte) {
	var conn net.Conn = c
	if len(rest) > 0 {
		conn = &prefixConn{TCPConn: c, prefix: rest}
	}
	if !s.handoff.give(conn) {
		c.Close()
	}
}

// prefixConn is a connection whose client sent bytes that were read while
// it was parked: they are read first.
type prefixConn struct {
	*net.TCPConn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.TCPConn.Read(b)
}

// handoffListener is the listener net/http serves: it yields the
// connections accepted, and those handed back after they were parked.
type handoffListener struct {
	net.Listener
	accepted chan acceptResult
	back     chan net.Conn
	done     chan struct{}
	once     sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newHandoffListener(ln net.Listener) *handoffListener {
	l := &handoffListener{Listener: ln, accepted: make(chan acceptResult), back: make(chan net.Conn, 64), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *handoffListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.accepted <- acceptResult{c, err}:
		case <-l.done:
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
		}
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.back:
		return c, nil
	case a := <-l.accepted:
		return a.c, a.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// give hands c to net/http; false once the listener is closed.
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.back <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	err := l.Listener.Close()
	for {
		select {
		case c := <-l.back:
			c.Close()
		default:
			return err
		}
	}
}

// keepAliveAfter reports whether the connection of r may carry another
// request after the answer.
func keepAliveAfter(r *http.Request) bool {
	return r.ProtoAtLeast(1, 1) && !r.Close
}

// returnMemory gives the operating system back what a burst of arriving
// connections left behind once they are parked: their handlers' stacks and
// buffers are garbage then, but without another collection the runtime
// would keep the pages for minutes, and a server that holds thousands of
// connections would look, and be, several times its size. It returns what
// starting left behind (a password hash's 19 MiB among it) at once, then
// checks every quarter of a second: after the number of waiting deliveries
// rose by a thousand or more and then held still for a tick, it collects
// and returns the memory (debug.FreeOSMemory, a few milliseconds).
func (s *Server) returnMemory(done <-chan struct{}) {
	debug.FreeOSMemory()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var base, last int64 // waiting at the last return, and at the last tick
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		now := s.waiting.Load()
		if now < base {
			base = now
		}
		still := now-last < 64 && last-now < 64
		if now-base >= memoryReturnStep && still {
			debug.FreeOSMemory()
			base = now
		}
		last = now
	}
}

// memoryReturnStep is the rise in waiting deliveries after which the
// memory of their arrival is returned.
const memoryReturnStep = 1000
