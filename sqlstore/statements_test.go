package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings"
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
		// Five janitor rounds at least, each a transaction of several.
		if _, u := db.StatementCounts(); u-upkeep >= 30 {
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
