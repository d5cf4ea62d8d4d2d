package sqlstore

import (
	"database/sql"
	"errors"
	"slices"
	"strings"
)

// eventIDs gives events their ids in the writer, so that the events of a
// batch's jobs go into the database in one INSERT at its end instead of one
// each, while every job knows its event's id at once (for its messages and
// its answer). On SQLite the writer is the database's only one: ids count
// up from the largest given so far, read again after any batch that did not
// commit. On PostgreSQL they come from the events' identity sequence, a
// batch's worth in one statement, at least postgresIDsAhead, so that other
// nodes' ids never collide with them and a lone publish seldom waits for
// the sequence. Ids taken and never used (the node stopped) are skipped,
// as a sequence's numbers are.
type eventIDs struct {
	next int64   // SQLite: the next id to give; 0 until read
	free []int64 // PostgreSQL: ids taken from the sequence and not given yet
	want int     // PostgreSQL: how many to take when free is empty
}

// postgresIDsAhead is the fewest event ids a PostgreSQL writer takes from
// the sequence at once.
const postgresIDsAhead = 32

// forBatch returns the id source for a try of a batch of n jobs.
func (e *eventIDs) forBatch(db *DB, n int) *eventIDs {
	if db.dialect == postgresDialect {
		e.want = max(n, postgresIDsAhead)
	}
	return e
}

// take gives the next id.
func (e *eventIDs) take(tx *Tx) (int64, error) {
	if tx.db.dialect != postgresDialect {
		if e.next == 0 {
			// AUTOINCREMENT's rule: past any id the table ever had.
			var last, seq int64
			if err := tx.queryRow(`SELECT COALESCE(max(id), 0) FROM events`).Scan(&last); err != nil {
				return 0, err
			}
			// sqlite_sequence exists once a table with AUTOINCREMENT does
			// (not in a schema-2 database).
			err := tx.queryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'events'`).Scan(&seq)
			if err != nil && !errors.Is(err, sql.ErrNoRows) && !strings.Contains(err.Error(), "no such table") {
				return 0, err
			}
			e.next = max(last, seq) + 1
		}
		id := e.next
		e.next++
		return id, nil
	}
	if len(e.free) == 0 {
		rows, err := tx.query(`SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, ?)`, max(e.want, 1))
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

// forget makes SQLite's count start again from the database: after a
// batch that did not commit, or whose ids another writer took.
func (e *eventIDs) forget() { e.next = 0 }
