package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrapeMetrics returns the text of GET url.
func scrapeMetrics(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	return string(body)
}

// metricValue finds the value of one series, such as
// `tidings_deliveries_open{transport="poll"}`, in a scrape.
func metricValue(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// waitMetric scrapes url until the series satisfies ok.
func waitMetric(t *testing.T, url, series string, ok func(float64) bool) {
	t.Helper()
	var last string
	deadline := time.Now().Add(15 * time.Second)
	for {
		last = scrapeMetrics(t, url)
		if v, found := metricValue(last, series); found && ok(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last scrape:\n%s", series, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func is(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

// The operator's listener shows held polls and open streams, what was
// delivered and how the writes were committed; the public address does not
// serve the metrics at all.
func TestServeMetrics(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tidings.db")
	urls := make(chan string, 1)
	base, out, _ := serveWith(t, nil, func(m *Main) { m.MetricsReady = func(u string) { urls <- u } },
		"--demo", "--demo-every", "0", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--db", db)
	metricsURL := <-urls
	if strings.HasPrefix(metricsURL, base) {
		t.Fatalf("metrics at %s share the public address %s", metricsURL, base)
	}
	creds := demoCredentials(t, out.String())
	bob := creds["bob"][1]
	start := getPoll(t, base, bob, "timeout=0")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/stream?since="+start.Cursor, nil)
	req.Header.Set("Authorization", "Bearer "+bob)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	streamed := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stream.Body)
		for lines.Scan() {
			if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				streamed <- data
				return
			}
		}
		close(streamed)
	}()

	polled := make(chan poll, 1)
	go func() {
		req, _ := http.NewRequest("GET", base+"/api/v1/poll?timeout=20&since="+start.Cursor, nil)
		req.Header.Set("Authorization", "Bearer "+bob)
		var p poll
		if resp, err := http.DefaultClient.Do(req); err == nil {
			json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
		}
		polled <- p
	}()
	waitMetric(t, metricsURL, `tidings_deliveries_open{transport="poll"}`, is(1))
	waitMetric(t, metricsURL, `tidings_deliveries_open{transport="sse"}`, is(1))
	before := scrapeMetrics(t, metricsURL)
	publishes, _ := metricValue(before, "tidings_publish_commit_seconds_count")
	statements, ok := metricValue(before, `tidings_database_statements_total{for="clients"}`)
	if !ok {
		t.Fatalf("no statements for clients counted:\n%s", before)
	}
	// The first poll took the demo's messages.
	polledBefore, _ := metricValue(before, `tidings_messages_delivered_total{transport="poll"}`)

	code, _, stderr := run(t, map[string]string{"TIDINGS_TOKEN": creds["alice"][1]}, "",
		"publish", "--server", base, "--to", "bob", "Coffee in the kitchen")
	if code != 0 {
		t.Fatalf("publish exited %d: %s", code, stderr)
	}
	select {
	case p := <-polled:
		if len(p.Messages) != 1 {
			t.Fatalf("bob's poll answered %+v", p)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("bob's poll did not answer")
	}
	select {
	case data, ok := <-streamed:
		if !ok || !strings.Contains(data, "Coffee in the kitchen") {
			t.Fatalf("bob's stream sent %q", data)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("bob's stream sent nothing")
	}

	waitMetric(t, metricsURL, `tidings_messages_delivered_total{transport="poll"}`, is(polledBefore+1))
	waitMetric(t, metricsURL, `tidings_messages_delivered_total{transport="sse"}`, is(1))
	waitMetric(t, metricsURL, `tidings_delivery_latency_seconds_count{transport="sse"}`, is(1))
	waitMetric(t, metricsURL, `tidings_deliveries_open{transport="poll"}`, is(0))
	after := scrapeMetrics(t, metricsURL)
	if n, _ := metricValue(after, "tidings_publish_commit_seconds_count"); n != publishes+1 {
		t.Errorf("publish-to-commit observations went from %v to %v, want one more", publishes, n)
	}
	// A publish is its transaction's BEGIN and COMMIT and the writes between.
	if n, _ := metricValue(after, `tidings_database_statements_total{for="clients"}`); n < statements+3 {
		t.Errorf("statements for clients went from %v to %v over a publish, want 3 more at least", statements, n)
	}
	if _, ok := metricValue(after, `tidings_database_statements_total{for="upkeep"}`); !ok {
		t.Errorf("no statements counted as upkeep:\n%s", after)
	}
	if n, _ := metricValue(after, "tidings_commit_batch_writes_count"); n < 1 {
		t.Errorf("no group commit observed:\n%s", after)
	}
	cancel()
	waitMetric(t, metricsURL, `tidings_deliveries_open{transport="sse"}`, is(0))

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "tidings_") || strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("the public address serves the metrics (status %d):\n%s", resp.StatusCode, body)
	}
}

func TestMetricsAddrErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-addr", "9090"}, "--metrics-addr"},
		{[]string{"--addr", "127.0.0.1:8080", "--metrics-addr", "127.0.0.1:8080"}, "--metrics-addr must differ from --addr"},
	} {
		code, _, stderr := run(t, nil, "", append([]string{"serve", "--db", filepath.Join(t.TempDir(), "t.db")}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 naming %q", tc.args, code, stderr, tc.want)
		}
	}
}
