package sqlstore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// Moments after writes stop, the database file holds them by itself: the
// log was copied back by the checkpointer, not left for a later commit of
// the writer to copy (SQLite's own rule: when the log passes 1,000 pages,
// far more than these publishes write). A copy of the file alone, as a
// naive backup takes it, has every message. Then, idle, the store
// checkpoints no more.
func TestCheckpointsFollowTheWrites(t *testing.T) {
	sqliteOnly(t)
	path := filepath.Join(t.TempDir(), "tidings.db")
	db := mustOpen(t, path)
	alice := MustCreateUser(t, db, "alice", true)
	MustCreateUser(t, db, "bob", false)
	const n = 50
	for i := range n {
		if _, err := db.PublishMessage(as(alice), &tidings.Publication{Recipients: []string{"bob"}, Text: fmt.Sprintf("m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	copyHas := func() int {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		cp := filepath.Join(dir, "copy.db")
		if err := os.WriteFile(cp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		raw, _, err := sqlstore.OpenRaw(cp)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		var count int
		if err := raw.QueryRow(`SELECT COUNT(*) FROM messages m JOIN users u ON u.id = m.user_id WHERE u.login = 'bob'`).Scan(&count); err != nil {
			return -1 // caught mid-copy: look again
		}
		return count
	}
	waitFor(t, "the database file to hold every message", func() bool { return copyHas() == n })

	// The commits' last kick may still be on its way; after that, nothing.
	time.Sleep(100 * time.Millisecond)
	runs := db.CheckpointRuns()
	if runs == 0 {
		t.Fatal("the checkpointer never ran")
	}
	time.Sleep(300 * time.Millisecond)
	if more := db.CheckpointRuns() - runs; more != 0 {
		t.Fatalf("an idle store ran %d checkpoints", more)
	}
}

// A checkpoint lets the writer's next commit start the log over, which
// waits for the disk: the checkpointer copies the log when it has grown to
// CheckpointPages, counted from what the commits wrote, not on every few
// commits. With the clock out of the way (a commit may wait an hour), a
// short run of publishes gets no checkpoint, and a long one gets one
// before it ends.
func TestCheckpointsWaitForTheLogToGrow(t *testing.T) {
	sqliteOnly(t)
	path := filepath.Join(t.TempDir(), "tidings.db")
	db := mustOpen(t, path)
	db.SetCheckpointLatest(time.Hour)
	alice := MustCreateUser(t, db, "alice", true)
	MustCreateUser(t, db, "bob", false)
	publish := func(i int) {
		t.Helper()
		if _, err := db.PublishMessage(as(alice), &tidings.Publication{Recipients: []string{"bob"}, Text: fmt.Sprintf("m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Each publish writes a few pages; 20 write far fewer than the mark.
	for i := range 20 {
		publish(i)
	}
	time.Sleep(3 * sqlstore.CheckpointMinGap)
	if runs := db.CheckpointRuns(); runs != 0 {
		t.Fatalf("%d checkpoints after 20 publishes; the log is far below %d pages", runs, sqlstore.CheckpointPages)
	}
	// Every publish writes at least one page: this many take the log past
	// the mark however few each writes.
	for i := range sqlstore.CheckpointPages {
		publish(20 + i)
		if db.CheckpointRuns() > 0 {
			return
		}
	}
	waitFor(t, "a checkpoint of a log past the mark", func() bool { return db.CheckpointRuns() > 0 })
}
