package http_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain makes a failed dial of the tests' default client say why it
// may have failed: the sockets of the port dialled and the kernel's
// counters of dropped connections. A dial to a test server on loopback
// timed out once in CI; this tells, if it happens again, whether the
// kernel dropped the connection (a full accept queue, a socket of an
// earlier test on the same port) or the process never noticed it was made.
func TestMain(m *testing.M) {
	t := http.DefaultTransport.(*http.Transport)
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
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
