package sqlstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// Two nodes share one PostgreSQL database, and many publishers on each send
// to the same people at once, naming them in every order. Every recipient's
// messages are then numbered 1..n without a gap or a repeat, every publish
// that was acknowledged is there, one that failed left nothing behind, and
// each publisher's messages are numbered in the order it sent them: its
// next publish began only after the previous one committed.
func TestTwoNodesNumberWithoutGapsInCommitOrder(t *testing.T) {
	postgresOnly(t)
	source := freshSource(t)
	nodes := []*sqlstore.DB{mustOpen(t, source), mustOpen(t, source)}
	alice := MustCreateUser(t, nodes[0], "alice", true)
	recipients := []string{"bob", "carol", "dave", "erin", "frank"}
	ids := map[string]int64{}
	for _, login := range recipients {
		ids[login] = MustCreateUser(t, nodes[1], login, false).ID
	}
	deadlocksBefore := deadlocks(t)

	const publishers, each = 8, 30 // per node
	type sent struct {
		text      string
		publisher string
		n         int
		to        []string
	}
	var (
		mu     sync.Mutex
		acked  []sent
		failed []sent
		wg     sync.WaitGroup
	)
	for ni, node := range nodes {
		for p := range publishers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(ni), uint64(p)))
				publisher := fmt.Sprintf("node%d/publisher%d", ni, p)
				for n := range each {
					to := append([]string(nil), recipients...)
					r.Shuffle(len(to), func(i, j int) { to[i], to[j] = to[j], to[i] })
					to = to[:2+r.IntN(len(to)-1)]
					s := sent{text: fmt.Sprintf("%s #%d", publisher, n), publisher: publisher, n: n, to: to}
					_, err := node.PublishMessage(as(alice), &tidings.Publication{Recipients: to, Text: s.text})
					mu.Lock()
					switch {
					case err == nil:
						acked = append(acked, s)
					case code(err) == tidings.EUNAVAILABLE:
						failed = append(failed, s) // the database is busy: the caller is told, and nothing is kept
					default:
						t.Errorf("%s: %v", s.text, err)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("%d publishes acknowledged, %d refused as unavailable; the server counted %d deadlocks meanwhile",
		len(acked), len(failed), deadlocks(t)-deadlocksBefore)

	want := map[string]map[string]bool{} // recipient → texts
	for _, s := range acked {
		for _, login := range s.to {
			if want[login] == nil {
				want[login] = map[string]bool{}
			}
			want[login][s.text] = true
		}
	}
	refused := map[string]bool{}
	for _, s := range failed {
		refused[s.text] = true
	}
	for _, login := range recipients {
		// Read through either node: they are one server.
		seqs, texts := readAll(t, nodes[len(login)%2], ids[login])
		for i, seq := range seqs {
			if seq != int64(i+1) {
				t.Fatalf("%s's messages are numbered %v: not 1..%d", login, seqs, len(seqs))
			}
		}
		last := map[string]int{} // publisher → its last n seen
		got := map[string]bool{}
		for i, text := range texts {
			if got[text] {
				t.Fatalf("%s got %q twice", login, text)
			}
			got[text] = true
			if refused[text] {
				t.Fatalf("%s got %q, whose publish was refused", login, text)
			}
			var publisher string
			var n int
			if _, err := fmt.Sscanf(text, "%s #%d", &publisher, &n); err != nil {
				t.Fatalf("message %d of %s: %q: %v", seqs[i], login, text, err)
			}
			if prev, ok := last[publisher]; ok && prev >= n {
				t.Fatalf("%s got %s's #%d after its #%d: not in commit order", login, publisher, n, prev)
			}
			last[publisher] = n
		}
		for text := range want[login] {
			if !got[text] {
				t.Fatalf("%s lacks %q, whose publish was acknowledged", login, text)
			}
		}
		if len(got) != len(want[login]) {
			t.Fatalf("%s got %d messages, want the %d acknowledged", login, len(got), len(want[login]))
		}
	}
}

// readAll reads a user's whole sequence from the start.
func readAll(tb testing.TB, db *sqlstore.DB, userID int64) (seqs []int64, texts []string) {
	tb.Helper()
	var since *tidings.Cursor
	for {
		b, err := db.FindMessages(context.Background(), userID, since, 0)
		if err != nil {
			tb.Fatal(err)
		}
		if b.Missed != 0 {
			tb.Fatalf("user %d missed %d messages", userID, b.Missed)
		}
		for _, m := range b.Messages {
			seqs, texts = append(seqs, m.Cursor.Seq), append(texts, m.Text)
		}
		if !b.More {
			return seqs, texts
		}
		since = &b.Cursor
	}
}

// deadlocks is how many deadlocks the test server has seen.
func deadlocks(tb testing.TB) int64 {
	tb.Helper()
	var n int64
	if err := admin(tb).QueryRow(`SELECT COALESCE(SUM(deadlocks), 0) FROM pg_stat_database`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// Two nodes' writes that lock the same rows in opposite orders deadlock;
// PostgreSQL fails one, and its node runs it again once the other
// committed: both callers are told their write succeeded, and it did.
func TestDeadlockedWriteIsRunAgain(t *testing.T) {
	postgresOnly(t)
	source := freshSource(t)
	a, b := mustOpen(t, source), mustOpen(t, source)
	bob := MustCreateUser(t, a, "bob", false)
	carol := MustCreateUser(t, a, "carol", false)
	var both sync.WaitGroup
	both.Add(2)
	holding := func() { both.Done(); both.Wait() } // each holds its first row before taking the second
	type result struct {
		runs int
		err  error
	}
	results := make(chan result, 2)
	go func() {
		n, err := a.TouchUsers(context.Background(), holding, bob.ID, carol.ID)
		results <- result{n, err}
	}()
	go func() {
		n, err := b.TouchUsers(context.Background(), holding, carol.ID, bob.ID)
		results <- result{n, err}
	}()
	runs := 0
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("a write that deadlocked failed: %v", r.err)
		}
		runs += r.runs
	}
	if runs != 3 {
		t.Fatalf("the two writes ran %d times, want 3: one of them once more after the deadlock", runs)
	}
	// Both nodes' writers still work.
	for _, db := range []*sqlstore.DB{a, b} {
		if _, err := db.PublishMessage(as(bob), &tidings.Publication{Recipients: []string{"bob"}, Text: "still here"}); err != nil {
			t.Fatal(err)
		}
	}
}

// On PostgreSQL a node keeps its lookups of recipients from one publish to
// the next while its Listener listens, and heeds another node's change to
// them (settings, deletion) once that node's notice arrives, moments after
// the commit; with its Listener stopped it looks every recipient up again,
// and a change is seen at once.
func TestRecipientsChangedOnAnotherNodeAreHeeded(t *testing.T) {
	postgresOnly(t)
	source := freshSource(t)
	db, other := mustOpen(t, source), mustOpen(t, source)
	admin := MustCreateUser(t, db, "admin", true)
	bob := MustCreateUser(t, db, "bob", false)
	stopListening := listenFor(t, db)
	toBob := tidings.Publication{Recipients: []string{"bob"}, Text: "hello"}
	stored := func() (int, error) {
		res, err := db.PublishMessage(as(admin), &toBob)
		if err != nil {
			return 0, err
		}
		return res.Recipients, nil
	}
	for range 2 {
		if n, err := stored(); err != nil || n != 1 {
			t.Fatalf("before any change: stored for %d recipients (%v), want 1", n, err)
		}
	}
	before, _ := db.StatementCounts()
	if n, err := stored(); err != nil || n != 1 {
		t.Fatalf("stored for %d recipients (%v), want 1", n, err)
	}
	if sent, _ := db.StatementCounts(); sent-before != 1 {
		t.Errorf("a publish to a recipient looked up before sent %d statements, want 1: the batch's own", sent-before)
	}

	off, on := false, true
	if _, err := other.UpdateSettings(as(bob), tidings.SettingsUpdate{Messages: &off}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a publish to heed bob turning messages off on the other node", func() bool { n, err := stored(); return err == nil && n == 0 })
	if _, err := other.UpdateSettings(as(bob), tidings.SettingsUpdate{Messages: &on}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a publish to heed bob turning messages on on the other node", func() bool { n, err := stored(); return err == nil && n == 1 })
	if err := other.DeleteUser(tidings.NewSystemContext(context.Background()), "bob"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a publish to heed bob deleted on the other node", func() bool { _, err := stored(); return tidings.ErrorCode(err) == tidings.EINVALID })

	// Without the Listener nothing is kept: a change is seen at once.
	carol := MustCreateUser(t, db, "carol", false)
	toBob.Recipients = []string{"carol"}
	if n, err := stored(); err != nil || n != 1 {
		t.Fatalf("to carol: stored for %d recipients (%v), want 1", n, err)
	}
	stopListening()
	if _, err := other.UpdateSettings(as(carol), tidings.SettingsUpdate{Messages: &off}); err != nil {
		t.Fatal(err)
	}
	if n, err := stored(); err != nil || n != 0 {
		t.Errorf("carol turned messages off on the other node while this one did not listen: stored for %d (%v), want 0", n, err)
	}
}
