package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/tidings/tidings"
)

// fireBatch bounds how many due messages one write fires.
const fireBatch = 500

// FireDue gives the messages that have become due their numbers, after
// checking each recipient's access and settings again, and fires the
// appointment reminders that are due. It returns how many messages were
// delivered and whether more are due.
func (db *DB) FireDue(ctx context.Context) (fired int, more bool, err error) {
	err = db.write(ctx, func(tx *Tx) error {
		pending, morePending, err := tx.firePending()
		if err != nil {
			return err
		}
		reminders, moreReminders, err := tx.fireReminders()
		if err != nil {
			return err
		}
		fired, more = pending+reminders, morePending || moreReminders
		return nil
	})
	return fired, more, err
}

func (tx *Tx) firePending() (int, bool, error) {
	// The sender and the token it was sent with are joined here, so that
	// checking whether they still exist costs no query per message.
	rows, err := tx.query(`SELECT p.id, p.user_id, p.event_id, p.valid_from, p.valid_until, p.via_project, p.via_actor, e.project_id,
		p.sender_id, p.sender_right, s.id IS NOT NULL, s.role, p.sender_token_id IS NULL OR t.id IS NOT NULL
		FROM pending p JOIN events e ON e.id = p.event_id
		LEFT JOIN users s ON s.id = p.sender_id
		LEFT JOIN tokens t ON t.id = p.sender_token_id AND t.user_id = p.sender_id
		WHERE p.valid_from <= ? ORDER BY p.valid_from, p.id LIMIT ?`, ms(tx.now), fireBatch+1)
	if err != nil {
		return 0, false, err
	}
	type due struct {
		id, eventID           int64
		validFrom, validUntil int64
		projectID             sql.NullInt64
		access                pendingAccess
	}
	var list []due
	for rows.Next() {
		var d due
		var viaProject, viaActor, senderID sql.NullInt64
		var senderRole sql.NullString
		a := &d.access
		if err := rows.Scan(&d.id, &a.userID, &d.eventID, &d.validFrom, &d.validUntil, &viaProject, &viaActor, &d.projectID,
			&senderID, &a.right, &a.senderExists, &senderRole, &a.tokenExists); err != nil {
			rows.Close()
			return 0, false, err
		}
		a.viaProject, a.viaActor, a.senderID = viaProject.Int64, viaActor.Int64, senderID.Int64
		a.senderExists = a.senderExists || !senderID.Valid
		a.senderAdmin = senderRole.String == tidings.RoleAdmin
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, false, err
	}
	more := len(list) > fireBatch
	if more {
		list = list[:fireBatch]
	}
	fired := 0
	for _, d := range list {
		// Whoever deletes the row fires it: another node that read it too
		// waits for this delete's commit and then deletes nothing.
		if mine, err := tx.claim(`DELETE FROM pending WHERE id = ?`, d.id); err != nil || !mine {
			if err != nil {
				return 0, false, err
			}
			continue
		}
		if d.validUntil <= ms(tx.now) {
			continue // the server was away for the whole of its life
		}
		ok, err := tx.mayStillReceive(d.access)
		if err != nil {
			return 0, false, err
		}
		if ok {
			ok, err = tx.wants(d.access.userID, tidings.KindMessages, d.projectID.Int64)
			if err != nil {
				return 0, false, err
			}
		}
		if !ok {
			continue
		}
		if err := tx.deliverOne(d.eventID, d.access.userID, fromMS(d.validFrom), fromMS(d.validUntil), ""); err != nil {
			return 0, false, err
		}
		fired++
	}
	return fired, more, nil
}

// pendingAccess is what a scheduled message was addressed with, and what
// became of its sender.
type pendingAccess struct {
	userID     int64  // the recipient
	viaProject int64  // 0: addressed by login
	viaActor   int64  // 0: no shared project needed
	senderID   int64  // 0: the system
	right      string // rightAnyone, rightAdmin or rightUser

	senderExists bool // the sender still exists (always, for the system)
	senderAdmin  bool // and is an administrator
	tokenExists  bool // the token it was sent with was not revoked, or there was none
}

