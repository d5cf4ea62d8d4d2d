package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"

	"github.com/tidings/tidings"
)

var _ tidings.SettingsService = (*DB)(nil)

func loadSettings(ctx context.Context, q queryer, userID int64, defaultLead int) (*tidings.Settings, error) {
	var s tidings.Settings
	var lead sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT notify_records, notify_presence, notify_reminders, notify_messages, reminder_lead_minutes FROM users WHERE id = ?`, userID).
		Scan(&s.Records, &s.Presence, &s.Reminders, &s.Messages, &lead)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tidings.Errorf(tidings.EUNAUTHORIZED, "The user no longer exists.")
	}
	if err != nil {
		return nil, err
	}
	s.ReminderLeadMinutes = defaultLead
	if lead.Valid {
		s.ReminderLeadMinutes = int(lead.Int64)
	}
	rows, err := q.QueryContext(ctx, `SELECT project_id FROM muted_projects WHERE user_id = ? ORDER BY project_id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	s.MutedProjects = []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		s.MutedProjects = append(s.MutedProjects, id)
	}
	return &s, rows.Err()
}

func (db *DB) defaultLeadMinutes() int { return int(db.ReminderLead.Minutes()) }

// FindSettings returns the caller's settings.
func (db *DB) FindSettings(ctx context.Context) (*tidings.Settings, error) {
	uid, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	var s *tidings.Settings
	err = db.readTx(ctx, func(tx queryer) error {
		s, err = loadSettings(ctx, tx, uid, db.defaultLeadMinutes())
		return err
	})
	return s, err
}

// UpdateSettings changes the caller's settings; fields left out keep their
// values.
func (db *DB) UpdateSettings(ctx context.Context, upd tidings.SettingsUpdate) (*tidings.Settings, error) {
	uid, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	if err := upd.Validate(); err != nil {
		return nil, err
	}
	var out *tidings.Settings
	err = db.write(ctx, func(tx *Tx) error {
		s, err := loadSettings(tx.ctx, tx.reads(), uid, db.defaultLeadMinutes())
		if err != nil {
			return err
		}
		for _, f := range []struct {
			from *bool
			to   *bool
		}{{upd.Records, &s.Records}, {upd.Presence, &s.Presence}, {upd.Reminders, &s.Reminders}, {upd.Messages, &s.Messages}} {
			if f.from != nil {
				*f.to = *f.from
			}
		}
		var lead any
		if upd.ReminderLeadMinutes != nil {
			s.ReminderLeadMinutes = *upd.ReminderLeadMinutes
			lead = s.ReminderLeadMinutes
		} else if err := tx.queryRow(`SELECT reminder_lead_minutes FROM users WHERE id = ?`, uid).Scan(&lead); err != nil {
			return err
		}
		if _, err := tx.exec(`UPDATE users SET notify_records = ?, notify_presence = ?, notify_reminders = ?, notify_messages = ?, reminder_lead_minutes = ?, updated_at = ? WHERE id = ?`,
			s.Records, s.Presence, s.Reminders, s.Messages, lead, ms(tx.now), uid); err != nil {
			return err
		}
		if upd.MutedProjects != nil {
			ids := dedupe(*upd.MutedProjects)
			for _, id := range ids {
				var member int
				if err := tx.queryRow(`SELECT COUNT(*) FROM members WHERE project_id = ? AND user_id = ?`, id, uid).Scan(&member); err != nil {
					return err
				}
				if member == 0 {
					return &tidings.Error{Code: tidings.ENOTFOUND, Field: "muted_projects", Message: fmt.Sprintf("Project %d was not found.", id)}
				}
			}
			if _, err := tx.exec(`DELETE FROM muted_projects WHERE user_id = ?`, uid); err != nil {
				return err
			}
			for _, id := range ids {
				if _, err := tx.exec(`INSERT INTO muted_projects (user_id, project_id) VALUES (?, ?)`, uid, id); err != nil {
					return err
				}
			}
			s.MutedProjects = ids
		}
		if err := tx.afterSettingsChanged(uid); err != nil {
			return err
		}
		out = s
		return nil
	})
	return out, err
}

// afterSettingsChanged is where settings that shape scheduled work (the
// reminder lead) take effect: the user's pending reminders move to their
// lead. Kinds and muted projects are checked when a reminder fires.
func (tx *Tx) afterSettingsChanged(userID int64) error { return tx.moveReminders(userID) }

func dedupe(ids []int64) []int64 {
	out := append([]int64{}, ids...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	n := 0
	for i, id := range out {
		if i == 0 || id != out[n-1] {
			out[n] = id
			n++
		}
	}
	return out[:n]
}
