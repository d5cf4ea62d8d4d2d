package http_test

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
)

// BenchmarkHeldMemory reports the server's heap per held long poll, event
// stream and WebSocket, parked, after a collection: what a waiting client
// costs beyond its connection's kernel buffers. The clients are raw
// connections in this process, which cost the heap little themselves.
func BenchmarkHeldMemory(b *testing.B) {
	for _, transport := range []string{"poll", "sse", "ws"} {
		b.Run(transport, func(b *testing.B) {
			const n = 2000
			s := MustOpenServer(b)
			_, token := s.MustCreateUser(b, "bob", false)
			addr := strings.TrimPrefix(s.URL(), "http://")
			var req string
			switch transport {
			case "poll":
				req = "GET /api/v1/poll?timeout=300 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n"
			case "sse":
				req = "GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n"
			case "ws":
				req = "GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
					"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
			}
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				conns := make([]net.Conn, 0, n)
				for range n {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := c.Write([]byte(req)); err != nil {
						b.Fatal(err)
					}
					conns = append(conns, c)
				}
				waitFor(b, fmt.Sprintf("%d %s clients to wait", n, transport), func() bool { return s.Waiting() == n })
				runtime.GC()
				runtime.ReadMemStats(&after)
				if f := os.Getenv("TIDINGS_HELD_PROFILE"); f != "" {
					out, _ := os.Create(f + "." + transport)
					pprof.WriteHeapProfile(out)
					out.Close()
				}
				b.ReportMetric(float64(int64(after.HeapInuse+after.StackInuse)-int64(before.HeapInuse+before.StackInuse))/n, "heap-B/conn")
				b.ReportMetric(float64(int64(after.NumGC-before.NumGC)), "gcs")
				for _, c := range conns {
					c.Close()
				}
				waitFor(b, "the clients to be let go", func() bool { return s.Waiting() == 0 })
			}
		})
	}
}
