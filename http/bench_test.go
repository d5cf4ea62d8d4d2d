package http_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// BenchmarkWakeUp measures, per published message, the time from the
// publish call to the held poll's answer arriving at its client, with 1 and
// with 1,000 polls held at once. It reports p50 and p99 of the whole path
// (durable commit included) and of the wake-up alone (from the commit's
// return to the client having the answer).
func BenchmarkWakeUp(b *testing.B) {
	for _, waiting := range []int{1, 1000} {
		b.Run(fmt.Sprintf("polls=%d", waiting), func(b *testing.B) { benchmarkWakeUp(b, waiting) })
	}
}

func benchmarkWakeUp(b *testing.B, waiting int) {
	s := MustOpenServer(b)
	s.PollTimeout = time.Minute
	ctx := tidings.NewSystemContext(context.Background())
	hash, err := sqlstore.HashPassword("password1")
	if err != nil {
		b.Fatal(err)
	}
	users := make([]*tidings.User, waiting)
	tokens := make([]string, waiting)
	for i := range users {
		u := &tidings.User{Login: fmt.Sprintf("user%04d", i), Name: "User", Email: "u@example.org"}
		if err := s.DB.ImportUser(ctx, u, hash); err != nil {
			b.Fatal(err)
		}
		users[i], tokens[i] = u, s.MustCreateToken(b, u, tidings.ScopeUser)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: waiting + 10, MaxConnsPerHost: 0}}
	defer client.CloseIdleConnections()

	// Everybody but the first holds a poll that nothing answers.
	bg, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 1; i < waiting; i++ {
		wg.Go(func() {
			for bg.Err() == nil {
				req, _ := http.NewRequestWithContext(bg, "GET", s.URL()+"/api/v1/poll?timeout=60", nil)
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	waitFor(b, "the polls to be held", func() bool { return s.Hub.Waiting() >= int64(waiting-1) })

	publisher := &tidings.User{Login: "publisher", Name: "Publisher", Email: "p@example.org", Role: tidings.RoleAdmin}
	if err := s.DB.ImportUser(ctx, publisher, hash); err != nil {
		b.Fatal(err)
	}
	pubCtx := tidings.NewContextWithAuth(context.Background(), &tidings.Auth{User: publisher, Session: &tidings.Session{}})
	target := users[0]
	cursor := s.MustPoll(b, tokens[0], "timeout=0").Cursor
	total := make([]time.Duration, 0, b.N)
	wake := make([]time.Duration, 0, b.N)
	pub := &tidings.Publication{Recipients: []string{target.Login}, Text: "wake up"}

	b.ResetTimer()
	for range b.N {
		start := time.Now()
		var committed time.Time
		p, end := pollWokenBy(b, s, client, tokens[0], target.ID, cursor, func() {
			if _, err := s.DB.PublishMessage(pubCtx, pub); err != nil {
				b.Fatal(err)
			}
			committed = time.Now()
		})
		cursor = p.Cursor
		total = append(total, end.Sub(start))
		wake = append(wake, end.Sub(committed))
	}
	b.StopTimer()
	report(b, "publish-to-answer", total)
	report(b, "wake", wake)
}

// pollWokenBy holds a poll for userID from cursor, runs publish once the
// poll waits, and returns the answer, which must have one message, and when
// it arrived.
func pollWokenBy(b *testing.B, s *TestServer, client *http.Client, token string, userID int64, cursor string, publish func()) (wirePoll, time.Time) {
	answered := make(chan time.Time, 1)
	var p wirePoll
	go func() {
		req, _ := http.NewRequest("GET", s.URL()+"/api/v1/poll?timeout=60&since="+cursor, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			answered <- time.Now()
			return
		}
		decodeBody(resp, &p)
		resp.Body.Close()
		answered <- time.Now()
	}()
	for s.Hub.WaitingFor(userID) == 0 {
		time.Sleep(20 * time.Microsecond)
	}
	publish()
	end := <-answered
	if len(p.Messages) != 1 {
		b.Fatalf("the poll answered %d messages", len(p.Messages))
	}
	return p, end
}

func report(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(q float64) float64 { return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) }
	b.ReportMetric(at(0.50), name+"-p50-µs")
	b.ReportMetric(at(0.99), name+"-p99-µs")
}

// BenchmarkPublishHTTP measures durable publishes per second through the
// API, with 1, 16 and 64 concurrent keep-alive clients.
func BenchmarkPublishHTTP(b *testing.B) {
	for _, publishers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) { benchmarkPublishHTTP(b, publishers) })
	}
}

func benchmarkPublishHTTP(b *testing.B, publishers int) {
	s := MustOpenServer(b)
	_, admin := s.MustCreateUser(b, "alice", true)
	s.MustCreateUser(b, "bob", false)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	defer client.CloseIdleConnections()
	body := []byte(`{"recipients":["bob"],"text":"benchmark message"}`)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range publishers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				req := s.NewRequest(b, "POST", "/api/v1/messages", admin, body)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body) // or the connection is not kept
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
}
