package sqlstore

import (
	"context"
	"database/sql"
	"time"
)

// janitorBatch bounds the rows one janitor write deletes from each table,
// so that it never holds the writer for long: a publish that comes
// meanwhile waits for it. At 5,000 a write held it for 30–41 ms on SQLite
// and PostgreSQL alike (BenchmarkJanitor, 2026-12-07), at 500 for 2.4–5 ms,
// and a message swept cost no more: 4.3–4.4 µs.
const janitorBatch = 500

// The janitor's deletes, each of at most janitorBatch rows expired by its
// first argument (Unix ms), in the order messages, events, scheduled
// messages, sessions (which returns their users). Each finds its rows
// through the index on the expiry time (but pending's, which has none:
// scheduled messages that expire undelivered are few). On PostgreSQL the
// prepared statements' generic plans must not depend on how many rows
// expired: without the ORDER BY, the LIMIT's subquery scanned the whole
// table, and the IN's hash join scanned it again, about 8 ms a round at
// 40,000 events whatever the batch; the rows are deleted by their tuple
// ids or keys from an array instead.
var (
	sweepSQLite = [4]string{
		`DELETE FROM messages WHERE (user_id, seq) IN (SELECT user_id, seq FROM messages WHERE valid_until <= ? LIMIT ?)`,
		`DELETE FROM events WHERE id IN (SELECT id FROM events WHERE expires_at <= ? LIMIT ?)`,
		`DELETE FROM pending WHERE id IN (SELECT id FROM pending WHERE valid_until <= ? LIMIT ?)`,
		`DELETE FROM sessions WHERE hash IN (SELECT hash FROM sessions WHERE expires_at <= ? LIMIT ?) RETURNING user_id`,
	}
	sweepPostgres = [4]string{
		`DELETE FROM messages WHERE ctid = ANY (ARRAY(SELECT ctid FROM messages WHERE valid_until <= ? ORDER BY valid_until LIMIT ?))`,
		`DELETE FROM events WHERE id = ANY (ARRAY(SELECT id FROM events WHERE expires_at <= ? ORDER BY expires_at LIMIT ?))`,
		`DELETE FROM pending WHERE id = ANY (ARRAY(SELECT id FROM pending WHERE valid_until <= ? LIMIT ?))`,
		`DELETE FROM sessions WHERE hash = ANY (ARRAY(SELECT hash FROM sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)) RETURNING user_id`,
	}
)

// Swept counts what one janitor run deleted.
type Swept struct {
	Messages int64
	Events   int64
	Pending  int64
	Sessions int64
}

// DeleteExpired removes expired messages, the events that no message needs
// any more, expired sessions and scheduled messages that can no longer be
// delivered. Every delete but that of scheduled messages goes through an
// index on the expiry time (see sweepSQLite).
//
// Each round deletes from every table in one transaction with one clock, so
// that no reader ever sees a message whose event is already gone: an event
// expires no earlier than its last message.
func (db *DB) DeleteExpired(ctx context.Context) (Swept, error) {
	var total Swept
	for {
		var round Swept
		err := db.write(ctx, func(tx *Tx) error {
			round = Swept{}
			tx.swept = true // the inboxes let go of what expired by tx.now
			if tx.db.dialect.notifies {
				// One node's janitor at a time; the others find the lock
				// taken and leave the round to it.
				var mine bool
				if err := tx.queryRow(`SELECT pg_try_advisory_xact_lock(7462346800146)`).Scan(&mine); err != nil || !mine {
					return err
				}
			}
			sweeps := sweepSQLite
			if tx.db.dialect == postgresDialect {
				sweeps = sweepPostgres
			}
			for i, count := range []*int64{&round.Messages, &round.Events, &round.Pending} {
				res, err := tx.exec(sweeps[i], ms(tx.now), janitorBatch)
				if err != nil {
					return err
				}
				if *count, err = res.RowsAffected(); err != nil {
					return err
				}
			}
			// A stream may still be open on an expired session: it ends too.
			rows, err := tx.query(sweeps[3], ms(tx.now), janitorBatch)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var userID int64
				if err := rows.Scan(&userID); err != nil {
					return err
				}
				tx.endAccess(userID)
				round.Sessions++
			}
			return rows.Err()
		})
		if err != nil {
			return total, err
		}
		total.Messages += round.Messages
		total.Events += round.Events
		total.Pending += round.Pending
		total.Sessions += round.Sessions
		if round.Messages < janitorBatch && round.Events < janitorBatch && round.Pending < janitorBatch && round.Sessions < janitorBatch {
			return total, nil
		}
	}
}

// janitorLongest is the longest the janitor leaves the database alone.
const janitorLongest = time.Hour

// RunJanitor deletes expired rows every interval until ctx ends. A round
// that can find nothing is left out: when nothing was committed since the
// last one (but the janitor's own deletes) and nothing it knows of expires
// before now, an idle server costs the database nothing for its janitor.
// What another node stored is found by the next round, at the latest
// janitorLongest after the last.
func (db *DB) RunJanitor(ctx context.Context, interval time.Duration) {
	ctx = withUpkeep(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	var last time.Time // of the last round that ran
	seen := int64(-1)  // db.commits when it began
	var next time.Time // the earliest expiry it left, zero if none
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := db.Now()
		if db.commits.Load() == seen && (next.IsZero() || now.Before(next)) && now.Sub(last) < janitorLongest {
			continue
		}
		seen, last = db.commits.Load(), now
		swept, err := db.DeleteExpired(ctx)
		if err != nil {
			seen = -1 // the next round runs
			if ctx.Err() == nil {
				db.metrics().JanitorRun(err)
				db.Logger.Error("janitor", "err", err)
			}
			continue
		}
		if next, err = db.nextExpiry(ctx); err != nil {
			seen = -1
			if ctx.Err() == nil {
				db.Logger.Error("janitor: read the next expiry", "err", err)
			}
		}
		db.metrics().JanitorRun(nil)
		if swept != (Swept{}) {
			db.Logger.Debug("janitor", "messages", swept.Messages, "events", swept.Events, "pending", swept.Pending, "sessions", swept.Sessions)
		}
	}
}

// nextExpiry returns the earliest expiry of a message, an event or a
// session (each through an index on it), zero if none. Scheduled messages
// that can no longer be delivered are left to the rounds that run anyway.
func (db *DB) nextExpiry(ctx context.Context) (time.Time, error) {
	stmt, err := db.rstmt(`SELECT MIN(t) FROM (SELECT MIN(valid_until) AS t FROM messages
		UNION ALL SELECT MIN(expires_at) FROM events UNION ALL SELECT MIN(expires_at) FROM sessions) AS x`)
	if err != nil {
		return time.Time{}, err
	}
	var next sql.NullInt64
	if err := stmt.QueryRowContext(ctx).Scan(&next); err != nil {
		return time.Time{}, db.translate(err)
	}
	if !next.Valid {
		return time.Time{}, nil
	}
	return fromMS(next.Int64), nil
}
