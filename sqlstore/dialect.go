package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/tidings/tidings"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is what differs between the databases the store runs on: how a
// database is opened, how a query marks its arguments, which migrations
// build the schema and what the driver's errors mean. Every query is written
// once, for SQLite, with ? marks; the dialect rewrites what it must.
type dialect struct {
	// name is also the directory of the dialect's migrations.
	name string

	// numbered: the database wants $1, $2, … instead of ?.
	numbered bool

	// open returns the writer's pool (one connection) and the readers';
	// the statements either sends to the database are counted in counts.
	open func(source string, counts *statementCounts, syncFull bool, dial pgconn.DialFunc) (writer, reader *sql.DB, err error)

	// lockMigrations, if set, runs first in every migration transaction,
	// so that nodes starting at once migrate one after the other.
	lockMigrations string

	// migrationsTable creates the table of applied migrations.
	migrationsTable string

	// readOptions make a read transaction see one snapshot.
	readOptions *sql.TxOptions

	// notifies: other nodes share the database, and a commit tells them,
	// with a NOTIFY in its transaction, whom to wake.
	notifies bool
}

var sqliteDialect = &dialect{
	name:            "sqlite",
	open:            openSQLite,
	migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
	// SQLite's read transactions are snapshots already.
	readOptions: &sql.TxOptions{ReadOnly: true},
}

var postgresDialect = &dialect{
	name:     "postgres",
	numbered: true,
	open:     openPostgres,
	// The number is arbitrary; it only has to be Tidings' own.
	lockMigrations:  `SELECT pg_advisory_xact_lock(7462346800145)`,
	migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`,
	// Under PostgreSQL's default, READ COMMITTED, every statement would see
	// the commits made since the one before. A read-only REPEATABLE READ
	// transaction never fails for serialization.
	readOptions: &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead},
	notifies:    true,
}

// IsPostgresURL reports whether a --db value names a PostgreSQL server
// rather than a SQLite file.
func IsPostgresURL(source string) bool {
	return strings.HasPrefix(source, "postgres://") || strings.HasPrefix(source, "postgresql://")
}

func dialectOf(source string) *dialect {
	if IsPostgresURL(source) {
		return postgresDialect
	}
	return sqliteDialect
}

// Redact returns source fit for logs and error messages: a URL's password
// is replaced by "xxxxx".
func Redact(source string) string {
	if !IsPostgresURL(source) {
		return source
	}
	u, err := url.Parse(source)
	if err != nil {
		return "postgres://(a URL that does not parse)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// sqliteDSN is the data source of a connection to the SQLite file at path.
func sqliteDSN(path string, syncFull bool) string {
	// In WAL mode a commit is in the log, in the system's cache, before it
	// returns: it survives the process being killed at any moment. FULL
	// also waits for the disk at every commit, for power loss.
	sync := "NORMAL"
	if syncFull {
		sync = "FULL"
	}
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")"
}

// makeDatabaseDir creates the directory of the SQLite file at path if it
// is missing.
func makeDatabaseDir(path string) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create database directory: %w", err)
		}
	}
	return nil
}

func openSQLite(path string, counts *statementCounts, syncFull bool, _ pgconn.DialFunc) (writer, reader *sql.DB, err error) {
	if err := makeDatabaseDir(path); err != nil {
		return nil, nil, err
	}
	base := sqliteDSN(path, syncFull)
	writerDSN := base + "&_txlock=immediate&_pragma=wal_autocheckpoint(" + strconv.Itoa(writerAutocheckpoint) + ")"
	if writer, err = openCounted(writerDSN, counts, false); err != nil {
		return nil, nil, err
	}
	if reader, err = openCounted(base+"&_pragma=query_only(1)", counts, false); err != nil {
		writer.Close()
		return nil, nil, err
	}
	return writer, reader, nil
}

func openPostgres(source string, counts *statementCounts, _ bool, dial pgconn.DialFunc) (writer, reader *sql.DB, err error) {
	cfg, err := pgx.ParseConfig(source)
	if err != nil {
		// pgx's message may quote the URL, password and all.
		return nil, nil, fmt.Errorf("the database URL %s does not parse", Redact(source))
	}
	cfg.Tracer = statementCounter{counts}
	if dial != nil {
		cfg.DialFunc = dial
	}
	rcfg := cfg.Copy()
	// The readers' counterpart of SQLite's query_only: a read that tried
	// to write would fail rather than write outside the writer.
	rcfg.RuntimeParams["default_transaction_read_only"] = "on"
	return stdlib.OpenDB(*cfg), stdlib.OpenDB(*rcfg), nil
}

// statementCounter counts the statements pgx sends, prepared or not: what
// an idle client costs the database is measured by it.
type statementCounter struct{ counts *statementCounts }

func (c statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	if c.counts != nil {
		c.counts.add(ctx)
	}
	return ctx
}

func (statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// readers is the size of the readers' pool.
func readers() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// rebind turns a query written with ? marks into the dialect's. It is done
// once per statement where statements are prepared and cached; queries
// whose text varies are rebound each time, which costs a scan of the text.
func (d *dialect) rebind(query string) string {
	if !d.numbered || !strings.Contains(query, "?") {
		return query
	}
	if s, ok := rebound.Load(query); ok {
		return s.(string)
	}
	out := numberMarks(query)
	if rebounds.Add(1) <= maxRebound {
		rebound.Store(query, out)
	}
	return out
}

// rebound remembers the rewritten texts of the statements the store runs,
// which are a bounded set but for the IN lists: maxRebound keeps a store
// that is asked for many different list lengths from growing without end.
var (
	rebound  sync.Map
	rebounds atomic.Int64
)

const maxRebound = 4096

// numberMarks replaces each ? outside string literals and quoted names by
// $1, $2, …
func numberMarks(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// errRetry marks an error after which the database asks for the whole
// transaction to be run again: a serialization failure or a deadlock. The
// writer does so; anyone else who meets it may try again shortly.
var errRetry = &tidings.Error{Code: tidings.EUNAVAILABLE, Message: "The database is busy; try again shortly."}

var errUnavailable = &tidings.Error{Code: tidings.EUNAVAILABLE, Message: "The database is busy; try again shortly."}

var errConflict = &tidings.Error{Code: tidings.ECONFLICT, Message: "This conflicts with something that is already stored."}

// translate turns driver errors into domain errors by each driver's codes.
func (db *DB) translate(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &tidings.Error{Code: errConflict.Code, Message: errConflict.Message}
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_BUSY_SNAPSHOT:
			db.countError(err, "unavailable")
			return fmt.Errorf("%w: %w", errUnavailable, err)
		}
		db.countError(err, "other")
		return err
	}
	// A server that refuses a connection, for whatever reason it gives (it
	// starts, it is full, the database takes no connections), is away.
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		db.countError(err, "unavailable")
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return &tidings.Error{Code: errConflict.Code, Message: errConflict.Message}
		case pe.Code == "40001", pe.Code == "40P01": // serialization_failure, deadlock_detected
			db.countError(err, "retry")
			return fmt.Errorf("%w: %w", errRetry, err)
		case strings.HasPrefix(pe.Code, "08"), // connection exceptions
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutting down, starting up
			pe.Code == "53300": // too many connections
			db.countError(err, "unavailable")
			return fmt.Errorf("%w: %w", errUnavailable, err)
		}
		db.countError(err, "other")
		return err
	}
	if isConnectionError(err) {
		db.countError(err, "unavailable")
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	return err
}

// isConnectionError reports whether err says that the server could not be
// reached or went away, as opposed to refusing a statement.
func isConnectionError(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || pgconn.SafeToRetry(err)
}
