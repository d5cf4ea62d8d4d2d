//go:build linux

package http

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller watches parked connections with an epoll instance of its own, so
// that a connection that waits costs no goroutine: one goroutine waits for
// all of them, and tells a connection's owner when its client sent
// something or left. Each watch fires once (EPOLLONESHOT); the owner reads
// what came and watches again. Go's own netpoller keeps the descriptor too,
// but nobody reads it through Go while it is parked.
type poller struct {
	epfd  int
	evfd  int // written to stop the loop
	mu    sync.Mutex
	conns map[int]*parkedConn
	done  chan struct{}
}

// parkedConn is a connection taken from net/http while it waits.
type parkedConn struct {
	conn       *net.TCPConn
	raw        syscall.RawConn
	fd         int
	onReadable func() // under the poller's lock
	watched    bool   // registered with the poller
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, err
	}
	p := &poller{epfd: epfd, evfd: evfd, conns: make(map[int]*parkedConn), done: make(chan struct{})}
	go p.loop()
	return p, nil
}

func (p *poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := range n {
			fd := int(events[i].Fd)
			if fd == p.evfd {
				return
			}
			p.mu.Lock()
			var fn func()
			if pc := p.conns[fd]; pc != nil {
				fn = pc.onReadable
			}
			p.mu.Unlock()
			if fn != nil {
				fn() // never blocks: it posts an event or starts a goroutine
			}
		}
	}
}

// newParkedConn takes hold of a TCP connection's descriptor.
func newParkedConn(c *net.TCPConn) (*parkedConn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	pc := &parkedConn{conn: c, raw: raw, fd: -1}
	if err := raw.Control(func(fd uintptr) { pc.fd = int(fd) }); err != nil {
		return nil, err
	}
	return pc, nil
}

// watch calls fn once when the client sends something or leaves.
func (p *poller) watch(pc *parkedConn, fn func()) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc.onReadable = fn
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(pc.fd)}
	op := unix.EPOLL_CTL_ADD
	if pc.watched {
		op = unix.EPOLL_CTL_MOD
	}
	if err := unix.EpollCtl(p.epfd, op, pc.fd, &ev); err != nil {
		return err
	}
	pc.watched = true
	p.conns[pc.fd] = pc
	return nil
}

// forget stops watching pc; it must be called before pc is closed or
// handed back to net/http.
func (p *poller) forget(pc *parkedConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc.onReadable = nil
	if !pc.watched {
		return
	}
	pc.watched = false
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, pc.fd, nil)
	if p.conns[pc.fd] == pc {
		delete(p.conns, pc.fd)
	}
}

// close stops the loop. Connections still watched are their owners' to
// close.
func (p *poller) close() {
	var one = [8]byte{1}
	_, _ = unix.Write(p.evfd, one[:])
	<-p.done
	unix.Close(p.epfd)
	unix.Close(p.evfd)
}

// readNow reads what the client has sent without waiting: 0 and no error
// when nothing is there, io.EOF when the client has closed its side.
func (pc *parkedConn) readNow(buf []byte) (int, error) {
	var n int
	var rerr error
	err := pc.raw.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), buf)
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case errors.Is(rerr, unix.EAGAIN):
		return 0, nil
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
