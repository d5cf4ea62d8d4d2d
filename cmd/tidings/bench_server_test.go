package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// The flags of a run against a running server are checked before anything
// runs, each refusal naming the flag to fix.
func TestBenchTargetUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--target", "mercure"}, "--target"},
		{[]string{"--target", "nchan"}, "--target nchan needs --server"},
		{[]string{"--target", "nchan", "--server", "127.0.0.1:8080"}, "--server must be"},
		{[]string{"--target", "nchan", "--server", "ftp://127.0.0.1:8080"}, "--server must be"},
		{[]string{"--target", "nchan", "--server", "http://127.0.0.1:8080/pub"}, "--server must be"},
		{[]string{"--pid-file", "/run/nginx.pid"}, "--pid-file goes with --server"},
		{[]string{"--server", "http://127.0.0.1:8080"}, "needs --login"},
		{[]string{"--login", "admin"}, "--login goes with --server"},
		{[]string{"--target", "nchan", "--server", "http://127.0.0.1:8080", "--login", "admin"}, "--login goes with --server"},
		{[]string{"--target", "empty"}, "--target empty needs --server"},
		{[]string{"--target", "empty", "--server", "http://127.0.0.1:8080"}, "--scenarios publish"},
		{[]string{"--target", "empty", "--server", "http://127.0.0.1:8080", "--scenarios", "publish,held"}, "--scenarios publish"},
		{[]string{"--target", "empty", "--server", "http://127.0.0.1:8080", "--scenarios", "publish", "--login", "admin"}, "--login goes with --server"},
		{[]string{"--scenarios", "held,soak"}, "--scenarios"},
		{[]string{"--target", "nchan", "--server", "http://127.0.0.1:8080", "--scenarios", "idle"}, "--scenarios idle counts Tidings'"},
		{[]string{"--server", "http://127.0.0.1:8080", "--login", "admin", "--scenarios", "held,idle"}, "needs --metrics"},
		{[]string{"--metrics", "http://127.0.0.1:9090/metrics"}, "--metrics goes with --server"},
		{[]string{"--idle-polls", "0"}, "--idle-polls"},
		{[]string{"--idle-window", "10ms"}, "--idle-window"},
		{[]string{"--format", "csv"}, "--format"},
	} {
		args := append([]string{"bench"}, tc.args...)
		code, _, stderr := run(t, nil, "", args...)
		if code != 2 || !strings.Contains(stderr, tc.says) {
			t.Errorf("%q: exit %d, want 2 and %q: %s", tc.args, code, tc.says, stderr)
		}
	}
}

func TestParseNchanMessageID(t *testing.T) {
	c, err := parseNchanMessageID("1796221279:1")
	if err != nil || c.lastModified != "Wed, 02 Dec 2026 14:21:19 GMT" || c.etag != "1" {
		t.Errorf("1796221279:1: %+v, %v", c, err)
	}
	for _, id := range []string{"", "1796221279", "x:1", "1796221279:y"} {
		if _, err := parseNchanMessageID(id); err == nil {
			t.Errorf("%q was taken for a message id", id)
		}
	}
}

// The figures come out as key<TAB>value lines for bench/compare.sh, one
// scenario at a time.
func TestBenchTSV(t *testing.T) {
	code, stdout, stderr := run(t, nil, "", "bench", "--format", "tsv", "--scenarios", "held,publish,answer,idle", "--transports", "poll", "--sizes", "20", "--samples", "10", "--duration", "200ms",
		"--idle-polls", "10", "--idle-window", "2s")
	if code != 0 {
		t.Fatalf("bench exited %d: %s", code, stderr)
	}
	for _, key := range []string{"held.poll.20.kb\t", "held.poll.20.p50\t", "held.poll.20.p99\t", "answer.p50\t", "answer.p99\t", "answer.max\t", "publish.1.rate\t", "publish.16.rate\t", "publish.64.rate\t",
		"idle.per_poll_minute\t0\n", "idle.statements\t0\n", "idle.polls\t10\n", "idle.window\t2s\n", "idle.repolls\t"} {
		if !strings.Contains(stdout, key) {
			t.Errorf("no %q in:\n%s", key, stdout)
		}
	}
	if strings.Contains(stdout, "fanout") || strings.Contains(stdout, "scenario") {
		t.Errorf("more than the figures asked for:\n%s", stdout)
	}
}

