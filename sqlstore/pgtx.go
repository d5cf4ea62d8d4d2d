package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// pgLazyTx is a batch of publishes' transaction on PostgreSQL, begun only
// at its first write. A publish reads (its recipients, their settings) and
// leaves every write to the batch's last statement. Run outside a
// transaction, those reads see what they would see inside one at READ
// COMMITTED, where every statement sees the commits made before it; and
// when no write came before it, the last statement commits by itself. A
// lone publish then costs PostgreSQL two round trips instead of four: no
// BEGIN, no COMMIT (one, the batch's statement, when its recipients were
// looked up before; see keptRecipients).
//
// What is not plainly a read (plainRead) begins the transaction first, so
// a job that writes after all (a scheduled message) or locks has its
// transaction as before.
type pgLazyTx struct {
	db  *sql.DB
	ctx context.Context
	tx  *sql.Tx // nil until the first write
	err error   // why BEGIN failed
	// last: the batch's last statement is next, and runs by itself if
	// nothing began the transaction.
	last bool
}

func (t *pgLazyTx) begin() error {
	if t.tx == nil && t.err == nil {
		t.tx, t.err = t.db.BeginTx(t.ctx, nil)
	}
	return t.err
}

// outside reports whether a statement runs outside the transaction,
// without beginning it: a plain read, the batch's last statement, or the
// taking of event ids, whose effect no transaction could undo.
func (t *pgLazyTx) outside(query string) bool {
	return t.tx == nil && (t.last || plainRead(query) || query == takeEventIDs)
}

func (t *pgLazyTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := t.begin(); err != nil {
		return nil, err
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *pgLazyTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t.outside(query) {
		return t.db.QueryContext(ctx, query, args...)
	}
	if err := t.begin(); err != nil {
		return nil, err
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t *pgLazyTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if t.outside(query) {
		return t.db.QueryRowContext(ctx, query, args...)
	}
	if t.begin() != nil {
		// A Row reports only its query's error: this one reports that
		// the context is done, and the batch stops on t.err.
		done, cancel := context.WithCancel(ctx)
		cancel()
		return t.db.QueryRowContext(done, query, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// StmtContext gives the cached statement itself before the transaction
// began (Tx.stmt begins it for a statement that is not plainly a read),
// and the transaction's copy of it after.
func (t *pgLazyTx) StmtContext(ctx context.Context, s *sql.Stmt) *sql.Stmt {
	if t.tx == nil {
		return s
	}
	return t.tx.StmtContext(ctx, s)
}

// prepare prepares a statement the cache does not hold, in the
// transaction: the writer's only connection may be held by it.
func (t *pgLazyTx) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	if err := t.begin(); err != nil {
		return nil, err
	}
	return t.tx.PrepareContext(ctx, query)
}

func (t *pgLazyTx) Commit() error {
	if t.tx == nil {
		if t.err != nil {
			return t.err
		}
		return nil // nothing began, or the last statement committed by itself
	}
	return t.tx.Commit()
}

func (t *pgLazyTx) Rollback() error {
	if t.tx == nil {
		return nil
	}
	return t.tx.Rollback()
}

// inDoubt reports whether the last statement ran by itself and failed
// without PostgreSQL's answer: it may have committed all the same.
func (t *pgLazyTx) inDoubt(err error) bool {
	if t == nil {
		return false
	}
	var pgErr *pgconn.PgError
	return t.last && t.tx == nil && t.err == nil && err != nil && !errors.As(err, &pgErr)
}

// plainRead reports whether a statement only reads, and takes no lock: a
// SELECT without a locking clause, calling none of PostgreSQL's functions
// with effects (pg_notify, advisory locks) or a sequence's.
func plainRead(query string) bool {
	q := strings.ToUpper(strings.Join(strings.Fields(query), " "))
	if !strings.HasPrefix(q, "SELECT") {
		return false
	}
	for _, effect := range []string{" FOR UPDATE", " FOR SHARE", " FOR NO KEY", " FOR KEY SHARE", "PG_", "NEXTVAL", "SETVAL"} {
		if strings.Contains(q, effect) {
			return false
		}
	}
	return true
}
