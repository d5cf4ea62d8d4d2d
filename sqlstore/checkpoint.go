package sqlstore

import (
	"database/sql"
	"encoding/binary"
	"log/slog"
	"math"
	"os"
	"sync/atomic"
	"time"
)

// SQLite copies its write-ahead log back into the database file in
// checkpoints. Left to itself it does so in the commit that takes the log
// past a thousand pages, on the writer's connection: that commit, and every
// write queued behind it, waits for the copy and two fsyncs — milliseconds,
// the longest commits a server sees. The store runs checkpoints instead on
// a connection of its own while the writer goes on: a passive checkpoint
// never holds up the writer or a reader. Under writes that never pause,
// the writer's own checkpoint remains as a safety net, at a size the
// checkpointer keeps the log well below otherwise.
//
// How often matters as much. Once a checkpoint has copied the whole log,
// the writer's next commit starts the log over and waits for the disk to
// hold the log's new header (SQLite's guard against writes reordered at a
// power loss): an fsync, from half a millisecond to several on a shared
// disk, in a commit that otherwise only writes to the system's cache. So
// the checkpointer lets the log grow to about checkpointPages, counting the
// pages the writer's commits write, before it copies it: one commit in a
// few hundred starts the log over, not one in every few. A checkpoint that
// commits overtook leaves the log as long as it was; the next one follows
// checkpointMinGap later and copies what they added. When writes thin out,
// a commit is copied at most checkpointLatest after it is made: moments
// after writes stop, the database file holds them by itself.
//
// Nothing is checkpointed while nothing is written: an idle store does no
// work.

// checkpointPages is the log's length in pages at which the checkpointer
// copies it back.
const checkpointPages = 1000

// checkpointLatest is the longest a commit waits for its checkpoint.
const checkpointLatest = time.Second

// checkpointMinGap is the shortest time between two checkpoints: under
// heavy writes the commits in between share one.
const checkpointMinGap = 20 * time.Millisecond

// writerAutocheckpoint is the log's size in pages past which the writer
// checkpoints by itself.
const writerAutocheckpoint = 4000

type checkpointer struct {
	conn    *sql.DB
	walPath string
	wal     *os.File // the log file, read for its header; opened when first needed
	logger  *slog.Logger
	latest  time.Duration // checkpointLatest; tests wait longer
	commits atomic.Int64  // commits made, counted by the writer
	written atomic.Int64  // pages they wrote to the log
	kick    chan struct{} // a commit the loop waits for happened
	// The writer kicks the loop only when it waits for a commit: when it
	// has nothing to copy (idle), or when the log reaches its length for a
	// checkpoint (written reaches kickAt). Waking another goroutine costs
	// a thread's wake-up, as much as a tenth of a lone commit; a commit in
	// between is counted and nothing more.
	idle   atomic.Bool
	kickAt atomic.Int64
	quit   chan struct{} // closed by stop
	done   chan struct{}
	runs   atomic.Int64
}

func newCheckpointer(conn *sql.DB, path string, logger *slog.Logger) *checkpointer {
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxIdleTime(0)
	c := &checkpointer{
		conn: conn, walPath: path + "-wal", logger: logger, latest: checkpointLatest,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
	}
	c.kickAt.Store(math.MaxInt64)
	go c.loop()
	return c
}

// committed tells the checkpointer, without waiting, of a commit that
// wrote pages to the log. Only the writer calls it, after the commit.
func (c *checkpointer) committed(pages int64) {
	written := c.written.Add(pages)
	c.commits.Add(1)
	// Either kick is taken once: the loop sets idle and kickAt again when
	// it next waits for one.
	if c.idle.Swap(false) || written >= c.kickAt.Load() && c.kickAt.Swap(math.MaxInt64) != math.MaxInt64 {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

func (c *checkpointer) loop() {
	defer close(c.done)
	var (
		copied  int64     // commits made before the last checkpoint began
		counted int64     // pages they wrote
		length  int64     // the log's length in pages as the last checkpoint found it
		starts  uint32    // how often the log had started over then
		pending time.Time // about when the oldest commit not copied yet was made
		last    time.Time // when the last checkpoint began
	)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	defer wait.Stop()
	for {
		if c.commits.Load() == copied {
			c.idle.Store(true)
			if c.commits.Load() != copied {
				// A commit came before idle was set, and kicked no one.
				c.idle.Store(false)
				pending = time.Now()
				continue
			}
			select {
			case <-c.kick:
				pending = time.Now()
				continue
			case <-c.quit:
				return
			}
		}
		at := pending.Add(c.latest)
		added := c.written.Load() - counted
		if length > 0 && length+added >= checkpointPages {
			// A checkpoint that copied the whole log lets the writer's
			// next commit start it over: then it holds no more than what
			// was written since. Otherwise it grew by that.
			if n, ok := c.starts(); ok && n != starts {
				length = 0
			}
		}
		due := length+added >= checkpointPages
		if due {
			at = last
		}
		at = later(at, last.Add(checkpointMinGap))
		if d := time.Until(at); d > 0 {
			if due {
				c.kickAt.Store(math.MaxInt64) // the timer ends the wait
			} else {
				kickAt := counted + checkpointPages - length
				c.kickAt.Store(kickAt)
				if c.written.Load() >= kickAt {
					continue // commits got there before the writer could see kickAt
				}
			}
			wait.Reset(d)
			select {
			case <-c.kick:
			case <-wait.C:
			case <-c.quit:
				return
			}
			continue
		}
		// Every commit counted from here on is in the log the checkpoint
		// copies: a kick left from one of them must not start another.
		select {
		case <-c.kick:
		default:
		}
		copied, counted, last = c.commits.Load(), c.written.Load(), time.Now()
		pending = last // the commits not copied are all made after this
		starts, _ = c.starts()
		var err error
		if length, err = c.checkpoint(); err != nil {
			c.logger.Warn("checkpoint the write-ahead log", "err", err)
		}
		c.runs.Add(1)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// checkpoint copies what it can of the log without waiting for anyone, and
// returns the log's length in pages.
func (c *checkpointer) checkpoint() (length int64, err error) {
	var busy, moved int64
	err = c.conn.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &length, &moved)
	return length, err
}

// starts is how many times the log has started over: the checkpoint
// sequence number of its file's header (SQLite's file format, bytes 12-15,
// big-endian), which each start raises. ok is false if the file cannot be
// read.
func (c *checkpointer) starts() (n uint32, ok bool) {
	if c.wal == nil {
		f, err := os.Open(c.walPath)
		if err != nil {
			return 0, false
		}
		c.wal = f
	}
	var header [16]byte
	if _, err := c.wal.ReadAt(header[:], 0); err != nil {
		return 0, false
	}
	return binary.BigEndian.Uint32(header[12:]), true
}

// stop ends the loop once the writer has stopped, and closes the
// connection.
func (c *checkpointer) stop() error {
	close(c.quit)
	<-c.done
	if c.wal != nil {
		c.wal.Close()
	}
	return c.conn.Close()
}
