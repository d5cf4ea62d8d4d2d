//go:build !linux

package http

import (
	"errors"
	"net"
)

// poller parks connections only on Linux; elsewhere every held connection
// keeps its goroutine.
type poller struct{}

type parkedConn struct{ conn *net.TCPConn }

func newPoller() (*poller, error) { return nil, errors.ErrUnsupported }

func newParkedConn(*net.TCPConn) (*parkedConn, error) { return nil, errors.ErrUnsupported }

func (p *poller) watch(*parkedConn, func()) error { return errors.ErrUnsupported }
func (p *poller) forget(*parkedConn)              {}
func (p *poller) close()                          {}

func (pc *parkedConn) readNow([]byte) (int, error) { return 0, errors.ErrUnsupported }
