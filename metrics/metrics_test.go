package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings"
)

func scrape(t *testing.T, m *Metrics, method, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(method, path, nil))
	body, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(body)
}

func TestMetricsText(t *testing.T) {
	m := New()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m.now = func() time.Time { return now }

	code, text := scrape(t, m, "GET", "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, line := range []string{
		`tidings_deliveries_open{transport="websocket"} 0`,
		`tidings_messages_delivered_total{transport="sse"} 0`,
		`tidings_database_errors_total{kind="retry"} 0`,
		`tidings_janitor_runs_total{result="error"} 0`,
		"go_goroutines ",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("before anything happened, no %q in\n%s", line, text)
		}
	}

	m.DeliveryOpened("poll")
	m.DeliveryOpened("sse")
	m.DeliveryOpened("sse")
	m.DeliveryClosed("poll")
	m.Delivered("sse", []*tidings.Message{
		{ValidFrom: now.Add(-3 * time.Millisecond)},
		{ValidFrom: now.Add(time.Second)},
		// Committed here: measured from the commit, not the whole
		// millisecond of valid_from before it.
		{ValidFrom: now.Add(-5 * time.Millisecond), Committed: now.Add(-150 * time.Microsecond)},
	})
	m.CountStatements(func() (int64, int64) { return 12, 7 })
	m.BatchCommitted(3, 2*time.Millisecond)
	m.PublishCommitted(5 * time.Millisecond)
	m.JanitorRun(nil)
	m.JanitorRun(errors.New("disk full"))
	m.SchedulerRun(4, nil)
	m.DatabaseError("unavailable")

	_, text = scrape(t, m, "GET", "/metrics")
	for _, line := range []string{
		`tidings_deliveries_open{transport="poll"} 0`,
		`tidings_deliveries_open{transport="sse"} 2`,
		`tidings_messages_delivered_total{transport="sse"} 3`,
		// 3ms, a message from a clock ahead of ours counted as 0, and
		// 150µs from a commit.
		`tidings_delivery_latency_seconds_bucket{transport="sse",le="5e-05"} 1`,
		`tidings_delivery_latency_seconds_bucket{transport="sse",le="0.0002"} 2`,
		`tidings_delivery_latency_seconds_bucket{transport="sse",le="0.0016"} 2`,
		`tidings_delivery_latency_seconds_bucket{transport="sse",le="0.0032"} 3`,
		`tidings_commit_batch_writes_bucket{le="2"} 0`,
		`tidings_commit_batch_writes_bucket{le="4"} 1`,
		`tidings_commit_batch_writes_sum 3`,
		`tidings_commit_seconds_count 1`,
		`tidings_publish_commit_seconds_count 1`,
		`tidings_janitor_runs_total{result="ok"} 1`,
		`tidings_janitor_runs_total{result="error"} 1`,
		`tidings_scheduler_runs_total{result="ok"} 1`,
		`tidings_scheduled_fired_total 4`,
		`tidings_database_statements_total{for="clients"} 12`,
		`tidings_database_statements_total{for="upkeep"} 7`,
		`tidings_database_errors_total{kind="unavailable"} 1`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("no %q in\n%s", line, text)
		}
	}
}

func TestHandlerServesOnlyMetrics(t *testing.T) {
	m := New()
	for _, req := range [][2]string{{"GET", "/"}, {"GET", "/metrics/x"}, {"POST", "/metrics"}} {
		if code, _ := scrape(t, m, req[0], req[1]); code == 200 {
			t.Errorf("%s %s answered 200", req[0], req[1])
		}
	}
}
