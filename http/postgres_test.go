package http_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
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

// The same on PostgreSQL, where other nodes may share the database (see
// testIdlePollsSendNoStatements).
func TestIdlePollsSendNoStatementsToPostgres(t *testing.T) {
	testIdlePollsSendNoStatements(t, WithPostgres(t))
}

// twoNodes is a server (node B) on a fresh PostgreSQL database, listening
// for other nodes' commits, and a second store on the same database (node
// A) with an admin to publish as.
func twoNodes(tb testing.TB) (*TestServer, *sqlstore.DB, *tidings.User) {
	tb.Helper()
	s := MustOpenServer(tb, WithPostgres(tb))
	s.PollTimeout = time.Minute
	listen(tb, s, nil)

	a := sqlstore.NewDB(s.DB.Path)
	a.Logger = slog.New(slog.DiscardHandler)
	if err := a.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	publisher := &tidings.User{Login: "publisher", Name: "Publisher", Email: "p@example.org", Role: tidings.RoleAdmin}
	if err := a.CreateUser(tidings.NewSystemContext(context.Background()), publisher, "password1"); err != nil {
		tb.Fatal(err)
	}
	return s, a, publisher
}

// listen runs a Listener for the server's node until the test ends, as
// serve does on PostgreSQL, and returns once it listens. With store, it
// tells that store of other nodes' commits, and the store keeps inboxes in
// memory while it listens.
func listen(tb testing.TB, s *TestServer, store *sqlstore.DB) {
	tb.Helper()
	listening := make(chan struct{})
	var once sync.Once
	l := &sqlstore.Listener{URL: s.DB.Path, Node: s.DB.Node, Store: store, Notifier: s.Hub, Resync: s.Hub.WakeAll,
		Connected: func(c bool) {
			if c {
				once.Do(func() { close(listening) })
			}
		}, Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	<-listening
}

// A poll held on node B is answered by a message committed on node A.
func TestPollHeldOnOneNodeIsWokenByAnother(t *testing.T) {
	s, a, publisher := twoNodes(t)
	bob, token := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, token, "timeout=0").Cursor
	poll := holdPoll(t, s, "Authorization", "Bearer "+token, start)
	waitFor(t, "bob's poll to be held on B", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })
	as := tidings.NewContextWithAuth(context.Background(), &tidings.Auth{User: publisher, Session: &tidings.Session{}})
	if _, err := a.PublishMessage(as, &tidings.Publication{Recipients: []string{"bob"}, Text: "from node A"}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-poll:
		if got.status != 200 || !strings.Contains(string(got.body), "from node A") {
			t.Fatalf("the poll on B answered %d %s", got.status, got.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a commit on A did not wake the poll held on B")
	}
}

// BenchmarkWakeUpAcrossNodes measures, per message, the time from node A's
// commit (PublishMessage returning) to a poll held on node B having its
// answer: the NOTIFY, B's LISTEN connection, B's hub, B's read and the HTTP
// answer. Both nodes are in this process, each with its own store, hub and
// listener, on one PostgreSQL database.
func BenchmarkWakeUpAcrossNodes(b *testing.B) {
	s, a, publisher := twoNodes(b)
	target, token := s.MustCreateUser(b, "bob", false)
	pubCtx := tidings.NewContextWithAuth(context.Background(), &tidings.Auth{User: publisher, Session: &tidings.Session{}})
	pub := &tidings.Publication{Recipients: []string{"bob"}, Text: "from node A"}
	cursor := s.MustPoll(b, token, "timeout=0").Cursor
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	wake := make([]time.Duration, 0, b.N)

	b.ResetTimer()
	for range b.N {
		var committed time.Time
		p, end := pollWokenBy(b, s, client, token, target.ID, cursor, func() {
			if _, err := a.PublishMessage(pubCtx, pub); err != nil {
				b.Fatal(err)
			}
			committed = time.Now()
		})
		cursor = p.Cursor
		wake = append(wake, end.Sub(committed))
	}
	b.StopTimer()
	report(b, "commit-on-A-to-answer-on-B", wake)
}
