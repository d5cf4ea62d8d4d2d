package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"modernc.org/sqlite"
)

// txConn is what a batch's transaction runs its statements on: database/sql's
// *sql.Tx on PostgreSQL, or on SQLite the writer's own connection inside a
// transaction it began itself (ownTx).
type txConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	// StmtContext gives a statement of the writer's cache for use in the
	// transaction.
	StmtContext(ctx context.Context, s *sql.Stmt) *sql.Stmt
	Commit() error
	Rollback() error
}

// writerConn is the SQLite writer's one connection, held for the life of
// the store, with its transaction statements prepared once.
//
// database/sql's BeginTx and Commit make the SQLite driver prepare "begin"
// and "commit" anew each time, and each cached statement is bound to the
// transaction with an allocation. In a test of one UPDATE a transaction
// took 55 µs p50 that way and 28 µs this way; through HTTP it gave 9 % more
// publishes/s from one publisher and 5 % less CPU per publish at 16.
type writerConn struct {
	conn                    *sql.Conn
	begin, commit, rollback *sql.Stmt
}

func openWriterConn(ctx context.Context, db *sql.DB) (*writerConn, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writerConn{conn: conn}
	for _, s := range []struct {
		stmt  **sql.Stmt
		query string
	}{{&w.begin, "BEGIN IMMEDIATE"}, {&w.commit, "COMMIT"}, {&w.rollback, "ROLLBACK"}} {
		if *s.stmt, err = conn.PrepareContext(ctx, s.query); err != nil {
			w.close()
			return nil, fmt.Errorf("prepare %s: %w", s.query, err)
		}
	}
	return w, nil
}

// prepare prepares a statement on the connection, for the writer's cache.
func (w *writerConn) prepare(query string) (*sql.Stmt, error) {
	return w.conn.PrepareContext(context.Background(), query)
}

// dataVersion is SQLite's count of changes to the database file as the
// writer's connection sees it (SQLITE_FCNTL_DATA_VERSION): unlike PRAGMA
// data_version, which costs a statement (about 6 µs against 0.1), it moves
// with the connection's own commits too. Read once a transaction has
// begun, it has counted every commit of another connection before it.
func (w *writerConn) dataVersion() (int64, error) {
	var v uint32
	err := w.conn.Raw(func(dc any) error {
		fc, ok := unwrap(dc).(sqlite.FileControl)
		if !ok {
			return fmt.Errorf("the SQLite driver gives no file control")
		}
		var err error
		v, err = fc.FileControlDataVersion("main")
		return err
	})
	return int64(v), err
}

// pagesWritten is how many pages the connection's commits wrote to the log
// since it was last asked: SQLite's own count of them.
func (w *writerConn) pagesWritten() int64 {
	var n int
	w.conn.Raw(func(dc any) error {
		if s, ok := unwrap(dc).(sqlite.DBStatus); ok {
			n, _, _ = s.Status(sqlite.DBStatusCacheWrite, true)
		}
		return nil
	})
	return int64(n)
}

func (w *writerConn) close() error {
	for _, s := range []*sql.Stmt{w.begin, w.commit, w.rollback} {
		if s != nil {
			s.Close()
		}
	}
	return w.conn.Close()
}

// beginTx begins a transaction on the connection. Like the writer pool's
// BeginTx (_txlock=immediate in its DSN) it takes the write lock at once: a
// second process writing to the file makes it wait under busy_timeout, not
// fail later between a read and a write.
func (w *writerConn) beginTx(ctx context.Context) (*ownTx, error) {
	if _, err := w.begin.ExecContext(ctx); err != nil {
		return nil, err
	}
	return &ownTx{w: w, ctx: ctx}, nil
}

// ownTx is a transaction the writer began on its connection. Like
// database/sql's, it ends with Commit or Rollback, after which further
// calls of either report sql.ErrTxDone.
type ownTx struct {
	w    *writerConn
	ctx  context.Context
	done bool
}

func (t *ownTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.w.conn.ExecContext(ctx, query, args...)
}

func (t *ownTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.w.conn.QueryContext(ctx, query, args...)
}

func (t *ownTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.w.conn.QueryRowContext(ctx, query, args...)
}

// StmtContext returns s itself: the writer's cache prepares on this very
// connection.
func (t *ownTx) StmtContext(_ context.Context, s *sql.Stmt) *sql.Stmt { return s }

// Commit commits. If the COMMIT fails, SQLite may have left the transaction
// open (a lock it could not get): it is rolled back, so that the connection
// is out of any transaction afterwards, as database/sql's Commit leaves it.
func (t *ownTx) Commit() error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	_, err := t.w.commit.ExecContext(t.ctx)
	if err != nil {
		t.w.rollback.ExecContext(t.ctx) // "no transaction is active" if it ended
	}
	return err
}

// Rollback rolls back. It reports no error when SQLite had already rolled
// the transaction back by itself (after some errors it does).
func (t *ownTx) Rollback() error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	_, err := t.w.rollback.ExecContext(t.ctx)
	if err != nil && isNoTransaction(err) {
		return nil
	}
	return err
}

// isNoTransaction reports SQLite's refusal to roll back outside a
// transaction.
func isNoTransaction(err error) bool {
	return strings.Contains(err.Error(), "no transaction is active")
}