// Against bench/empty the bench sends Tidings' publishes, with a token and a
// JSON body, and counts the answers; it makes no users.
func TestBenchAgainstAnEmptyServer(t *testing.T) {
	var publishes, others atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == "POST" && r.URL.Path == "/api/v1/messages" && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") &&
			r.Header.Get("Content-Type") == "application/json" && json.Valid(body) {
			publishes.Add(1)
		} else {
			others.Add(1)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	code, stdout, stderr := run(t, nil, "", "bench", "--target", "empty", "--server", srv.URL, "--scenarios", "answer,publish", "--format", "tsv", "--duration", "200ms", "--samples", "10")
	if code != 0 {
		t.Fatalf("bench exited %d: %s", code, stderr)
	}
	if _, p50, ok := strings.Cut(stdout, "answer.p50\t"); !ok || strings.HasPrefix(p50, "0.00\n") {
		t.Errorf("no publish→answered p50 above 0 in:\n%s", stdout)
	}
	for _, n := range []string{"1", "16", "64"} {
		key := "publish." + n + ".rate\t"
		_, rate, ok := strings.Cut(stdout, key)
		if !ok || strings.HasPrefix(rate, "0\n") {
			t.Errorf("no rate above 0 for %s publishers in:\n%s", n, stdout)
		}
	}
	if publishes.Load() == 0 || others.Load() != 0 {
		t.Errorf("the server saw %d publishes and %d other requests", publishes.Load(), others.Load())
	}

	// --publishers picks the numbers of publishers.
	code, stdout, stderr = run(t, nil, "", "bench", "--target", "empty", "--server", srv.URL, "--scenarios", "publish", "--format", "tsv", "--duration", "200ms", "--publishers", "3")
	if code != 0 {
		t.Fatalf("bench --publishers 3 exited %d: %s", code, stderr)
	}
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "publish.3.rate\t") {
		t.Errorf("bench --publishers 3 printed:\n%s", stdout)
	}
}

// Against a running Tidings, the bench makes its users as the admin, runs
// the scenarios on that server (the idle one reading its metrics) and
// removes its users afterwards.
func TestBenchAgainstRunningTidings(t *testing.T) {
	env := map[string]string{"TIDINGS_DB": filepath.Join(t.TempDir(), "tidings.db")}
	metricsURL := make(chan string, 1)
	base, _, _ := serveWith(t, env, func(m *Main) { m.MetricsReady = func(u string) { metricsURL <- u } },
		"--addr", "127.0.0.1:0", "--poll-timeout", "5m", "--metrics-addr", "127.0.0.1:0")
	if code, _, stderr := run(t, env, "correct horse battery\n", "user", "add", "--login", "dora", "--name", "Dora", "--email", "dora@example.org", "--admin"); code != 0 {
		t.Fatalf("user add exited %d: %s", code, stderr)
	}
	code, stdout, stderr := run(t, nil, "correct horse battery\n", "bench", "--server", base, "--login", "dora", "--metrics", <-metricsURL,
		"--transports", "poll", "--sizes", "5", "--samples", "10", "--duration", "200ms", "--fanout", "3", "--idle-polls", "5", "--idle-window", "3s")
	if code != 0 {
		t.Fatalf("bench exited %d: %s", code, stderr)
	}
	for _, row := range []string{"running server at " + base, "held poll", "16 publishers", "fan-out", "idle polls", "5 polls, 3s  0 statements per idle poll per minute"} {
		if !strings.Contains(stdout, row) {
			t.Errorf("the table has no %q:\n%s", row, stdout)
		}
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Post(base+"/api/v1/login", "application/json", strings.NewReader(`{"login":"dora","password":"correct horse battery"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("log in: %v %v", err, resp)
	}
	resp.Body.Close()
	resp, err = c.Get(base + "/api/v1/users")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(body), "bench-") {
		t.Errorf("the bench's users are left behind: %s", body)
	}
}

// The latency samples go out on a connection of their own, over HTTP or
// HTTPS; when the server ends it after an answer, the next sample dials
// again.
func TestSampleConnDialsAgainAfterClose(t *testing.T) {
	for _, start := range []func(http.Handler) *httptest.Server{httptest.NewServer, httptest.NewTLSServer} {
		var publishes atomic.Int64
		conns := map[string]bool{}
		var mu sync.Mutex
		srv := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			mu.Lock()
			conns[r.RemoteAddr] = true
			mu.Unlock()
			if publishes.Add(1)%2 == 0 {
				w.Header().Set("Connection", "close")
			}
			w.WriteHeader(http.StatusAccepted)
		}))
		b := &bench{url: srv.URL, cfg: benchConfig{target: "tidings"}, publishToken: "t", client: srv.Client()}
		c, err := b.sampleConn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			if err := b.publishSample(context.Background(), c, "target", fmt.Sprintf("sample %d", i)); err != nil {
				t.Fatalf("%s, sample %d: %v", srv.URL, i, err)
			}
		}
		if publishes.Load() != 6 || len(conns) != 3 {
			t.Errorf("%s: %d publishes on %d connections, want 6 on 3", srv.URL, publishes.Load(), len(conns))
		}
		c.close()
		srv.Close()
	}
}
