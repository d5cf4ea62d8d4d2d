package http_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPublishRules checks who may address whom (SPEC §3).
func TestPublishRules(t *testing.T) {
	s := MustOpenServer(t)
	admin, adminTok := s.MustCreateUser(t, "alice", true)
	bob, bobTok := s.MustCreateUser(t, "bob", false)
	_, carolTok := s.MustCreateUser(t, "carol", false)
	_, daveTok := s.MustCreateUser(t, "dave", false)
	_ = admin
	project := s.MustCreateProject(t, bobTok, "Office move", "carol")
	publishTok := s.MustCreateToken(t, bob, "publish")

	starts := map[string]string{}
	for name, tok := range map[string]string{"bob": bobTok, "carol": carolTok, "dave": daveTok} {
		starts[name] = s.MustPoll(t, tok, "timeout=0").Cursor
	}
	received := func(name, tok string) []string {
		t.Helper()
		p := s.MustPoll(t, tok, "timeout=0&since="+starts[name])
		starts[name] = p.Cursor
		var texts []string
		for _, m := range p.Messages {
			if m.Module == "message" {
				texts = append(texts, m.Text)
			}
		}
		return texts
	}

	t.Run("user addresses someone sharing a project", func(t *testing.T) {
		if n := s.MustPublish(t, bobTok, map[string]any{"recipients": []string{"carol"}, "text": "hi carol"}); n != 1 {
			t.Fatalf("recipients = %d, want 1", n)
		}
		if got := received("carol", carolTok); len(got) != 1 || got[0] != "hi carol" {
			t.Fatalf("carol received %q", got)
		}
	})
	t.Run("user may not address a stranger or an unknown login alike", func(t *testing.T) {
		e1 := s.MustFail(t, "POST", "/api/v1/messages", bobTok, map[string]any{"recipients": []string{"dave"}, "text": "hi"}, 403, "forbidden", "recipients")
		e2 := s.MustFail(t, "POST", "/api/v1/messages", bobTok, map[string]any{"recipients": []string{"nobody"}, "text": "hi"}, 403, "forbidden", "recipients")
		if strings.Contains(e1.Error.Message, "exist") != strings.Contains(e2.Error.Message, "exist") {
			t.Errorf("answers differ in whether the login exists: %q vs %q", e1.Error.Message, e2.Error.Message)
		}
		// One bad recipient stores nothing for the good ones.
		s.MustFail(t, "POST", "/api/v1/messages", bobTok, map[string]any{"recipients": []string{"carol", "dave"}, "text": "hi"}, 403, "forbidden", "recipients")
		if got := received("carol", carolTok); len(got) != 0 {
			t.Fatalf("carol received %q from a refused publish", got)
		}
	})
	t.Run("project members, minus the sender", func(t *testing.T) {
		if n := s.MustPublish(t, carolTok, map[string]any{"project": project, "text": "to the project"}); n != 1 {
			t.Fatalf("recipients = %d, want 1 (bob)", n)
		}
		if got := received("bob", bobTok); len(got) != 1 {
			t.Fatalf("bob received %q", got)
		}
		if got := received("carol", carolTok); len(got) != 0 {
			t.Fatalf("the sender received her own message: %q", got)
		}
	})
	t.Run("a project the user is not in is not found", func(t *testing.T) {
		s.MustFail(t, "POST", "/api/v1/messages", daveTok, map[string]any{"project": project, "text": "hi"}, 404, "not_found", "project")
		s.MustFail(t, "POST", "/api/v1/messages", daveTok, map[string]any{"project": 9999, "text": "hi"}, 404, "not_found", "project")
	})
	t.Run("admin addresses anyone; unknown login is invalid", func(t *testing.T) {
		if n := s.MustPublish(t, adminTok, map[string]any{"recipients": []string{"dave"}, "text": "from admin"}); n != 1 {
			t.Fatalf("recipients = %d", n)
		}
		if got := received("dave", daveTok); len(got) != 1 {
			t.Fatalf("dave received %q", got)
		}
		e := s.MustFail(t, "POST", "/api/v1/messages", adminTok, map[string]any{"recipients": []string{"dave", "ghost"}, "text": "x"}, 400, "invalid", "recipients")
		if !strings.Contains(e.Error.Message, "ghost") {
			t.Errorf("message %q does not name the unknown login", e.Error.Message)
		}
	})
	t.Run("publish token addresses anyone and does nothing else", func(t *testing.T) {
		if n := s.MustPublish(t, publishTok, map[string]any{"recipients": []string{"dave"}, "text": "via token"}); n != 1 {
			t.Fatalf("recipients = %d", n)
		}
		if got := received("dave", daveTok); len(got) != 1 || got[0] != "via token" {
			t.Fatalf("dave received %q", got)
		}
		s.MustFail(t, "GET", "/api/v1/projects", publishTok, nil, 403, "forbidden", "")
		s.MustFail(t, "GET", "/api/v1/poll?timeout=0", publishTok, nil, 403, "forbidden", "")
	})
	t.Run("answer", func(t *testing.T) {
		var res struct {
			Event      int64
			Recipients int
			ValidFrom  time.Time `json:"valid_from"`
			ValidUntil time.Time `json:"valid_until"`
		}
		s.MustDo(t, "POST", "/api/v1/messages", adminTok, map[string]any{"recipients": []string{"bob", "carol"}, "text": "x", "ttl": "10m"}, http.StatusAccepted, &res)
		if res.Event == 0 || res.Recipients != 2 || res.ValidUntil.Sub(res.ValidFrom) != 10*time.Minute {
			t.Fatalf("answer = %+v", res)
		}
	})
}

