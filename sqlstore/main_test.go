package sqlstore_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/tidings/tidings/sqlstore"
)

// The suite runs twice: on SQLite, and then, in a second run of the test
// binary with dialectEnv set, on the PostgreSQL server that
// TIDINGS_TEST_POSTGRES names, where every store gets a schema of its own.
const (
	dialectEnv  = "TIDINGS_TEST_DIALECT"
	postgresEnv = "TIDINGS_TEST_POSTGRES"
	requireEnv  = "TIDINGS_REQUIRE_POSTGRES"
)

func TestMain(m *testing.M) {
	if os.Getenv(dialectEnv) == "postgres" {
		os.Exit(m.Run())
	}
	code := m.Run()
	server := os.Getenv(postgresEnv)
	if server == "" {
		if os.Getenv(requireEnv) == "1" {
			fmt.Fprintf(os.Stderr, "FAIL: %s=1, but %s names no PostgreSQL server\n", requireEnv, postgresEnv)
			os.Exit(1)
		}
		fmt.Printf("sqlstore: the PostgreSQL run is skipped; set %s to a server, e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable\n", postgresEnv)
		os.Exit(code)
	}
	fmt.Printf("=== sqlstore: the same tests on PostgreSQL (%s)\n", sqlstore.Redact(server))
	var args []string
	for _, a := range os.Args[1:] {
		// The go command reads the parent's log of what the tests looked
		// at; the second run must not write over it.
		if !strings.HasPrefix(a, "-test.testlogfile") {
			args = append(args, a)
		}
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), dialectEnv+"=postgres")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the PostgreSQL run: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// onPostgres reports whether this run of the suite is the PostgreSQL one.
func onPostgres() bool { return os.Getenv(dialectEnv) == "postgres" }

// dialectName names the database this run of the suite is on.
func dialectName() string {
	if onPostgres() {
		return "postgres"
	}
	return "sqlite"
}

// sqliteOnly skips a test that is about SQLite files themselves.
func sqliteOnly(tb testing.TB) {
	tb.Helper()
	if onPostgres() {
		tb.Skip("about SQLite files and pragmas; PostgreSQL has nothing like it")
	}
}

// postgresOnly skips a test that needs a database server several stores share.
func postgresOnly(tb testing.TB) {
	tb.Helper()
	if !onPostgres() {
		tb.Skip("several nodes share a database only on PostgreSQL; runs in the PostgreSQL half")
	}
}

var (
	adminOnce sync.Once
	adminDB   *sql.DB
	adminErr  error
)

// admin is a connection to the test server, for making and dropping schemas.
func admin(tb testing.TB) *sql.DB {
	tb.Helper()
	adminOnce.Do(func() {
		adminDB, adminErr = sql.Open("pgx", os.Getenv(postgresEnv))
		if adminErr == nil {
			adminErr = adminDB.Ping()
		}
	})
	if adminErr != nil {
		tb.Fatalf("PostgreSQL at %s: %v", sqlstore.Redact(os.Getenv(postgresEnv)), adminErr)
	}
	return adminDB
}

// freshSource returns where a test's store keeps its data: a new SQLite
// file, or a new, empty schema on the PostgreSQL server, dropped when the
// test ends.
func freshSource(tb testing.TB) string {
	tb.Helper()
	if !onPostgres() {
		return filepath.Join(tb.TempDir(), "tidings.db")
	}
	var b [8]byte
	rand.Read(b[:])
	schema := "tidings_t_" + hex.EncodeToString(b[:])
	a := admin(tb)
	if _, err := a.Exec(`CREATE SCHEMA ` + schema); err != nil {
		tb.Fatal(err)
	}
	// Registered first, so it runs after the stores are closed.
	tb.Cleanup(func() {
		if _, err := a.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(os.Getenv(postgresEnv))
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// rawConn is the database past the store, as a second process would see
// it, for looking at and writing what the store does not show. Queries are
// written with ? marks, as the store's are.
type rawConn struct {
	db     *sql.DB
	rebind func(string) string
}

func (r rawConn) Exec(q string, args ...any) (sql.Result, error) {
	return r.db.Exec(r.rebind(q), args...)
}

func (r rawConn) Query(q string, args ...any) (*sql.Rows, error) {
	return r.db.Query(r.rebind(q), args...)
}

func (r rawConn) QueryRow(q string, args ...any) *sql.Row {
	return r.db.QueryRow(r.rebind(q), args...)
}

func (r rawConn) Close() error { return r.db.Close() }

// openRaw opens the database at source past the store.
func openRaw(tb testing.TB, source string) rawConn {
	tb.Helper()
	db, rebind, err := sqlstore.OpenRaw(source)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return rawConn{db, rebind}
}

// rawDB opens a store's database past the store.
func rawDB(tb testing.TB, db *sqlstore.DB) rawConn { return openRaw(tb, db.Path) }

// MustOpenDB opens a store on a fresh database, closed when the test ends.
func MustOpenDB(tb testing.TB, opts ...func(*sqlstore.DB)) *sqlstore.DB {
	tb.Helper()
	return mustOpen(tb, freshSource(tb), opts...)
}

// mustOpen opens a store on source, closed when the test ends.
func mustOpen(tb testing.TB, source string, opts ...func(*sqlstore.DB)) *sqlstore.DB {
	tb.Helper()
	db := sqlstore.NewDB(source)
	for _, o := range opts {
		o(db)
	}
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}
