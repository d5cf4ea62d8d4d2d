package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// The store counts its statements on SQLite as on PostgreSQL, apart by
// whom they were for: what a client's publish and read cost counts for
// clients, what the janitor and the scheduler run by themselves counts as
// upkeep, and a reading of the first is what an idle client costs.
func TestStatementsAreCountedForClientsAndUpkeepApart(t *testing.T) {
	db := MustOpenDB(t)
	alice := MustCreateUser(t, db, "alice", true)
	bob := MustCreateUser(t, db, "bob", false)

	clients, upkeep := db.StatementCounts()
	if _, err := db.PublishMessage(as(alice), &tidings.Publication{Recipients: []string{"bob"}, Text: "counted"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FindMessages(as(bob), bob.ID, nil, 10); err != nil {
		t.Fatal(err)
	}
	c, u := db.StatementCounts()
	// A publish is at least its commit's BEGIN, a write and COMMIT, a read
	// at least one statement.
	if c-clients < 4 {
		t.Errorf("a publish and a read counted %d statements for clients, want at least 4", c-clients)
	}
	if u != upkeep {
		t.Errorf("a publish and a read counted %d statements as upkeep, want 0", u-upkeep)
	}
	if db.Statements() != c+u {
		t.Errorf("Statements() = %d, want clients and upkeep together, %d", db.Statements(), c+u)
	}

	// The janitor and the scheduler, with nothing to do for any client.
	clients, upkeep = c, u
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { db.RunJanitor(ctx, time.Millisecond) })
	wg.Go(func() { db.RunScheduler(ctx) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A janitor round and the scheduler's first look: a transaction
		// of several statements each.
		if _, u := db.StatementCounts(); u-upkeep >= 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the janitor and the scheduler counted no upkeep within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if c, _ := db.StatementCounts(); c != clients {
		t.Errorf("the janitor and the scheduler counted %d statements for clients, want 0", c-clients)
	}
}

// Every end of a credential reaches the process at once on SQLite, where
// it is the only writer; on PostgreSQL only while its Listener listens for
// the other nodes' notices, and a new start of listening is told apart
// from the last: what was missed in between is not known.
func TestAccessEndsAreHeardWhileTheListenerListens(t *testing.T) {
	db := MustOpenDB(t)
	heard, since := db.AccessEnds()
	if !db.Postgres() {
		if !heard {
			t.Fatal("on SQLite the ends of credentials are not heard")
		}
		return
	}
	if heard {
		t.Fatal("without a Listener, the ends of other nodes' credentials are heard")
	}
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		up := make(chan bool, 4)
		l := &sqlstore.Listener{URL: db.Path, Node: db.Node, Store: db, Connected: func(c bool) { up <- c }}
		var wg sync.WaitGroup
		wg.Go(func() { l.Run(ctx) })
		select {
		case <-up:
		case <-time.After(10 * time.Second):
			t.Fatal("the listener did not connect")
		}
		h, s := db.AccessEnds()
		if !h || s == since {
			t.Errorf("round %d, listening: heard %v since %d, want heard since other than %d", round, h, s, since)
		}
		since = s
		cancel()
		wg.Wait()
		if h, _ := db.AccessEnds(); h {
			t.Errorf("round %d: the ends are heard after the Listener stopped", round)
		}
	}
}