// TestPublishBadInput: a clear error with code and field, and nothing stored.
func TestPublishBadInput(t *testing.T) {
	s := MustOpenServer(t)
	_, admin := s.MustCreateUser(t, "alice", true)
	_, bobTok := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobTok, "timeout=0").Cursor
	to := []string{"bob"}
	cases := []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"missing text", map[string]any{"recipients": to}, 400, "invalid", "text"},
		{"blank text", map[string]any{"recipients": to, "text": "   "}, 400, "invalid", "text"},
		{"unknown field", map[string]any{"recipients": to, "text": "x", "colour": "red"}, 400, "invalid", "colour"},
		{"wrong type", `{"recipients": "bob", "text": "x"}`, 400, "invalid", "recipients"},
		{"no recipients", map[string]any{"text": "x"}, 400, "invalid", "recipients"},
		{"unknown recipient", map[string]any{"recipients": []string{"bob", "ghost"}, "text": "x"}, 400, "invalid", "recipients"},
		{"ttl not a duration", map[string]any{"recipients": to, "text": "x", "ttl": "soon"}, 400, "invalid", "ttl"},
		{"ttl over 24h", map[string]any{"recipients": to, "text": "x", "ttl": "25h"}, 400, "invalid", "ttl"},
		{"valid_from not a time", map[string]any{"recipients": to, "text": "x", "valid_from": "tomorrow"}, 400, "invalid", "valid_from"},
		{"valid_from too far", map[string]any{"recipients": to, "text": "x", "valid_from": time.Now().Add(31 * 24 * time.Hour).Format(time.RFC3339)}, 400, "invalid", "valid_from"},
		{"script URL", map[string]any{"recipients": to, "text": "x", "item": map[string]any{"name": "n", "url": "javascript:alert(1)"}}, 400, "invalid", "item.url"},
		{"bad process", map[string]any{"recipients": to, "text": "x", "process": "explode"}, 400, "invalid", "process"},
		{"module with a capital", map[string]any{"recipients": to, "text": "x", "module": "Todo"}, 400, "invalid", "module"},
		{"module starting with a digit", map[string]any{"recipients": to, "text": "x", "module": "1todo"}, 400, "invalid", "module"},
		{"module of 65 characters", map[string]any{"recipients": to, "text": "x", "module": strings.Repeat("m", 65)}, 400, "invalid", "module"},
		{"malformed JSON", `{"recipients": ["bob"], "text": `, 400, "invalid", ""},
		{"trailing data", `{"recipients": ["bob"], "text": "x"} {}`, 400, "invalid", ""},
		{"invalid UTF-8", []byte("{\"recipients\": [\"bob\"], \"text\": \"\xff\xfe\"}"), 400, "invalid", ""},
		{"2 MiB body", map[string]any{"recipients": to, "text": strings.Repeat("x", 2<<20)}, 413, "too_large", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.MustFail(t, "POST", "/api/v1/messages", admin, c.body, c.status, c.code, c.field)
		})
	}
	if p := s.MustPoll(t, bobTok, "timeout=0&since="+start); len(p.Messages) != 0 {
		t.Fatalf("refused publishes stored %d messages for bob", len(p.Messages))
	}
}

