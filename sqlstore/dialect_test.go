package sqlstore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tidings/tidings"
)

// Queries are written with ? marks; PostgreSQL gets $1, $2, … for them, and
// a ? inside a string or a quoted name is left as it is.
func TestRebindNumbersTheMarks(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`UPDATE inboxes SET head = head + ? WHERE user_id = ? RETURNING head`, `UPDATE inboxes SET head = head + $1 WHERE user_id = $2 RETURNING head`},
		{`SELECT '?', "a?b" FROM t WHERE x = ? AND y IN (?, ?)`, `SELECT '?', "a?b" FROM t WHERE x = $1 AND y IN ($2, $3)`},
		{`SELECT 'it''s?' WHERE a = ?`, `SELECT 'it''s?' WHERE a = $1`},
	} {
		if got := postgresDialect.rebind(c.in); got != c.want {
			t.Errorf("rebind(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := sqliteDialect.rebind(c.in); got != c.in {
			t.Errorf("SQLite's rebind changed %q to %q", c.in, got)
		}
	}
}

// PostgreSQL's errors mean to callers what SQLite's do: a duplicate is a
// conflict, a lost connection is unavailable, and a deadlock or
// serialization failure is run again by the writer.
func TestPostgresErrorsTranslate(t *testing.T) {
	db := &DB{}
	for _, c := range []struct {
		code  string
		want  string
		retry bool
	}{
		{"23505", tidings.ECONFLICT, false},
		{"40001", tidings.EUNAVAILABLE, true},
		{"40P01", tidings.EUNAVAILABLE, true},
		{"08006", tidings.EUNAVAILABLE, false},
		{"57P01", tidings.EUNAVAILABLE, false},
		{"42601", "", false}, // a syntax error is a bug, not the caller's
	} {
		err := db.translate(fmt.Errorf("store message: %w", &pgconn.PgError{Code: c.code, Message: "x"}))
		got := ""
		var te *tidings.Error
		if errors.As(err, &te) {
			got = te.Code
		}
		if got != c.want || errors.Is(err, errRetry) != c.retry {
			t.Errorf("SQLSTATE %s: code %q, retry %v; want %q, %v", c.code, got, errors.Is(err, errRetry), c.want, c.retry)
		}
	}
}
