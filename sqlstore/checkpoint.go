package sqlstore

import (
	"database/sql"
	"log/slog"
	"sync/atomic"
	"time"
)

// SQLite copies its write-ahead log back into the database file in
// checkpoints. Left to itself it does so in the commit that takes the log
// past a thousand pages, on the writer's connection: that commit, and every
// write queued behind it, waits for the copy and two fsyncs — milliseconds,
// the longest commits a server sees. The store runs checkpoints instead on
// a connection of its own, shortly after commits, while the writer goes on:
// a passive checkpoint never holds up the writer or a reader. Between
// bursts of writes it copies the whole log, and the writer's next commit
// starts the log over. Under writes that never pause, the writer's own
// checkpoint remains as a safety net, at a size the checkpointer keeps the
// log well below otherwise.
//
// Nothing is checkpointed while nothing is written: an idle store does no
// work.

// checkpointEvery is the shortest time between two background checkpoints:
// the commits in between share one.
const checkpointEvery = 20 * time.Millisecond

// writerAutocheckpoint is the log's size in pages past which the writer
// checkpoints by itself.
const writerAutocheckpoint = 4000

type checkpointer struct {
	conn   *sql.DB
	logger *slog.Logger
	kick   chan struct{} // a commit happened; closed when the writer stops
	done   chan struct{}
	runs   atomic.Int64
}

func newCheckpointer(conn *sql.DB, logger *slog.Logger) *checkpointer {
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxIdleTime(0)
	c := &checkpointer{conn: conn, logger: logger, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go c.loop()
	return c
}

// committed tells the checkpointer of a commit without waiting. Only the
// writer calls it.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop() {
	defer close(c.done)
	var last time.Time
	for range c.kick {
		if wait := checkpointEvery - time.Since(last); wait > 0 {
			time.Sleep(wait) // short: stop waits for it
		}
		last = time.Now()
		if _, err := c.conn.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
			c.logger.Warn("checkpoint the write-ahead log", "err", err)
		}
		c.runs.Add(1)
	}
}

// stop ends the loop once the writer has stopped, and closes the
// connection.
func (c *checkpointer) stop() error {
	close(c.kick)
	<-c.done
	return c.conn.Close()
}