func TestPublishChunkedBodyOverLimit(t *testing.T) {
	s := MustOpenServer(t)
	_, admin := s.MustCreateUser(t, "alice", true)
	body := `{"recipients":["alice"],"text":"` + strings.Repeat("x", 2<<20) + `"}`
	// A reader of unknown length makes the client send it chunked, so the
	// limit must hold while reading, not only on Content-Length.
	req, _ := http.NewRequest("POST", s.URL()+"/api/v1/messages", struct{ *strings.Reader }{strings.NewReader(body)})
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength > 0 {
		t.Fatalf("chunked 2 MiB body: status %d (content length %d), want 413", resp.StatusCode, req.ContentLength)
	}
}

// TestPublishWhoseClientHungUpLogsNoError checks that a publish whose
// client went away before its answer is not reported as the server's
// failure: a load test that stops, or a browser tab closed mid-request,
// would fill the log with errors otherwise.
func TestPublishWhoseClientHungUpLogsNoError(t *testing.T) {
	logs := &recordedLogs{}
	s := MustOpenServer(t, WithLogger(slog.New(logs)))
	_, aliceTok := s.MustCreateUser(t, "alice", true)
	start := s.MustPoll(t, aliceTok, "timeout=0").Cursor

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := s.NewRequest(t, "POST", "/api/v1/messages", aliceTok, map[string]any{"recipients": []string{"alice"}, "text": "never answered"}).WithContext(ctx)
	s.Server.ServeHTTP(httptest.NewRecorder(), req)

	if got := logs.at(slog.LevelWarn); len(got) > 0 {
		t.Errorf("a publish whose client hung up logged %q", got)
	}
	if got := logs.at(slog.LevelDebug); !slices.ContainsFunc(got, func(m string) bool { return strings.Contains(m, "ended before its answer") }) {
		t.Errorf("debug log %q does not tell of the request that ended", got)
	}
	if p := s.MustPoll(t, aliceTok, "timeout=0&since="+start); len(p.Messages) != 0 {
		t.Errorf("a publish abandoned before it ran was stored: %+v", p.Messages)
	}
	// A failure that is the server's is still logged as one.
	s.MustPublish(t, aliceTok, map[string]any{"recipients": []string{"alice"}, "text": "answered"})
	if p := s.MustPoll(t, aliceTok, "timeout=0&since="+start); len(p.Messages) != 1 || p.Messages[0].Text != "answered" {
		t.Errorf("messages after a publish = %+v, want the one answered", p.Messages)
	}
}

// recordedLogs is a slog handler that keeps its records' messages.
type recordedLogs struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *recordedLogs) Enabled(context.Context, slog.Level) bool { return true }
func (l *recordedLogs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *recordedLogs) WithGroup(string) slog.Handler            { return l }

func (l *recordedLogs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

// at returns the messages, with their attributes, of the records of level
// or above; LevelDebug returns those of exactly that level.
func (l *recordedLogs) at(level slog.Level) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		if r.Level >= level && (level != slog.LevelDebug || r.Level == slog.LevelDebug) {
			msg := r.Message
			r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
			out = append(out, msg)
		}
	}
	return out
}
