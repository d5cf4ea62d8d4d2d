package http_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTransportSwitchLosesNothing publishes 60 messages at random moments
// while one client moves from long polling to SSE (resuming with
// Last-Event-ID, its URL still naming the cursor it started with) to
// WebSocket and back to polling, each time dropping the connection while
// messages may be on their way: it must see every message once, in order.
func TestTransportSwitchLosesNothing(t *testing.T) {
	const total = 60
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	_, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0").Cursor

	published := make(chan error, 1)
	go func() {
		for i := range total {
			time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
			body := fmt.Sprintf(`{"recipients": ["bob"], "text": "m%02d"}`, i)
			if status, b := s.Do(t, "POST", "/api/v1/messages", alice, body); status != http.StatusAccepted {
				published <- fmt.Errorf("publish %d: status %d: %s", i, status, b)
				return
			}
		}
		published <- nil
	}()

	var got []string
	cursor := start
	via := map[string]int{}
	accept := func(m wireMessage, transport string) {
		t.Helper()
		if seqOf(t, m.ID) <= seqOf(t, cursor) {
			t.Fatalf("%s delivered %q at %d, at or before the cursor %d: a repeat", transport, m.Text, seqOf(t, m.ID), seqOf(t, cursor))
		}
		if want := fmt.Sprintf("m%02d", len(got)); m.Text != want {
			t.Fatalf("%s delivered %q when %q was due", transport, m.Text, want)
		}
		got, cursor = append(got, m.Text), m.ID
		via[transport]++
	}
	poll := func(until int) {
		for len(got) < until {
			p := s.MustPoll(t, bobToken, "timeout=5&since="+cursor)
			for _, m := range p.Messages {
				accept(m, "poll")
			}
			if p.Cursor != cursor {
				t.Fatalf("poll answered cursor %q, want the last message's id %q", p.Cursor, cursor)
			}
		}
	}

	poll(15)

	st := openSSE(t, s, bobToken, "since="+start, cursor)
	for len(got) < 30 {
		if ev := st.Next(t); ev.Event == "message" {
			accept(ev.Message(t), "sse")
		}
	}
	st.Close()

	c := mustDialWS(t, s, bobToken, "since="+cursor)
	for len(got) < 45 {
		if f := readFrame(t, c); f.Type == "message" {
			accept(*f.Message, "ws")
		}
	}
	c.CloseNow()

	poll(total)

	if err := <-published; err != nil {
		t.Fatal(err)
	}
	// Every publish was answered 202, so all of them are committed: whatever
	// more there were to deliver is there now, without waiting.
	if p := s.MustPoll(t, bobToken, "timeout=0&since="+cursor); len(p.Messages) != 0 {
		t.Fatalf("after all %d, the poll still found %+v", total, p.Messages)
	}
	t.Logf("delivered by transport: %v", via)
}

// TestClientScriptIsServed checks what another application's page needs
// from /static/tidings.js: no credentials, a JavaScript type, loadable as
// a module from any origin, revalidated rather than cached blindly.
func TestClientScriptIsServed(t *testing.T) {
	s := MustOpenServer(t)
	resp, err := http.Get(s.URL() + "/static/tidings.js")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	h := resp.Header
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("Content-Type %q, want text/javascript", ct)
	}
	if cc := h.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", cc)
	}
	if h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("Access-Control-Allow-Origin %q: pages of other origins cannot import the module", h.Get("Access-Control-Allow-Origin"))
	}
	if !strings.Contains(string(body), "export class TidingsClient") {
		t.Fatal("the script does not export TidingsClient")
	}
	// Nothing a message contains may reach the page as HTML: the client
	// has no business with the document at all.
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(string(body), sink) {
			t.Errorf("the client uses %s", sink)
		}
	}

	req, _ := http.NewRequest("GET", s.URL()+"/static/tidings.js", nil)
	req.Header.Set("If-None-Match", h.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h.Get("ETag") == "" || resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with ETag %q: status %d, want 304", h.Get("ETag"), resp.StatusCode)
	}
	s.MustFail(t, "GET", "/static/nothing.js", "", nil, http.StatusNotFound, "not_found", "")

	if _, err := exec.LookPath("node"); err == nil {
		file := filepath.Join(t.TempDir(), "tidings.mjs")
		if err := os.WriteFile(file, body, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("node", "--check", file).CombinedOutput(); err != nil {
			t.Fatalf("node --check: %v\n%s", err, out)
		}
	}
}

