package http_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// WithPostgres keeps the server's data in a fresh database on the server
// TIDINGS_TEST_POSTGRES names, dropped when the test ends; without one the
// test is skipped (or fails, with TIDINGS_REQUIRE_POSTGRES=1).
func WithPostgres(tb testing.TB) Option {
	tb.Helper()
	server := os.Getenv("TIDINGS_TEST_POSTGRES")
	if server == "" {
		if os.Getenv("TIDINGS_REQUIRE_POSTGRES") == "1" {
			tb.Fatal("TIDINGS_REQUIRE_POSTGRES=1 but TIDINGS_TEST_POSTGRES names no server")
		}
		tb.Skip("TIDINGS_TEST_POSTGRES names no PostgreSQL server")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		tb.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "tidings_http_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close(ctx)
	})
	u, err := url.Parse(server)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return func(s *TestServer) { s.DB.Path = u.String() }
}

// A held poll costs the database nothing while it waits: with 1,000 polls
// held, not one statement reaches PostgreSQL until a message commits.
func TestIdlePollsSendNoStatementsToPostgres(t *testing.T) {
	s := MustOpenServer(t, WithPostgres(t))
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0").Cursor
	const polls = 1000
	answers := make([]<-chan heldPoll, polls)
	for i := range answers {
		answers[i] = holdPoll(t, s, "Authorization", "Bearer "+bobToken, start)
	}
	waitFor(t, "1,000 held polls", func() bool { return s.Hub.WaitingFor(bob.ID) == polls })

	window := 5 * time.Second
	if v, err := time.ParseDuration(os.Getenv("TIDINGS_IDLE_WINDOW")); err == nil {
		window = v
	}
	before := s.DB.Statements()
	time.Sleep(window) // the idle time being measured, not a synchronisation
	if idle := s.DB.Statements() - before; idle != 0 {
		t.Fatalf("%d held polls sent %d statements to PostgreSQL in %s, want 0", polls, idle, window)
	}
	t.Logf("%d polls held for %s: 0 statements", polls, window)

	before = s.DB.Statements()
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "wake up"})
	for i, got := range answers {
		if r := <-got; r.status != 200 {
			t.Fatalf("poll %d answered %d %s", i, r.status, r.body)
		}
	}
	t.Logf("one publish and %d answers: %s statements", polls, strconv.FormatInt(s.DB.Statements()-before, 10))
}
