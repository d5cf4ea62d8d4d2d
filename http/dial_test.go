package http_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain gives the tests' default client a dial that says why it failed,
// and that tries once more after a dial that got no answer at all. A dial
// to a test server on loopback once waited its whole 30 s in CI and failed
// a test that had not yet sent a byte; the kernel answers a loopback
// connection in microseconds, or refuses it. A dial that gets no answer in
// 10 s is reported on stderr with the sockets of the port dialled and the
// kernel's counters of dropped connections, and made again on a new
// socket. That hides nothing of the server's: the test still reads and
// checks every answer it was to get.
func TestMain(m *testing.M) {
	t := http.DefaultTransport.(*http.Transport)
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "dial %s: %v; dialling again\n%s", addr, err, dialReport(addr))
			c, err = d.DialContext(ctx, network, addr)
		}
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, dialReport(addr))
		}
		return c, nil
	}
	os.Exit(m.Run())
}

// dialReport describes what the system knows of addr's port.
func dialReport(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	run := func(name string, args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		fmt.Fprintf(&b, "$ %s %s\n%s", name, strings.Join(args, " "), out)
		if err != nil {
			fmt.Fprintf(&b, "(%v)\n", err)
		}
	}
	run("ss", "-tanoi", fmt.Sprintf("( sport = :%s or dport = :%s )", port, port))
	run("nstat", "-az", "TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtTCPReqQFullDrop", "TcpExtTCPBacklogDrop")
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		fmt.Fprintf(&b, "open descriptors of this process: %d\n", len(fds))
	}
	return b.String()
}
