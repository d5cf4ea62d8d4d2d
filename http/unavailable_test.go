package http_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidings/tidings"
)

// awayMessages is the real message store, made to answer as a database
// that cannot be reached while away is set.
type awayMessages struct {
	tidings.MessageService
	away  atomic.Bool
	tried atomic.Int64 // reads refused while away
	read  atomic.Int64 // reads answered
}

func (a *awayMessages) FindMessages(ctx context.Context, userID int64, since *tidings.Cursor, limit int) (*tidings.MessageBatch, error) {
	if a.away.Load() {
		a.tried.Add(1)
		return nil, tidings.Errorf(tidings.EUNAVAILABLE, "The database cannot be reached.")
	}
	b, err := a.MessageService.FindMessages(ctx, userID, since, limit)
	a.read.Add(1)
	return b, err
}

// Held polls and streams stay open while the database is away, and deliver
// what was committed once it is back.
func TestDeliveriesWaitForTheDatabase(t *testing.T) {
	var msgs *awayMessages
	s := MustOpenServer(t, func(s *TestServer) {
		msgs = &awayMessages{MessageService: s.DB}
		s.messages = msgs
	})
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0").Cursor

	poll := holdPoll(t, s, "Authorization", "Bearer "+bobToken, start)
	sse := openSSEWith(t, s, "Authorization", "Bearer "+bobToken, "since="+start)
	ws := mustDialWS(t, s, bobToken, "since="+start)
	// Waiting, not only subscribed: a first read still under way when the
	// database goes could see the publish below.
	waitFor(t, "bob's three deliveries", func() bool { return s.Hub.WaitingFor(bob.ID) == 3 && s.Waiting() == 3 })

	msgs.away.Store(true)
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "committed while away"})
	waitFor(t, "the deliveries to try and fail", func() bool { return msgs.tried.Load() >= 3 })
	select {
	case got := <-poll:
		t.Fatalf("the held poll answered %d %s while the database was away", got.status, got.body)
	default:
	}
	if n := s.Hub.WaitingFor(bob.ID); n != 3 {
		t.Fatalf("%d of bob's deliveries still wait, want 3", n)
	}
	// New requests that need the database are refused meanwhile.
	s.MustFail(t, "GET", "/api/v1/poll?timeout=0&since="+start, bobToken, nil, 503, "unavailable", "")

	msgs.away.Store(false)
	got := <-poll
	if got.status != 200 || !strings.Contains(string(got.body), "committed while away") {
		t.Fatalf("after the database came back the poll answered %d %s", got.status, got.body)
	}
	if m := sse.NextMessage(t).Message(t); m.Text != "committed while away" {
		t.Fatalf("the stream delivered %q", m.Text)
	}
	if f := readFrame(t, ws); f.Type != "message" || f.Message.Text != "committed while away" {
		t.Fatalf("the WebSocket delivered %+v", f)
	}
}
