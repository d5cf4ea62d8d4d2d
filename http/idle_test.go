package http_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidings/tidings"
)

// A held poll costs the database nothing while it waits: with 1,000 polls
// held, not one statement reaches SQLite until a message commits; nor does
// an idle client's next poll, after its last one timed out empty.
func TestIdlePollsSendNoStatements(t *testing.T) {
	testIdlePollsSendNoStatements(t)
}

// testIdlePollsSendNoStatements counts the statements made for clients
// (the store's upkeep — checkpoints, the janitor — is apart) while 1,000
// polls of one user are held, then over 100 polls that time out and come
// again, as an idle browser's do. On PostgreSQL the node listens for other
// nodes' commits, as serve's does.
func testIdlePollsSendNoStatements(t *testing.T, opts ...Option) {
	reads := &countedMessages{}
	s := MustOpenServer(t, append(opts, func(s *TestServer) {
		reads.MessageService = s.DB
		s.messages = reads
	})...)
	if s.DB.Postgres() {
		listen(t, s, s.DB) // as serve does: the store keeps inboxes while it listens
	}
	clients := func() int64 { c, _ := s.DB.StatementCounts(); return c }
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0").Cursor
	const polls = 1000
	s.PollTimeout = 10 * time.Minute // longer than any window measured
	answers := make([]<-chan heldPoll, polls)
	for i := range answers {
		answers[i] = holdPollFor(t, s, "Authorization", "Bearer "+bobToken, start, "600")
	}
	// Held, and done with the one read each makes when it arrives.
	waitFor(t, "1,000 held polls", func() bool { return s.Hub.WaitingFor(bob.ID) == polls && reads.n.Load() >= polls+1 })

	window := 5 * time.Second
	if v, err := time.ParseDuration(os.Getenv("TIDINGS_IDLE_WINDOW")); err == nil {
		window = v
	}
	before := clients()
	time.Sleep(window) // the idle time being measured, not a synchronisation
	if idle := clients() - before; idle != 0 {
		t.Fatalf("%d held polls sent %d statements to the database in %s, want 0", polls, idle, window)
	}
	t.Logf("%d polls held for %s: 0 statements", polls, window)

	// An idle client polls again when its poll times out, with the cursor
	// of the empty answer: a program with its token, a browser with its
	// session.
	cookie := login(t, s, "bob")
	for _, by := range []struct{ what, header, value string }{
		{"a token", "Authorization", "Bearer " + bobToken},
		{"a session", "Cookie", cookie},
	} {
		cursor := start
		<-holdPollFor(t, s, by.header, by.value, cursor, "0") // the credential's first use looks it up
		before = clients()
		for i := range 100 {
			got := <-holdPollFor(t, s, by.header, by.value, cursor, "0")
			var p struct {
				Messages []json.RawMessage `json:"messages"`
				Cursor   string            `json:"cursor"`
			}
			if err := json.Unmarshal(got.body, &p); got.status != 200 || err != nil || len(p.Messages) != 0 || p.Cursor == "" {
				t.Fatalf("idle poll %d with %s answered %d %s", i, by.what, got.status, got.body)
			}
			cursor = p.Cursor
		}
		if idle := clients() - before; idle != 0 {
			t.Errorf("100 polls of an idle client with %s, each timed out and made again, sent %d statements to the database, want 0", by.what, idle)
		}
	}

	before = clients()
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "wake up"})
	for i, got := range answers {
		if r := <-got; r.status != 200 || !strings.Contains(string(r.body), "wake up") {
			t.Fatalf("poll %d answered %d %s", i, r.status, r.body)
		}
	}
	t.Logf("one publish and %d answers: %d statements", polls, clients()-before)
}

// countedMessages counts the reads of the message store.
type countedMessages struct {
	tidings.MessageService
	n atomic.Int64
}

func (c *countedMessages) FindMessages(ctx context.Context, userID int64, since *tidings.Cursor, limit int) (*tidings.MessageBatch, error) {
	defer c.n.Add(1)
	return c.MessageService.FindMessages(ctx, userID, since, limit)
}
