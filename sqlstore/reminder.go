package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tidings/tidings"
)

// leadOf returns how long before an appointment userID wants to be
// reminded: their setting, else the server's default.
func (tx *Tx) leadOf(userID int64) (time.Duration, error) {
	var lead sql.NullInt64
	err := tx.queryRow(`SELECT reminder_lead_minutes FROM users WHERE id = ?`, userID).Scan(&lead)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	if !lead.Valid {
		return tx.db.ReminderLead, nil
	}
	return time.Duration(lead.Int64) * time.Minute, nil
}

// scheduleReminder sets userID's reminder of an appointment to start minus
// their lead, replacing the one they had. When that moment has passed but
// the start has not, the reminder fires at once; after the start there is
// none.
func (tx *Tx) scheduleReminder(a reminderAppointment, userID int64) error {
	if _, err := tx.exec(`DELETE FROM reminders WHERE appointment_id = ? AND user_id = ?`, a.id, userID); err != nil {
		return err
	}
	if !a.start.After(tx.now) {
		return nil
	}
	lead, err := tx.leadOf(userID)
	if err != nil {
		return err
	}
	fireAt := a.start.Add(-lead)
	if !fireAt.After(tx.now) {
		_, err := tx.fireReminder(a.id, userID, tx.now)
		return err
	}
	if _, err := tx.exec(`INSERT INTO reminders (appointment_id, user_id, fire_at, valid_until) VALUES (?, ?, ?, ?)`,
		a.id, userID, ms(fireAt), ms(a.end)); err != nil {
		return err
	}
	tx.scheduled = true
	return nil
}

// fireReminder delivers userID's reminder of an appointment, valid from
// validFrom until the appointment ends, if they may and want to receive it
// now: the appointment is still there, they are still one of its
// participants and a member of its project, and neither the reminders kind
// nor the project is switched off in their settings. Each reminder is an
// event of its own, so that its text speaks in the recipient's time zone.
func (tx *Tx) fireReminder(appointmentID, userID int64, validFrom time.Time) (bool, error) {
	var (
		title, project, timeZone string
		projectID, start, end    int64
		member, participant      bool
	)
	err := tx.queryRow(`SELECT a.title, a.project_id, p.name, a.start_at, a.end_at, u.time_zone,
		EXISTS (SELECT 1 FROM members WHERE project_id = a.project_id AND user_id = u.id),
		EXISTS (SELECT 1 FROM appointment_participants WHERE appointment_id = a.id AND user_id = u.id)
		FROM appointments a JOIN projects p ON p.id = a.project_id JOIN users u ON u.id = ?
		WHERE a.id = ?`, userID, appointmentID).
		Scan(&title, &projectID, &project, &start, &end, &timeZone, &member, &participant)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	validUntil := fromMS(end)
	if !member || !participant || !validUntil.After(tx.now) {
		return false, nil
	}
	if ok, err := tx.wants(userID, tidings.KindReminders, projectID); err != nil || !ok {
		return false, err
	}
	ev := &tidings.Event{
		Process: tidings.ProcessRemind, Module: tidings.ModuleAppointment,
		Item:    &tidings.ItemRef{ID: appointmentID, Name: title, URL: appointmentURL(appointmentID)},
		Project: &tidings.ProjectRef{ID: projectID, Name: project},
		Text:    reminderText(title, project, fromMS(start), timeZone, tx.now),
	}
	if err := tx.insertEvent(ev, validUntil); err != nil {
		return false, err
	}
	if err := tx.deliverOne(ev.ID, userID, validFrom, validUntil, ""); err != nil {
		return false, err
	}
	return true, nil
}

// reminderText tells when the appointment starts, in the recipient's time
// zone: the time alone on the same day, with the date on another.
func reminderText(title, project string, start time.Time, timeZone string, now time.Time) string {
	loc, err := time.LoadLocation(timeZone)
	if err != nil {
		loc = time.UTC
	}
	start, now = start.In(loc), now.In(loc)
	verb := "starts"
	if !start.After(now) {
		verb = "started"
	}
	when := "at " + start.Format("15:04 MST")
	if tidings.DateOf(start) != tidings.DateOf(now) {
		when = "on " + start.Format("2006-01-02") + " " + when
	}
	return fmt.Sprintf("Reminder: “%s” in %s %s %s", title, project, verb, when)
}

// fireReminders fires the reminders that are due, oldest first, up to
// fireBatch; more says whether others are due too.
func (tx *Tx) fireReminders() (fired int, more bool, err error) {
	rows, err := tx.query(`SELECT appointment_id, user_id, fire_at FROM reminders WHERE fire_at <= ? ORDER BY fire_at LIMIT ?`,
		ms(tx.now), fireBatch+1)
	if err != nil {
		return 0, false, err
	}
	type due struct{ appointmentID, userID, fireAt int64 }
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.appointmentID, &d.userID, &d.fireAt); err != nil {
			rows.Close()
			return 0, false, err
		}
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, false, err
	}
	if more = len(list) > fireBatch; more {
		list = list[:fireBatch]
	}
	for _, d := range list {
		// Whoever deletes the row fires it: another node that read it too
		// waits for this delete's commit and then deletes nothing.
		if mine, err := tx.claim(`DELETE FROM reminders WHERE appointment_id = ? AND user_id = ? AND fire_at = ?`, d.appointmentID, d.userID, d.fireAt); err != nil || !mine {
			if err != nil {
				return 0, false, err
			}
			continue
		}
		ok, err := tx.fireReminder(d.appointmentID, d.userID, fromMS(d.fireAt))
		if err != nil {
			return 0, false, err
		}
		if ok {
			fired++
		}
	}
	return fired, more, nil
}

// moveReminders moves userID's reminders that have not fired yet to their
// current lead time.
func (tx *Tx) moveReminders(userID int64) error {
	rows, err := tx.query(`SELECT r.appointment_id, r.fire_at, a.start_at, a.end_at FROM reminders r JOIN appointments a ON a.id = r.appointment_id
		WHERE r.user_id = ?`, userID)
	if err != nil {
		return err
	}
	type pending struct {
		a      reminderAppointment
		fireAt int64
	}
	var list []pending
	for rows.Next() {
		var p pending
		var start, end int64
		if err := rows.Scan(&p.a.id, &p.fireAt, &start, &end); err != nil {
			rows.Close()
			return err
		}
		p.a.start, p.a.end = fromMS(start), fromMS(end)
		list = append(list, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(list) == 0 {
		return nil
	}
	lead, err := tx.leadOf(userID)
	if err != nil {
		return err
	}
	for _, p := range list {
		if ms(p.a.start.Add(-lead)) == p.fireAt {
			continue
		}
		if err := tx.scheduleReminder(p.a, userID); err != nil {
			return err
		}
	}
	return nil
}
