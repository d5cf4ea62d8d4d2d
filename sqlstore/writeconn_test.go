package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

func openTestWriterConn(t *testing.T) (*sql.DB, *writerConn) {
	t.Helper()
	db, err := sql.Open("sqlite", sqliteDSN(filepath.Join(t.TempDir(), "w.db"), false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{
		`CREATE TABLE parents (id INTEGER PRIMARY KEY)`,
		`CREATE TABLE children (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL REFERENCES parents (id))`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.SetMaxOpenConns(1)
	w, err := openWriterConn(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.close() })
	return db, w
}

func count(t *testing.T, w *writerConn, table string) int {
	t.Helper()
	var n int
	if err := w.conn.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A COMMIT that SQLite refuses but leaves the transaction open (here a
// deferred foreign key) is rolled back: nothing of it stays, and the next
// transaction begins on the same connection.
func TestOwnTxFailedCommitLeavesNoTransaction(t *testing.T) {
	ctx := context.Background()
	_, w := openTestWriterConn(t)
	tx, err := w.beginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`PRAGMA defer_foreign_keys = ON`, `INSERT INTO parents (id) VALUES (1)`, `INSERT INTO children (id, parent) VALUES (1, 99)`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("a commit that breaks a foreign key succeeded")
	}
	if err := tx.Rollback(); !errors.Is(err, sql.ErrTxDone) {
		t.Errorf("Rollback after Commit: %v, want sql.ErrTxDone", err)
	}
	if n := count(t, w, "parents"); n != 0 {
		t.Errorf("%d parents stayed from the failed transaction", n)
	}
	tx, err = w.beginTx(ctx)
	if err != nil {
		t.Fatalf("begin after the failed commit: %v", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO parents (id) VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, w, "parents"); n != 1 {
		t.Errorf("%d parents after the second commit, want 1", n)
	}
}

// Rollback undoes the transaction's statements, statements of the writer's
// cache among them, and a second Rollback reports sql.ErrTxDone.
func TestOwnTxRollback(t *testing.T) {
	ctx := context.Background()
	_, w := openTestWriterConn(t)
	insert, err := w.prepare(`INSERT INTO parents (id) VALUES (?)`)
	if err != nil {
		t.Fatal(err)
	}
	defer insert.Close()
	tx, err := w.beginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.StmtContext(ctx, insert).ExecContext(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); !errors.Is(err, sql.ErrTxDone) {
		t.Errorf("second Rollback: %v, want sql.ErrTxDone", err)
	}
	if n := count(t, w, "parents"); n != 0 {
		t.Errorf("%d parents after the rollback", n)
	}
}
