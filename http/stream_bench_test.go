package http_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkStream measures how long a published message takes to reach
// 1,000 SSE clients (100 streams each for 10 users), from before the
// publish request to each client's reading of the event: p50 and p99 over
// all clients and iterations, and ns/op until the last one has it. The
// "+stuck" case adds a client that never reads, whose socket buffers are
// already full of large messages and who receives every measured message
// too: its stream is blocked in a write the whole run (shorter than
// StreamWriteTimeout), and the others' figures should not move.
//
//	go test -run x -bench Stream -benchtime 20x ./http/
func BenchmarkStream(b *testing.B) {
	b.Run("clients=1000", func(b *testing.B) { benchmarkStream(b, 1000, false) })
	b.Run("clients=1000+stuck", func(b *testing.B) { benchmarkStream(b, 1000, true) })
}

func benchmarkStream(b *testing.B, clients int, stuck bool) {
	const users = 10
	s := MustOpenServer(b)
	_, alice := s.MustCreateUser(b, "alice", true)
	tokens := make([]string, users)
	recipients := make([]string, users)
	for i := range tokens {
		recipients[i] = fmt.Sprintf("user%d", i)
		_, tokens[i] = s.MustCreateUser(b, recipients[i], false)
	}

	var publishedAt atomic.Int64 // UnixNano of the measured publish in flight
	latencies := make(chan time.Duration, clients)
	transport := &http.Transport{MaxIdleConnsPerHost: clients}
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	for i := range clients {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"/api/v1/stream", nil)
		req.Header.Set("Authorization", "Bearer "+tokens[i%users])
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("stream %d: status %d", i, resp.StatusCode)
		}
		b.Cleanup(func() { resp.Body.Close() })
		go func() {
			br := bufio.NewReaderSize(resp.Body, 16<<10)
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if strings.Contains(string(line), `"text":"measure `) {
					latencies <- time.Since(time.Unix(0, publishedAt.Load()))
				}
			}
		}()
	}
	want := int64(clients)

	// Both cases store the same 500 large messages (about 6 MB, more than
	// the socket buffers on both ends hold) for a user "stuck", so that the
	// database is the same; only the second has a client for them.
	u, token := s.MustCreateUser(b, "stuck", false)
	recipients = append(recipients, "stuck")
	if stuck {
		conn, err := net.Dial("tcp", s.ListenAddr())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", token)
		waitFor(b, "the stuck stream", func() bool { return s.Hub.WaitingFor(u.ID) == 1 })
		want++
		b.Cleanup(func() {
			if s.Hub.WaitingFor(u.ID) == 0 {
				b.Log("the stuck client was dropped during the run")
			}
		})
	}
	big := strings.Repeat("<", 1990)
	for range 500 {
		s.MustPublish(b, alice, map[string]any{"recipients": []string{"stuck"}, "text": big})
	}
	waitFor(b, "every stream to wait", func() bool { return s.Hub.Waiting() == want })

	var all []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		publishedAt.Store(time.Now().UnixNano())
		s.MustPublish(b, alice, map[string]any{"recipients": recipients, "text": fmt.Sprintf("measure %d", i)})
		timeout := time.After(30 * time.Second)
		for range clients {
			select {
			case d := <-latencies:
				all = append(all, d)
			case <-timeout:
				b.Fatalf("iteration %d: only %d of %d clients got the message", i, len(all)%clients, clients)
			}
		}
	}
	b.StopTimer()
	slices.Sort(all)
	b.ReportMetric(ms(all[len(all)/2]), "p50-ms")
	b.ReportMetric(ms(all[len(all)*99/100]), "p99-ms")
	b.ReportMetric(ms(all[len(all)-1]), "max-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
