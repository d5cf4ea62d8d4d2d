package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/tidings/tidings"
)

// HoldWriter occupies the single writer with a write that waits until
// release is called; it returns once the writer runs it. Writes submitted
// meanwhile queue up, and when it is released the writer gathers every one
// of them into one batch: one transaction, a savepoint for each write.
func (db *DB) HoldWriter() (release func()) {
	running, proceed, finished := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		db.write(context.Background(), func(*Tx) error {
			close(running)
			<-proceed
			return nil
		})
	}()
	<-running
	var once sync.Once
	return func() {
		once.Do(func() {
			close(proceed)
			<-finished
		})
	}
}

// QueuedWrites returns how many writes wait for the writer.
func (db *DB) QueuedWrites() int {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return len(db.queue)
}

// ErrWriteFailed is the error of FailingPublish.
var ErrWriteFailed = errors.New("the write failed after it stored its message")

// FailingPublish is a write that does what a publication does — it stores
// an event, numbers a message for the recipient and asks for them to be
// woken — and then fails: none of it may outlive the failure.
func (db *DB) FailingPublish(ctx context.Context, from, to *tidings.User, text string) error {
	return db.write(ctx, func(tx *Tx) error {
		ev := &tidings.Event{
			Process: tidings.ProcessMessage,
			Module:  "message",
			Actor:   &tidings.Actor{ID: from.ID, Login: from.Login, Name: from.Name},
			Text:    text,
		}
		validUntil := tx.now.Add(db.MessageTTL)
		if err := tx.insertEvent(ev, validUntil); err != nil {
			return err
		}
		if err := tx.deliverOne(ev.ID, to.ID, tx.now, validUntil, ""); err != nil {
			return err
		}
		return ErrWriteFailed
	})
}

// SetMaxVersion makes db migrate no further than schema version when it
// opens, so that a test can build a database as an older Tidings left it.
func SetMaxVersion(db *DB, version int) { db.maxVersion = version }

// OpenRaw opens the database at source past the store, as a second process
// would, and returns how to write its queries with ? marks.
func OpenRaw(source string) (*sql.DB, func(string) string, error) {
	d := dialectOf(source)
	if d == postgresDialect {
		db, err := sql.Open("pgx", source)
		return db, d.rebind, err
	}
	db, err := sql.Open("sqlite", "file:"+source+"?_pragma=busy_timeout(10000)")
	return db, d.rebind, err
}

// TouchUsers is a write that locks the rows of the users ids in the order
// given, calling between once it holds the first, on its first run only.
// Two nodes touching the same users in opposite orders deadlock; the
// database fails one of them, and the writer runs that one's batch again.
// runs is how often the write ran.
func (db *DB) TouchUsers(ctx context.Context, between func(), ids ...int64) (runs int, err error) {
	first := true
	err = db.write(ctx, func(tx *Tx) error {
		runs++
		for i, id := range ids {
			if _, err := tx.exec(`UPDATE users SET updated_at = updated_at WHERE id = ?`, id); err != nil {
				return err
			}
			if i == 0 && first {
				first = false
				between()
			}
		}
		return nil
	})
	return runs, err
}

// Translate is translate, for tests that hand it a driver's error.
func (db *DB) Translate(err error) error { return db.translate(err) }

// FindStoredMessages is FindMessages answered by the database alone, never
// by the inboxes in memory: what the inboxes' answers are compared with.
func (db *DB) FindStoredMessages(ctx context.Context, userID int64, since *tidings.Cursor, limit int) (*tidings.MessageBatch, error) {
	_, limit, err := db.readBounds(userID, since, limit)
	if err != nil {
		return nil, err
	}
	batch, _, err := db.findStoredMessages(ctx, userID, since, limit)
	return batch, err
}

// OnStoredRead runs f after each read from the database, before the read
// may leave an inbox at the head it found; nil stops it.
func (db *DB) OnStoredRead(f func()) { db.storedRead = f }

// DropInbox forgets a user's inbox in memory, as a transaction that ends
// their access does.
func (db *DB) DropInbox(userID int64) { db.inboxes.drop(userID) }

// InboxReads counts the FindMessages that the inboxes in memory answered.
func (db *DB) InboxReads() int64 { return db.inboxReads.Load() }

// CheckpointRuns is how many checkpoints the background checkpointer ran.
func (db *DB) CheckpointRuns() int64 {
	if db.checkpoints == nil {
		return 0
	}
	return db.checkpoints.runs.Load()
}

// SetCheckpointLatest changes how long the checkpointer lets a commit wait
// for its checkpoint. Call it before the store's first write: the
// checkpointer reads it after a commit.
func (db *DB) SetCheckpointLatest(d time.Duration) { db.checkpoints.latest = d }

// CheckpointPages is the log's length at which the checkpointer copies it.
const CheckpointPages = checkpointPages

// CheckpointMinGap is the shortest time between two checkpoints.
const CheckpointMinGap = checkpointMinGap

// WithDial makes the store dial its PostgreSQL connections with dial.
func WithDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(*DB) {
	return func(db *DB) { db.dial = dial }
}

// Abandon closes db as a crash leaves the database: without the clean
// stop's record of the last event id given.
func Abandon(db *DB) error {
	db.eventIDs.forget()
	return db.Close()
}
