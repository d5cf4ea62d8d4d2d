package sqlstore

import (
	"errors"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// What a batch of publishes runs before its transaction began must only
// read and take no lock: anything else begins the transaction first.
func TestPlainRead(t *testing.T) {
	for _, c := range []struct {
		query string
		plain bool
	}{
		{`SELECT id FROM users WHERE login = ?`, true},
		{"  select name, EXISTS (SELECT 1 FROM members WHERE project_id = projects.id AND user_id = ?) FROM projects WHERE id = ?", true},
		{`SELECT reminder_lead_minutes FROM users WHERE id = ?`, true},
		{"SELECT user_id FROM inboxes WHERE user_id = ?\n\tFOR UPDATE", false},
		{`SELECT id FROM todos WHERE id = ? FOR NO KEY UPDATE`, false},
		{`SELECT id FROM todos WHERE id = ? for share`, false},
		{`SELECT pg_try_advisory_xact_lock(7462346800146)`, false},
		{`SELECT pg_notify(?, ?)`, false},
		{`SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, ?)`, false},
		{`INSERT INTO notes (title) VALUES (?) RETURNING id`, false},
		{`DELETE FROM sessions WHERE hash = ? RETURNING user_id`, false},
		{`WITH ev AS (INSERT INTO events VALUES (?)) SELECT 1`, false},
		{`UPDATE inboxes SET head = head + ? WHERE user_id = ? RETURNING head`, false},
	} {
		if got := plainRead(c.query); got != c.plain {
			t.Errorf("plainRead(%q) = %v, want %v", c.query, got, c.plain)
		}
	}
}

// The batch's last statement, run by itself, is its commit: an error
// PostgreSQL answered means it did not commit; an error without an answer
// (the connection lost) leaves it in doubt, as a COMMIT's would.
func TestLazyTxInDoubt(t *testing.T) {
	answered := &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
	lost := io.ErrUnexpectedEOF
	for _, c := range []struct {
		name  string
		tx    *pgLazyTx
		err   error
		doubt bool
	}{
		{"no lazy transaction", nil, lost, false},
		{"the last statement ran by itself, connection lost", &pgLazyTx{last: true}, lost, true},
		{"the last statement ran by itself, wrapped loss", &pgLazyTx{last: true}, errors.Join(errors.New("store the batch"), lost), true},
		{"the last statement ran by itself, PostgreSQL refused it", &pgLazyTx{last: true}, answered, false},
		{"the last statement ran by itself, and succeeded", &pgLazyTx{last: true}, nil, false},
		{"an earlier statement failed", &pgLazyTx{}, lost, false},
	} {
		if got := c.tx.inDoubt(c.err); got != c.doubt {
			t.Errorf("%s: inDoubt = %v, want %v", c.name, got, c.doubt)
		}
	}
}
