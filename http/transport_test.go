package http_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
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
	if p := s.MustPoll(t, bobToken, "timeout=0.2&since="+cursor); len(p.Messages) != 0 {
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
