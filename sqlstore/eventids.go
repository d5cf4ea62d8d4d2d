package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// eventIDs gives events their ids in the writer, so that the events of a
// batch's jobs go into the database in one INSERT at its end instead of one
// each, while every job knows its event's id at once (for its messages and
// its answer). On SQLite the writer is the database's only one: ids count
// up from past the largest given so far, read again after any batch that
// did not commit or when another connection committed. Since schema 4 the
// events table has no AUTOINCREMENT to remember the largest id ever given
// once the newest events are deleted: meta's 'event_ids' does, raised
// eventIDsAhead past the ids a batch gives in the commit that first gives
// one beyond it, so that most commits write nothing more; a clean stop
// lowers it to the last id given, so a restart skips none (a crash skips
// at most eventIDsAhead). On PostgreSQL they come from the events' identity
// sequence, a batch's worth in one statement, at least postgresIDsAhead, so
// that other nodes' ids never collide with them and a lone publish seldom
// waits for the sequence. Ids taken and never used (the node stopped) are
// skipped, as a sequence's numbers are.
type eventIDs struct {
	next     int64   // SQLite: the next id to give; 0 until read
	recorded int64   // SQLite: meta's event_ids as last committed
	raising  int64   // SQLite: what the batch being written raises it to (0: nothing)
	free     []int64 // PostgreSQL: ids taken from the sequence and not given yet
	want     int     // PostgreSQL: how many to take when free is empty
}

// postgresIDsAhead is the fewest event ids a PostgreSQL writer takes from
// the sequence at once.
const postgresIDsAhead = 32

// eventIDsAhead is how far past the ids it gives a SQLite writer raises
// meta's event_ids: one commit in about as many events writes it, and a
// restart skips at most as many ids.
const eventIDsAhead = 1000

// forBatch returns the id source for a try of a batch of n jobs.
func (e *eventIDs) forBatch(db *DB, n int) *eventIDs {
	if db.dialect == postgresDialect {
		e.want = max(n, postgresIDsAhead)
	}
	e.raising = 0
	return e
}

// take gives the next id.
func (e *eventIDs) take(tx *Tx) (int64, error) {
	if tx.db.dialect != postgresDialect {
		if e.next == 0 {
			// Past any id the table ever had.
			var last, seq int64
			if err := tx.queryRow(`SELECT COALESCE(max(id), 0) FROM events`).Scan(&last); err != nil {
				return 0, err
			}
			// AUTOINCREMENT's memory, in a schema-3 database; sqlite_sequence
			// exists once a table with AUTOINCREMENT does (not in schema 2).
			err := tx.queryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'events'`).Scan(&seq)
			if err != nil && !errors.Is(err, sql.ErrNoRows) && !strings.Contains(err.Error(), "no such table") {
				return 0, err
			}
			var recorded string
			err = tx.queryRow(`SELECT value FROM meta WHERE key = 'event_ids'`).Scan(&recorded)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return 0, err
			}
			e.recorded = 0
			if err == nil {
				if e.recorded, err = strconv.ParseInt(recorded, 10, 64); err != nil {
					return 0, fmt.Errorf("meta event_ids %q: %w", recorded, err)
				}
			}
			e.next = max(last, seq, e.recorded) + 1
		}
		id := e.next
		e.next++
		return id, nil
	}
	if len(e.free) == 0 {
		rows, err := tx.query(takeEventIDs, max(e.want, 1))
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return 0, err
			}
			e.free = append(e.free, id)
		}
		if err := rows.Err(); err != nil {
			return 0, err
		}
		slices.Sort(e.free)
	}
	id := e.free[0]
	e.free = e.free[1:]
	return id, nil
}

// takeEventIDs takes ids from the PostgreSQL sequence of the events. What
// it takes no rollback gives back, so it runs outside a batch's
// transaction as well as in it: a batch of publishes that needs ids still
// begins none (see pgLazyTx.outside).
const takeEventIDs = `SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, ?)`

// forget makes SQLite's count start again from the database: after a
// batch that did not commit, or whose ids another writer took.
func (e *eventIDs) forget() { e.next, e.raising = 0, 0 }

// record raises meta's event_ids past the ids given, in the batch's
// transaction, if they went beyond it: an id is never given again only if
// the commit that first gives it also records it. SQLite only.
func (e *eventIDs) record(tx *Tx) error {
	if e.next == 0 || e.next-1 <= e.recorded {
		return nil
	}
	to := e.next - 1 + eventIDsAhead
	if _, err := tx.exec(`INSERT INTO meta (key, value) VALUES ('event_ids', ?)
		ON CONFLICT (key) DO UPDATE SET value = CAST(MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)`,
		strconv.FormatInt(to, 10)); err != nil {
		return fmt.Errorf("record event ids: %w", err)
	}
	e.raising = to
	return nil
}

// recordExact lowers meta's event_ids to the last id given, if it is what
// this writer recorded, when the store closes: nothing is given after it.
// SQLite only.
func (e *eventIDs) recordExact(conn *sql.Conn) error {
	if e.next == 0 || e.next-1 >= e.recorded {
		return nil
	}
	_, err := conn.ExecContext(upkeepCtx, `UPDATE meta SET value = ? WHERE key = 'event_ids' AND value = ?`,
		strconv.FormatInt(e.next-1, 10), strconv.FormatInt(e.recorded, 10))
	return err
}

// committed tells the count that the batch's transaction committed, with
// what record wrote.
func (e *eventIDs) committed() {
	if e.raising > 0 {
		e.recorded, e.raising = e.raising, 0
	}
}