// clientDriver runs tidings.js in node and prints what its callbacks
// receive, one JSON object a line.
const clientDriver = `
import { TidingsClient } from "./tidings.mjs";
const [base, token, transport, since] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const client = new TidingsClient({
  base, token, transport, since: since || undefined,
  streamTimeout: 500,
  onMessage: (m) => out({ kind: "message", text: m.text, id: m.id, transport: client.state.transport }),
  onMissed: (n) => out({ kind: "missed", missed: n }),
  onReset: () => out({ kind: "reset" }),
  onState: (s) => out({ kind: "state", transport: s.transport, online: s.online, connection: s.connection }),
});
client.start();
process.stdin.on("end", () => { client.stop(); process.exit(0); });
process.stdin.resume();
`

// clientEvent is a line the driver prints.
type clientEvent struct {
	Kind       string `json:"kind"`
	Text       string `json:"text"`
	Transport  string `json:"transport"`
	Online     bool   `json:"online"`
	Connection string `json:"connection"`
}

// runClient starts tidings.js in node against base and returns its
// callbacks' events.
func runClient(t *testing.T, s *TestServer, base, token, transport, since string) <-chan clientEvent {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("TIDINGS_REQUIRE_NODE") == "1" {
			t.Fatal("node is required (TIDINGS_REQUIRE_NODE=1) but not installed")
		}
		t.Skip("node is not installed; set TIDINGS_REQUIRE_NODE=1 to make this a failure")
	}
	dir := t.TempDir()
	status, script := s.Do(t, "GET", "/static/tidings.js", "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /static/tidings.js: %d", status)
	}
	for name, body := range map[string][]byte{"tidings.mjs": script, "driver.mjs": []byte(clientDriver)} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(node, filepath.Join(dir, "driver.mjs"), base, token, transport, since)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	events := make(chan clientEvent, 100)
	go func() {
		defer close(events)
		dec := json.NewDecoder(stdout)
		for {
			var ev clientEvent
			if err := dec.Decode(&ev); err != nil {
				return
			}
			events <- ev
		}
	}()
	return events
}

// expect reads the client's events until one satisfies ok.
func expect(t *testing.T, events <-chan clientEvent, what string, ok func(clientEvent) bool) clientEvent {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, open := <-events:
			if !open {
				t.Fatalf("the client ended while waiting for %s", what)
			}
			if ok(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestClientScriptInNode runs tidings.js against a real server: on each
// transport node has (it has no WebSocket), behind a proxy that buffers
// answers (it must fall back to polling), and with a refused cursor (it
// must start over and say so).
func TestClientScriptInNode(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	_, bobToken := s.MustCreateUser(t, "bob", false)

	// buffering is a proxy that answers only once the server's answer ended.
	buffering := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, s.URL()+r.URL.RequestURI(), nil)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(buffering.Close)

	for _, tc := range []struct {
		name, base, transport, since string
		want                         string // the transport it ends up on
	}{
		{"sse", s.URL(), "sse", "", "sse"},
		{"poll", s.URL(), "poll", "", "poll"},
		{"auto", s.URL(), "auto", "", "sse"},
		{"auto behind a buffering proxy", buffering.URL, "auto", "", "poll"},
		{"refused cursor", s.URL(), "auto", "AAAAAAAAAAAAAAAA", "sse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			since := tc.since
			if since == "" {
				var now struct{ Cursor string }
				s.MustDo(t, "GET", "/api/v1/cursor", bobToken, nil, http.StatusOK, &now)
				since = now.Cursor
			}
			events := runClient(t, s, tc.base, bobToken, tc.transport, since)
			if tc.since != "" {
				expect(t, events, "a reset", func(ev clientEvent) bool { return ev.Kind == "reset" })
				// Starting over, it gets what is deliverable now; then the new ones.
			}
			expect(t, events, "online on "+tc.want, func(ev clientEvent) bool {
				return ev.Kind == "state" && ev.Online && ev.Connection == "online" && ev.Transport == tc.want
			})
			for i := range 3 {
				text := fmt.Sprintf("%s %d <b>", tc.name, i)
				s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": text})
				ev := expect(t, events, "message "+text, func(ev clientEvent) bool {
					return ev.Kind == "message" && (tc.since == "" || strings.HasPrefix(ev.Text, tc.name))
				})
				if ev.Text != text || ev.Transport != tc.want {
					t.Fatalf("got %q by %s, want %q by %s", ev.Text, ev.Transport, text, tc.want)
				}
			}
		})
	}
}

// TestClientScriptGoesOffline: when the server goes away, the client says
// so soon, and keeps trying.
func TestClientScriptGoesOffline(t *testing.T) {
	s := MustOpenServer(t)
	_, bobToken := s.MustCreateUser(t, "bob", false)
	events := runClient(t, s, s.URL(), bobToken, "auto", "")
	expect(t, events, "online", func(ev clientEvent) bool { return ev.Kind == "state" && ev.Online })
	s.MustClose(t)
	expect(t, events, "offline", func(ev clientEvent) bool {
		return ev.Kind == "state" && !ev.Online && ev.Connection == "offline"
	})
}