// claim runs a DELETE of one due row and reports whether it deleted it.
func (tx *Tx) claim(query string, args ...any) (bool, error) {
	res, err := tx.exec(query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// mayStillReceive checks, when a scheduled message fires, that its sender
// may still send it and its recipient may still receive it. The sender and
// the token it was sent with must still exist. A recipient addressed
// through a project must still be a member. Under a plain user's right —
// or an administrator's who is no longer one — the sender must still be a
// member of that project too, or, for a recipient addressed by login, still
// share a project with them.
func (tx *Tx) mayStillReceive(a pendingAccess) (bool, error) {
	if !a.senderExists || !a.tokenExists {
		return false, nil
	}
	viaActor := a.viaActor
	if a.right != rightAnyone && !(a.right == rightAdmin && a.senderAdmin) {
		switch {
		case a.viaProject != 0:
			var n int
			if err := tx.queryRow(`SELECT COUNT(*) FROM members WHERE project_id = ? AND user_id = ?`, a.viaProject, a.senderID).Scan(&n); err != nil {
				return false, err
			}
			if n == 0 {
				return false, nil
			}
		case a.userID != a.senderID:
			viaActor = a.senderID
		}
	}
	if a.viaProject != 0 {
		var n int
		if err := tx.queryRow(`SELECT COUNT(*) FROM members WHERE project_id = ? AND user_id = ?`, a.viaProject, a.userID).Scan(&n); err != nil {
			return false, err
		}
		if n == 0 {
			return false, nil
		}
	}
	if viaActor != 0 {
		var n int
		if err := tx.queryRow(`SELECT COUNT(*) FROM members a JOIN members b ON b.project_id = a.project_id AND b.user_id = ? WHERE a.user_id = ?`, a.userID, viaActor).Scan(&n); err != nil {
			return false, err
		}
		if n == 0 {
			return false, nil
		}
	}
	return true, nil
}

// NextDue returns when the earliest scheduled message or reminder is due.
func (db *DB) NextDue(ctx context.Context) (time.Time, bool, error) {
	stmt, err := db.rstmt(`SELECT MIN(due) FROM (SELECT MIN(valid_from) AS due FROM pending UNION ALL SELECT MIN(fire_at) FROM reminders) AS d`)
	if err != nil {
		return time.Time{}, false, err
	}
	var next sql.NullInt64
	if err := stmt.QueryRowContext(ctx).Scan(&next); err != nil {
		return time.Time{}, false, db.translate(err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return fromMS(next.Int64), true, nil
}

// schedulerIdle is the longest the scheduler sleeps without looking, so that
// what another process scheduled is not left waiting. While every schedule
// change reaches it (schedulesHeard), it sleeps up to schedulerHeardIdle:
// an idle server then costs the database nothing for its scheduler.
const (
	schedulerIdle      = time.Minute
	schedulerHeardIdle = time.Hour
)

// schedulesHeard reports whether every change of the schedule reaches the
// scheduler at once (ScheduleChanged): when every other node's commit is
// heard, as every end of a credential is (see AccessEnds). The Listener
// tells the scheduler when it begins to listen, for what it missed.
func (db *DB) schedulesHeard() bool {
	heard, _ := db.AccessEnds()
	return heard
}

// RunScheduler fires scheduled messages when they are due until ctx ends.
func (db *DB) RunScheduler(ctx context.Context) {
	ctx = withUpkeep(ctx)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-db.scheduled:
		}
		idle := schedulerIdle
		if db.schedulesHeard() {
			idle = schedulerHeardIdle
		}
		wait := idle
		fired, more, err := db.FireDue(ctx)
		if ctx.Err() == nil {
			db.metrics().SchedulerRun(fired, err)
		}
		switch {
		case err != nil:
			if ctx.Err() != nil || tidings.ErrorCode(err) == tidings.EUNAVAILABLE && errors.Is(err, errUnavailable) {
				wait = time.Second
			} else {
				db.Logger.Error("fire scheduled messages", "err", err)
				wait = 5 * time.Second
			}
		case more:
			wait = 0
		default:
			if fired > 0 {
				db.Logger.Debug("fired scheduled messages", "count", fired)
			}
			next, ok, err := db.NextDue(ctx)
			if err != nil {
				db.Logger.Error("read next scheduled message", "err", err)
				wait = 5 * time.Second
			} else if ok {
				wait = min(max(next.Sub(db.Now()), 0), idle)
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}
