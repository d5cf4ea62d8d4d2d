// Package sqlstore keeps Tidings in SQLite or PostgreSQL: users, sessions, projects, items,
// and the message engine — events, per-user numbered messages, messages that
// are not due yet, and the janitor that removes expired ones.
//
// All writes go through one connection. Writes that arrive together share one
// transaction (group commit), each in a savepoint of its own so that one
// failing write does not undo the others; every caller is answered only after
// the commit. Reads use a pool of connections.
//
// Every query is written once; a small dialect (see dialect.go) carries what
// must differ between SQLite and PostgreSQL.
package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tidings/tidings"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// Notifier is told, after each commit, which users have new messages and
// whose credentials ended.
type Notifier interface {
	Notify(userIDs ...int64)
	NotifyAccess(userIDs ...int64)
}

// Defaults of the settings a DB takes.
const (
	DefaultMessageTTL   = 2 * time.Minute
	DefaultReminderLead = 15 * time.Minute
	maxWriteBatch       = 256
)

// DB is the store. Set its fields before Open.
type DB struct {
	// Path is the SQLite file, or the postgres:// or postgresql:// URL of
	// a PostgreSQL database. Pass it through Redact before showing it.
	Path string

	// Now is the clock; tests replace it to move time.
	Now tidings.Clock

	// SyncFull makes SQLite wait for the disk at every commit, so that a
	// commit survives a power loss or a crash of the system too. By
	// default (WAL, synchronous=NORMAL) a commit survives the process being
	// killed at any moment; the last commits before a power loss may be
	// lost. PostgreSQL follows its own synchronous_commit.
	SyncFull bool

	// Notifier is woken after commits that stored messages. May be nil.
	Notifier Notifier

	// MessageTTL is how long a message is valid after valid_from.
	MessageTTL time.Duration

	// ReminderLead is the default lead time of appointment reminders.
	ReminderLead time.Duration

	// Logger receives the store's log lines.
	Logger *slog.Logger

	// Node names this process among the nodes that share a PostgreSQL
	// database, in the NOTIFY of its commits; NewDB draws one.
	Node string

	// Metrics, if set, is told of commits, background runs and database
	// errors.
	Metrics Metrics

	// Serving makes Open refuse a SQLite file that another serving store,
	// in this process or another, has open. A server knows only its own
	// commits: its inboxes in memory, the wake-ups of its clients and its
	// event ids count on no other server writing messages to the file,
	// and clients of two servers on one file would wait for each other's
	// messages until their polls time out. Commands that add a user or a
	// token while a server runs open the file without it. PostgreSQL is
	// shared by design and takes no such lock.
	Serving bool

	dialect *dialect
	sent    statementCounts // statements sent to the database
	writer  *sql.DB
	reader  *sql.DB
	wconn   *writerConn // SQLite: the writer's connection, out of writer's pool
	serving *os.File    // SQLite with Serving: holds the lock, see lockServing
	epoch   uint64

	maxVersion int             // tests: migrate no further than this schema (0: all)
	dial       pgconn.DialFunc // tests: how PostgreSQL connections are dialed (nil: pgx's own)

	wstmts stmtCache
	rstmts stmtCache

	inboxes     inboxes       // messages just committed, per user
	checkpoints *checkpointer // SQLite: checkpoints the log off the writer
	eventIDs    eventIDs      // the writer's, see eventIDs
	inboxReads  atomic.Int64  // FindMessages answered from inboxes
	storedRead  func()        // tests: run after a read from the database, before it seeds an inbox
	commits     atomic.Int64  // batches committed, but those of janitor rounds alone
	guarded     atomic.Bool   // the last batch had a failing write: use savepoints
	// What the writer keeps from batch to batch: the lookups of recipients
	// (see keptRecipients) and, on SQLite, the inbox heads its commits left
	// (see raiseHead), both on SQLite as of the data version keptVersion
	// (see writerConn.dataVersion). Only a batch's leader uses them.
	recipients  map[recipientKey]recipient
	heads       map[int64]int64
	keptVersion int64
	// On PostgreSQL the lookups of recipients are kept as of keptPeople:
	// what the Listener had heard when the batch that made them began.
	keptPeople    peopleSeen
	peopleChanged atomic.Uint64 // other nodes' commits that may have changed people, as heard

	// The writes waiting for a batch, and who runs it (see submit).
	wmu     sync.Mutex
	stepped *sync.Cond // on wmu: a leader stepped down; nil until Open
	closed  bool
	queue   []*job
	leading bool   // a caller runs a batch; queue is empty if not
	batch   []*job // the leader's batch, reused

	scheduled chan struct{} // wakes the scheduler when something was scheduled
}

// NewDB returns a store for the SQLite file at path, or for the PostgreSQL
// database that path names if it is a postgres:// or postgresql:// URL.
func NewDB(path string) *DB {
	return &DB{
		Path:         path,
		Now:          time.Now,
		MessageTTL:   DefaultMessageTTL,
		ReminderLead: DefaultReminderLead,
		Logger:       slog.Default(),
		Node:         newNodeName(),
		scheduled:    make(chan struct{}, 1),
	}
}

// newNodeName draws a short random name for a node.
func newNodeName() string {
	var b [6]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// TellLoginFailure tells the other nodes of a failed login, keyed
// "address~login", so that every node's login throttle counts it. On SQLite
// there are no other nodes.
func (db *DB) TellLoginFailure(ctx context.Context, key string) error {
	if !db.dialect.notifies {
		return nil
	}
	return db.write(ctx, func(tx *Tx) error {
		tx.failures = append(tx.failures, key)
		return nil
	})
}

// ScheduleChanged tells the scheduler that what is due next may have
// changed: another node scheduled something.
func (db *DB) ScheduleChanged() {
	select {
	case db.scheduled <- struct{}{}:
	default:
	}
}

// Statements counts the statements the store sent to its database, on
// PostgreSQL and SQLite alike: prepared or not, and each BEGIN, COMMIT and
// ROLLBACK.
func (db *DB) Statements() int64 { return db.sent.clients.Load() + db.sent.upkeep.Load() }

// StatementCounts returns Statements apart by whom they were for: clients
// (requests, and the reads and writes they make) and upkeep (the janitor,
// the scheduler, checkpoints, opening and closing the store).
func (db *DB) StatementCounts() (clients, upkeep int64) {
	return db.sent.clients.Load(), db.sent.upkeep.Load()
}

// Postgres reports whether the store is on PostgreSQL, where other nodes
// may share the database.
func (db *DB) Postgres() bool { return db.dialect == postgresDialect }

// Open creates the file if needed, applies migrations and starts the writer.
func (db *DB) Open() error {
	if db.Path == "" {
		return fmt.Errorf("sqlstore: no database path")
	}
	db.dialect = dialectOf(db.Path)
	var err error
	if db.Serving && db.dialect == sqliteDialect {
		// The lock file lies beside the database: its directory first.
		if err := makeDatabaseDir(db.Path); err != nil {
			return err
		}
		if db.serving, err = lockServing(db.Path); err != nil {
			return err
		}
	}
	if db.writer, db.reader, err = db.dialect.open(db.Path, &db.sent, db.SyncFull, db.dial); err != nil {
		db.unlockServing()
		return err
	}
	db.writer.SetMaxOpenConns(1)
	db.writer.SetMaxIdleConns(1)
	db.writer.SetConnMaxLifetime(0)
	db.writer.SetConnMaxIdleTime(0)
	n := readers()
	db.reader.SetMaxOpenConns(n)
	db.reader.SetMaxIdleConns(n)
	db.reader.SetConnMaxIdleTime(0)
	fail := func(err error) error {
		db.writer.Close()
		db.reader.Close()
		db.writer, db.reader = nil, nil
		db.unlockServing()
		return err
	}
	if err := db.writer.Ping(); err != nil {
		return fail(fmt.Errorf("open %s: %w", Redact(db.Path), err))
	}
	if err := db.migrate(); err != nil {
		return fail(err)
	}
	db.wstmts.prepare, db.rstmts.prepare = db.writer.Prepare, db.reader.Prepare
	db.wstmts.dialect, db.rstmts.dialect = db.dialect, db.dialect
	if db.dialect == sqliteDialect {
		// The writer's only connection is taken out of its pool for good:
		// the writer begins and ends transactions on it with statements
		// prepared once, and its cache prepares there too.
		if db.wconn, err = openWriterConn(context.Background(), db.writer); err != nil {
			return fail(fmt.Errorf("open %s: %w", Redact(db.Path), err))
		}
		db.wstmts.prepare = db.wconn.prepare
	}

	// On SQLite this process is the only writer; on PostgreSQL the
	// inboxes wait for a Listener to tell them of other nodes' commits.
	db.inboxes.on.Store(!db.dialect.notifies)

	if db.dialect == sqliteDialect {
		conn, err := openCounted(sqliteDSN(db.Path, db.SyncFull), &db.sent, true)
		if err != nil {
			return fail(err)
		}
		db.checkpoints = newCheckpointer(conn, db.Path, db.Logger)
	}
	db.wmu.Lock()
	db.stepped = sync.NewCond(&db.wmu)
	db.wmu.Unlock()
	return nil
}

// Close finishes the writes that were accepted, then closes the database.
func (db *DB) Close() error {
	if db.writer == nil {
		return nil
	}
	db.wmu.Lock()
	already := db.closed
	db.closed = true
	for db.leading {
		db.stepped.Wait() // the writes accepted run first
	}
	db.wmu.Unlock()
	if already {
		return nil
	}
	if db.dialect == sqliteDialect && db.wconn != nil {
		// A clean stop records the last event id given, so that the next
		// start goes on from it rather than from past the ids recorded
		// ahead; unless another writer recorded more meanwhile.
		if err := db.eventIDs.recordExact(db.wconn.conn); err != nil {
			db.Logger.Warn("record the last event id", "err", err)
		}
	}
	db.wstmts.close()
	db.rstmts.close()
	var errs []error
	if db.wconn != nil {
		errs = append(errs, db.wconn.close())
	}
	if db.checkpoints != nil {
		errs = append(errs, db.checkpoints.stop())
	}
	if db.reader != nil {
		errs = append(errs, db.reader.Close())
	}
	errs = append(errs, db.writer.Close())
	db.unlockServing() // once the file is closed
	return errors.Join(errs...)
}

// unlockServing lets another server serve the file.
func (db *DB) unlockServing() {
	if db.serving != nil {
		db.serving.Close()
		db.serving = nil
	}
}

// Epoch returns the random number that identifies this database in cursors.
func (db *DB) Epoch() uint64 { return db.epoch }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.reader.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// migrate applies the embedded migrations that the database lacks, each in
// its own transaction, and refuses a schema newer than this binary.
func (db *DB) migrate() error {
	ctx := upkeepCtx
	if err := db.createMigrationsTable(ctx); err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/"+db.dialect.name+"/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	type migration struct {
		version int
		name    string
	}
	var list []migration
	for _, name := range names {
		base := filepath.Base(name)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", base)
		}
		if db.maxVersion > 0 && v > db.maxVersion {
			break
		}
		list = append(list, migration{v, name})
	}
	latest := 0
	if len(list) > 0 {
		latest = list[len(list)-1].version
	}
	var current int
	if err := db.writer.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > latest {
		return fmt.Errorf("database %s has schema version %d, newer than this Tidings (%d): run a newer Tidings", Redact(db.Path), current, latest)
	}
	for _, m := range list {
		if err := db.applyMigration(ctx, m.version, m.name); err != nil {
			return err
		}
	}
	return db.loadEpoch(ctx)
}

// createMigrationsTable creates the table of applied migrations if it is
// missing, under the migrations' lock: two PostgreSQL sessions creating it at
// once would otherwise collide in the catalog.
func (db *DB) createMigrationsTable(ctx context.Context) error {
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if q := db.dialect.lockMigrations; q != "" {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, db.dialect.migrationsTable); err != nil {
		return err
	}
	return tx.Commit()
}

// foreignKeysOff is the first line of a migration that recreates tables
// other tables refer to. Foreign keys must be off while it runs, or dropping
// the old table would cascade into its children, and SQLite ignores that
// pragma inside a transaction, so it is set around the migration's.
const foreignKeysOff = "-- tidings: foreign_keys off"

func (db *DB) applyMigration(ctx context.Context, version int, name string) error {
	body, err := migrationFS.ReadFile(name)
	if err != nil {
		return err
	}
	// The directive is SQLite's: PostgreSQL changes tables in place.
	fkOff := db.dialect == sqliteDialect && strings.HasPrefix(string(body), foreignKeysOff+"\n")
	// One connection for the pragma and the transaction: the pool could
	// otherwise run them on different ones.
	conn, err := db.writer.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if !fkOff {
		return db.runMigration(ctx, conn, version, name, body, false)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	err = db.runMigration(ctx, conn, version, name, body, true)
	if _, onErr := conn.ExecContext(ctx, `PRAGMA foreign_keys = ON`); onErr != nil {
		// The connection must not go on without foreign keys.
		conn.Raw(func(any) error { return driver.ErrBadConn })
		return errors.Join(err, fmt.Errorf("migration %s: turn foreign keys on again: %w", filepath.Base(name), onErr))
	}
	return err
}

// runMigration applies one migration in a transaction of conn, unless it
// was applied meanwhile. With checkKeys, the foreign keys are checked
// before the commit, since they were not enforced while it ran.
func (db *DB) runMigration(ctx context.Context, conn *sql.Conn, version int, name string, body []byte, checkKeys bool) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if q := db.dialect.lockMigrations; q != "" {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	// Checked inside the write transaction, under the lock: another
	// process may have migrated meanwhile.
	var n int
	if err := tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("migration %s: %w", filepath.Base(name), err)
	}
	if checkKeys {
		if err := foreignKeyCheck(ctx, tx); err != nil {
			return fmt.Errorf("migration %s: %w", filepath.Base(name), err)
		}
	}
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), version, ms(time.Now())); err != nil {
		return err
	}
	return tx.Commit()
}

// foreignKeyCheck fails if any row refers to a row that does not exist.
func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var broken []string
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			return err
		}
		if len(broken) < 10 {
			broken = append(broken, fmt.Sprintf("%s row %d refers to a missing %s", table, rowid.Int64, parent))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(broken) > 0 {
		return fmt.Errorf("foreign key check failed: %s", strings.Join(broken, "; "))
	}
	return nil
}

// loadEpoch reads the database's epoch, drawing it on first use.
func (db *DB) loadEpoch(ctx context.Context) error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	fresh := binary.BigEndian.Uint64(b[:]) | 1 // never zero
	if _, err := db.writer.ExecContext(ctx, db.dialect.rebind(`INSERT INTO meta (key, value) VALUES ('epoch', ?) ON CONFLICT (key) DO NOTHING`), strconv.FormatUint(fresh, 10)); err != nil {
		return fmt.Errorf("store epoch: %w", err)
	}
	var s string
	if err := db.writer.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'epoch'`).Scan(&s); err != nil {
		return fmt.Errorf("read epoch: %w", err)
	}
	epoch, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("read epoch: %w", err)
	}
	db.epoch = epoch
	return nil
}

// Tx is a write transaction shared by the jobs of one group commit. Each job
// sees the same now.
type Tx struct {
	tx  txConn
	db  *DB
	ctx context.Context
	now time.Time

	ended      []int64
	published  []int64  // plain users who published, for the nodes' publish limits
	failures   []string // failed logins to tell the other nodes of
	scheduled  bool
	deliveries []delivery              // numbered when the batch commits
	events     map[int64]*eventMessage // inserted by this job, for the inboxes
	newEvents  []any                   // rows of events, inserted when the batch commits
	swept      bool                    // the janitor deleted expired messages
	batch      *batchStmts
}

// batchStmts holds the statements a batch had to prepare inside its
// transaction: the writer's only connection is busy then, so the process-wide
// cache cannot prepare them. They are prepared into the cache after the batch.
type batchStmts struct {
	local   map[string]*sql.Stmt
	missing []string
	ids     *eventIDs // nil: each event is inserted at once
	// recipients are the lookups of recipientByLogin, shared by the
	// sharing jobs that run one after another in a try, and kept for the
	// next batch once this one commits (see keptRecipients).
	recipients map[recipientKey]recipient
	// heads are, on SQLite, the users' inbox heads as this try leaves them,
	// kept for the next batch once it commits.
	heads map[int64]int64
}

// maxKeptRecipients bounds the lookups of recipients the writer keeps.
const maxKeptRecipients = 10000

// keptRecipients returns what a committed batch's lookups of recipients
// leave for the next batch, the try having begun when the Listener had
// heard seen (PostgreSQL; nothing on SQLite). On SQLite the store's
// batches make every change to users, their settings and their muted
// projects, each in a job that does not share (it forgets the lookups as
// it runs): until one commits, the lookups hold, and a lone publish, the
// common case, reads no recipient at all. Another process's commit
// (tidings user add, a second server on the file) ends them too: the next
// batch finds SQLite's data version changed. On PostgreSQL other nodes
// make such changes at any time, and tell of each in their commit's notice
// (see notice.people): the lookups are kept while the Listener listens,
// and only if nothing of the kind was heard, and listening did not start
// again, since the try began. A change on another node is then heeded
// once its notice arrives, moments after its commit, as the end of a
// credential is. A login found unknown is not kept, so that a publish to
// it looks again.
func (db *DB) keptRecipients(looked map[recipientKey]recipient, seen peopleSeen) map[recipientKey]recipient {
	if len(looked) > maxKeptRecipients {
		return nil
	}
	if db.dialect == postgresDialect {
		if now, heard := db.people(); !heard || now != seen {
			return nil
		}
		db.keptPeople = seen
	}
	maps.DeleteFunc(looked, func(_ recipientKey, r recipient) bool { return !r.known })
	return looked
}

// peopleSeen is what a PostgreSQL node has heard of the changes to people
// other nodes made: how often its Listener began to listen, and how many
// of its notices told of such a change since the process started.
type peopleSeen struct{ listens, changes uint64 }

// people returns what the node has heard of other nodes' changes to
// people, and whether it hears them all: whether its Listener listens.
func (db *DB) people() (peopleSeen, bool) {
	heard, listens := db.AccessEnds()
	return peopleSeen{listens, db.peopleChanged.Load()}, heard
}

func (tx *Tx) stmt(query string, write bool) (*sql.Stmt, error) {
	lazy, _ := tx.tx.(*pgLazyTx)
	if lazy != nil && (write || !lazy.outside(query)) {
		if err := lazy.begin(); err != nil {
			return nil, err
		}
	}
	if s, ok := tx.db.wstmts.lookup(query); ok {
		return tx.tx.StmtContext(tx.ctx, s), nil
	}
	if tx.db.wconn != nil {
		// The cache prepares on the connection the transaction is on.
		return tx.db.wstmts.get(query)
	}
	if s, ok := tx.batch.local[query]; ok {
		return s, nil
	}
	var s *sql.Stmt
	var err error
	if lazy != nil {
		s, err = lazy.prepare(tx.ctx, tx.db.dialect.rebind(query))
	} else {
		s, err = tx.tx.(*sql.Tx).PrepareContext(tx.ctx, tx.db.dialect.rebind(query))
	}
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	if tx.batch.local == nil {
		tx.batch.local = make(map[string]*sql.Stmt)
	}
	tx.batch.local[query] = s
	tx.batch.missing = append(tx.batch.missing, query)
	return s, nil
}

// exec runs a statement of the transaction, prepared once per process.
func (tx *Tx) exec(query string, args ...any) (sql.Result, error) {
	s, err := tx.stmt(query, true)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(tx.ctx, args...)
}

func (tx *Tx) query(query string, args ...any) (*sql.Rows, error) {
	s, err := tx.stmt(query, false)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(tx.ctx, args...)
}

func (tx *Tx) queryRow(query string, args ...any) *sql.Row {
	s, err := tx.stmt(query, false)
	if err != nil {
		return tx.tx.QueryRowContext(tx.ctx, tx.db.dialect.rebind(query), args...) // reports the prepare error on Scan
	}
	return s.QueryRowContext(tx.ctx, args...)
}

// queryDynamic runs a statement whose text varies (IN lists); it is not cached.
func (tx *Tx) queryDynamic(query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(tx.ctx, tx.db.dialect.rebind(query), args...)
}

// reads is the write transaction seen as a queryer, for the loaders that
// read inside reads and writes alike.
func (tx *Tx) reads() queryer { return dialectTx{tx.tx, tx.db.dialect} }

// dialectTx is a transaction whose queries are written with ? marks.
type dialectTx struct {
	tx txConn
	d  *dialect
}

func (t dialectTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.d.rebind(query), args...)
}

func (t dialectTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.d.rebind(query), args...)
}

// endAccess records users some of whose sessions or tokens the transaction
// ends: once it commits, their held polls and streams check theirs again.
func (tx *Tx) endAccess(userIDs ...int64) { tx.ended = append(tx.ended, userIDs...) }

// job is one write waiting for the writer.
type job struct {
	ctx context.Context
	fn  func(*Tx) error
	// shares: fn changes no user, setting or membership, so the lookups
	// of recipients it makes may be shared with the batch's other such
	// jobs (see recipientByLogin).
	shares bool
	// upkeep: fn is the store's own upkeep (see statementCounts), as its
	// caller's context says; read once, when the write is submitted.
	upkeep bool
	err    error
	stored bool          // its committed run stored messages
	done   chan struct{} // closed once it ran, or once its caller leads (see submit)
	leads  bool          // its caller runs the next batch, with this write in it
}

// write runs fn in the writer's transaction and returns after the commit.
// fn must not block on anything but the database: it runs in the one batch
// being written, together with other callers' writes. fn may run more than
// once, when the database asks for a batch to be run again: it must leave
// nothing but the database behind that a second run would not redo.
func (db *DB) write(ctx context.Context, fn func(*Tx) error) error {
	return db.submit(&job{ctx: ctx, fn: fn, upkeep: isUpkeep(ctx), done: make(chan struct{})})
}

// writeSharing is write for a fn that changes no user, setting or
// membership.
func (db *DB) writeSharing(ctx context.Context, fn func(*Tx) error) error {
	return db.submit(&job{ctx: ctx, fn: fn, shares: true, upkeep: isUpkeep(ctx), done: make(chan struct{})})
}

// submit runs a write in the next batch and returns once it ran. There is
// no writer goroutine: the caller whose write finds nobody writing runs
// the batch itself (it leads), and when the batch is done, it hands the
// lead to the first write that queued meanwhile, whose caller it wakes
// with its turn instead of an answer. A lone write is run by its own
// caller, with no goroutine woken and no switch to another and back; under
// load a caller is woken once, as before: to lead, or with its answer.
// Each caller leads one batch at most, so none waits long for its own
// answer.
func (db *DB) submit(j *job) error {
	submitted := time.Now()
	db.wmu.Lock()
	if db.closed || db.stepped == nil {
		db.wmu.Unlock()
		return tidings.Errorf(tidings.EUNAVAILABLE, "The server is shutting down.")
	}
	db.queue = append(db.queue, j)
	lead := !db.leading
	db.leading = true
	db.wmu.Unlock()
	if !lead {
		<-j.done // once accepted, a write runs to its end: a caller never guesses
		lead = j.leads
	}
	if lead {
		db.lead(j)
	}
	if j.err == nil && j.stored {
		db.metrics().PublishCommitted(time.Since(submitted))
	}
	return j.err
}

// gatherYields is how often a leader lets the goroutines that are ready to
// run go first before it takes its batch: requests that were read together
// submit their writes, and share the commit. With nothing else to run, a
// yield returns at once.
const gatherYields = 2

// lead runs the next batch, the first write of which is own, then hands
// the lead on or steps down.
func (db *DB) lead(own *job) {
	defer func() {
		if r := recover(); r != nil {
			// The batch broke off with the lead taken: every write would
			// wait for ever. As a writer goroutine's panic would, this one
			// ends the process.
			go panic(r)
			select {}
		}
	}()
	for range gatherYields {
		runtime.Gosched()
	}
	db.wmu.Lock()
	n := min(len(db.queue), maxWriteBatch)
	db.batch = append(db.batch[:0], db.queue[:n]...)
	rest := copy(db.queue, db.queue[n:])
	clear(db.queue[rest:])
	db.queue = db.queue[:rest]
	db.wmu.Unlock()
	var stmts batchStmts
	db.runBatch(db.batch, own, &stmts)
	clear(db.batch)
	for _, q := range stmts.missing { // the connection is free again
		if _, err := db.wstmts.get(q); err != nil {
			db.Logger.Warn("prepare statement", "err", err)
		}
	}
	db.wmu.Lock()
	if len(db.queue) == 0 {
		db.leading = false
		db.stepped.Broadcast()
		db.wmu.Unlock()
	} else {
		next := db.queue[0]
		db.wmu.Unlock()
		next.leads = true
		close(next.done)
	}
}

// maxBatchTries bounds how often a batch runs when the database keeps
// asking for it to run again.
const maxBatchTries = 8

// runBatch commits the jobs of one batch in one transaction, each in a
// savepoint, then answers them (all but own, whose caller runs the batch)
// and wakes the users they stored messages for.
// When the database reports a serialization failure or a deadlock (another
// node's transaction took the same rows in another order), the whole batch
// is rolled back and run again: every job sees the database as it is then.
func (db *DB) runBatch(batch []*job, own *job, stmts *batchStmts) {
	var err error
	var wake func()
	// Without savepoints first, unless the last batch had a failing write:
	// a savepoint costs two statements a write, and writes seldom fail.
	guarded := db.guarded.Load() && len(batch) > 1
	for try := 1; ; try++ {
		var retry, failed bool
		retry, failed, wake, err = db.tryBatch(batch, stmts, guarded)
		if wake == nil {
			db.eventIDs.forget() // nothing of this try was committed
		}
		if failed {
			// A write failed in a batch without savepoints: the batch was
			// rolled back, and runs again with them.
			guarded = true
			db.guarded.Store(true)
			try--
			continue
		}
		if !retry {
			break
		}
		if try == maxBatchTries {
			db.Logger.Warn("the database asked to run a batch again too often", "tries", try, "err", err)
			err = fmt.Errorf("%w: %w", errUnavailable, err)
			for _, j := range batch {
				j.err = nil
			}
			break
		}
		// The other transaction gets a moment to finish; the jitter keeps
		// two nodes from meeting again in step.
		time.Sleep(time.Duration(try) * time.Duration(1+mrand.IntN(5)) * time.Millisecond)
	}
	if guarded && !slices.ContainsFunc(batch, func(j *job) bool {
		return j.err != nil && !errors.Is(j.err, context.Canceled) && !errors.Is(j.err, context.DeadlineExceeded)
	}) {
		db.guarded.Store(false)
	}
	for _, j := range batch {
		if j.err == nil {
			j.err = err
		}
		if j != own { // its caller runs this
			close(j.done)
		}
	}
	// The waiters are woken last (their credentials' ends were told before
	// the answers). The leader does not yield to the deliveries it woke:
	// letting a fan-out's thousands run first held up the next batch, and
	// took a third off its deliveries a second.
	if wake != nil {
		wake()
	}
}

// tryBatch runs the jobs of a batch in one transaction and commits it. It
// leaves each job's own error in j.err and returns the error that stopped
// the whole batch, if any, and whether the batch should run again. Guarded,
// each job runs in a savepoint, so that a failing one is undone alone;
// unguarded, a failing job rolls the whole batch back and tryBatch reports
// failed, for the batch to run again guarded.
func (db *DB) tryBatch(batch []*job, stmts *batchStmts, guarded bool) (retry, failed bool, wake func(), err error) {
	// The batch's statements do not end with a caller's context: once
	// begun, a write runs to its end. They count as upkeep when every
	// write of the batch is (see statementCounts), each write's own as its
	// caller's.
	ctx := context.Background()
	if !slices.ContainsFunc(batch, func(j *job) bool { return !j.upkeep }) {
		ctx = upkeepCtx
	}
	began := time.Now()
	stmts.local = nil // a try's statements end with its transaction
	stmts.ids = db.eventIDs.forBatch(db, len(batch))
	stmts.recipients, db.recipients = db.recipients, nil // kept again only if this try commits
	var seen peopleSeen
	if db.dialect == postgresDialect {
		var heard bool
		if seen, heard = db.people(); !heard || seen != db.keptPeople {
			stmts.recipients = nil // another node may have changed someone since they were looked up
		}
	}
	stmts.heads, db.heads = db.heads, nil
	for _, j := range batch {
		j.err, j.stored = nil, false
	}
	stop := func(sqlTx txConn, err error) (bool, bool, func(), error) {
		sqlTx.Rollback()
		err = db.translate(err)
		return errors.Is(err, errRetry), false, nil, err
	}
	forgets := db.inboxes.forgets.Load()
	// A batch of publishes alone, on PostgreSQL, begins its transaction
	// only if it writes before its last statement.
	lazy := db.dialect.notifies && (len(batch) == 1 || !guarded) && !slices.ContainsFunc(batch, func(j *job) bool { return !j.shares })
	sqlTx, err := db.beginWrite(ctx, lazy)
	if err != nil {
		return false, false, nil, db.translate(fmt.Errorf("begin: %w", err))
	}
	lazyTx, _ := sqlTx.(*pgLazyTx)
	now := db.Now().UTC().Truncate(time.Millisecond)
	if db.dialect != postgresDialect {
		// SQLite counts the changes to the file in its data version: one
		// since the last commit of this writer is another connection's,
		// another process's perhaps, and may have changed a recipient. The
		// write lock, taken at BEGIN, keeps the count still until this try
		// ends.
		version, err := db.wconn.dataVersion()
		if err != nil {
			return stop(sqlTx, fmt.Errorf("data version: %w", err))
		}
		if version != db.keptVersion {
			// Another connection committed: it may have given event ids,
			// or deleted the newest events.
			stmts.recipients, stmts.heads = nil, nil
			db.eventIDs.forget()
		}
	}
	single := len(batch) == 1
	var notify, ended, published []int64
	var failures []string
	var deliveries []delivery
	var events []any
	var commits []committed
	scheduled, swept, allSwept, people := false, false, true, false
	ran := 0
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.err = err
			continue
		}
		jctx := ctx
		if j.upkeep {
			jctx = upkeepCtx
		}
		tx := &Tx{tx: sqlTx, db: db, ctx: jctx, now: now, batch: stmts}
		if !j.shares {
			stmts.recipients = nil // what it changes, a lookup made before may not know
		}
		if guarded && !single {
			if _, err := sqlTx.ExecContext(ctx, "SAVEPOINT job"); err != nil {
				return stop(sqlTx, err)
			}
		}
		j.err = runJob(j.fn, tx)
		if lazyTx != nil && lazyTx.err != nil {
			return stop(sqlTx, fmt.Errorf("begin: %w", lazyTx.err)) // as if BEGIN had come first
		}
		if !j.shares {
			stmts.recipients = nil
		}
		if errors.Is(j.err, errRetry) {
			return stop(sqlTx, j.err)
		}
		if j.err != nil {
			if single {
				sqlTx.Rollback()
				return false, false, nil, nil
			}
			if !guarded {
				sqlTx.Rollback()
				return false, true, nil, nil
			}
			if err := rollbackTo(ctx, sqlTx); err != nil {
				return stop(sqlTx, err)
			}
			continue
		}
		if guarded && !single {
			if _, err := sqlTx.ExecContext(ctx, "RELEASE job"); err != nil {
				return stop(sqlTx, err)
			}
		}
		ran++
		people = people || !j.shares
		j.stored = len(tx.deliveries) > 0
		ended = append(ended, tx.ended...)
		published = append(published, tx.published...)
		failures = append(failures, tx.failures...)
		deliveries = append(deliveries, tx.deliveries...)
		events = append(events, tx.newEvents...)
		scheduled = scheduled || tx.scheduled
		swept = swept || tx.swept
		allSwept = allSwept && tx.swept
	}
	if ran == 0 {
		sqlTx.Rollback()
		return false, false, nil, nil
	}
	tx := &Tx{tx: sqlTx, db: db, ctx: ctx, now: now, batch: stmts}
	if db.dialect.notifies {
		// The notices are delivered by PostgreSQL at the commit, and only
		// if it commits.
		n := notice{node: db.Node, wake: deliveryUsers(deliveries), ended: ended, scheduled: scheduled, published: published, failures: failures, people: people}
		if lazyTx != nil {
			lazyTx.last = true
		}
		commits, err = tx.storeBatchOnPostgres(events, deliveries, n.payloads())
		if lazyTx.inDoubt(err) {
			// The statement was the batch's commit, and its answer was
			// lost, as a COMMIT's can be.
			return false, false, db.inDoubt(batch, n.wake, db.translate(fmt.Errorf("store the batch: %w", err))), nil
		}
	} else {
		commits, err = tx.storeBatch(events, deliveries)
	}
	if err != nil {
		if tidings.ErrorCode(db.translate(err)) == tidings.ECONFLICT {
			// Another writer took event ids this one counted on: the batch
			// runs again, counting from the database.
			sqlTx.Rollback()
			return true, false, nil, err
		}
		return stop(sqlTx, err)
	}
	for _, c := range commits {
		notify = append(notify, c.userID)
	}
	if err := sqlTx.Commit(); err != nil {
		err = db.translate(fmt.Errorf("commit: %w", err))
		if errors.Is(err, errRetry) {
			// The database refused the commit: the batch runs again.
			for _, c := range commits {
				db.inboxes.drop(c.userID)
			}
			return true, false, nil, err
		}
		// It may have committed all the same.
		return false, false, db.inDoubt(batch, notify, err), nil
	}
	stmts.ids.committed()
	if !allSwept {
		db.commits.Add(1) // the janitor's next round has something to look at
	}
	db.metrics().BatchCommitted(ran, time.Since(began))
	db.recipients = db.keptRecipients(stmts.recipients, seen)
	if db.dialect != postgresDialect {
		if len(stmts.heads) <= maxKeptRecipients {
			db.heads = stmts.heads
		}
		// The count as this commit left it, for the next batch to compare.
		version, verr := db.wconn.dataVersion()
		if verr != nil {
			version = -1 // the next batch looks everything up again
		}
		db.keptVersion = version
	}
	if db.checkpoints != nil {
		db.checkpoints.committed(db.wconn.pagesWritten())
	}
	// The inboxes learn of the commit before anyone is woken to read it.
	if swept {
		db.inboxes.swept.Store(max(db.inboxes.swept.Load(), ms(now)))
	}
	if len(ended) > 0 {
		db.inboxes.drop(ended...)
	}
	if len(commits) > 0 {
		db.inboxes.add(db.epoch, commits, db.inboxes.forgets.Load() == forgets, time.Now())
	}
	// Ended credentials before anyone is answered: the client told that
	// its token is revoked, or its logout done, must find the credential
	// refused on its very next request, cached or not. And before the
	// waiters are woken: one woken for a message committed after its
	// session ended already has the news.
	if len(ended) > 0 && db.Notifier != nil {
		db.Notifier.NotifyAccess(ended...)
	}
	wake = func() {
		if len(notify) > 0 && db.Notifier != nil {
			db.Notifier.Notify(notify...)
		}
		if scheduled {
			select {
			case db.scheduled <- struct{}{}:
			default:
			}
		}
	}
	return false, false, wake, nil
}

// inDoubt answers a batch's writes with err after a commit that may or may
// not have happened (its answer was lost). What the inboxes in memory hold
// of the users it stored messages for is in doubt: they are dropped, and
// the users woken, so that their waiting clients read from the database
// whatever did commit. It returns the wake-up, for after the answers.
func (db *DB) inDoubt(batch []*job, users []int64, err error) (wake func()) {
	db.inboxes.drop(users...)
	db.eventIDs.forget()
	for _, j := range batch {
		if j.err == nil {
			j.err = err
		}
	}
	return func() {
		if len(users) > 0 && db.Notifier != nil {
			db.Notifier.Notify(users...)
		}
	}
}

// beginWrite begins a batch's transaction: on SQLite on the writer's own
// connection, on PostgreSQL through database/sql, at its first write if
// lazy.
func (db *DB) beginWrite(ctx context.Context, lazy bool) (txConn, error) {
	if db.wconn != nil {
		return db.wconn.beginTx(ctx)
	}
	if lazy {
		return &pgLazyTx{db: db.writer, ctx: ctx}, nil
	}
	return db.writer.BeginTx(ctx, nil)
}

func rollbackTo(ctx context.Context, tx txConn) error {
	if _, err := tx.ExecContext(ctx, "ROLLBACK TO job"); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "RELEASE job")
	return err
}

func runJob(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 4096)
			buf = buf[:runtime.Stack(buf, false)]
			err = fmt.Errorf("panic in write: %v\n%s", r, buf)
		}
	}()
	err = fn(tx)
	if err != nil {
		err = tx.db.translate(err)
	}
	return err
}

// readTx runs fn in a read transaction, so that its queries see one snapshot.
func (db *DB) readTx(ctx context.Context, fn func(queryer) error) error {
	tx, err := db.reader.BeginTx(ctx, db.dialect.readOptions)
	if err != nil {
		return db.translate(err)
	}
	defer tx.Rollback()
	if err := fn(dialectTx{tx, db.dialect}); err != nil {
		return db.translate(err)
	}
	return tx.Commit()
}

// rstmt returns a prepared statement of the reader pool.
func (db *DB) rstmt(query string) (*sql.Stmt, error) { return db.rstmts.get(query) }

// readQuery runs a query of varying text on the reader pool.
func (db *DB) readQuery(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.reader.QueryContext(ctx, db.dialect.rebind(query), args...)
}

// stmtCache prepares each statement once per pool.
type stmtCache struct {
	prepare func(query string) (*sql.Stmt, error)
	dialect *dialect
	m       sync.Map // string → *sql.Stmt
	mu      sync.Mutex
}

func (c *stmtCache) lookup(query string) (*sql.Stmt, bool) {
	if s, ok := c.m.Load(query); ok {
		return s.(*sql.Stmt), true
	}
	return nil, false
}

func (c *stmtCache) get(query string) (*sql.Stmt, error) {
	if s, ok := c.lookup(query); ok {
		return s, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := c.prepare(c.dialect.rebind(query))
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	c.m.Store(query, s)
	return s, nil
}

func (c *stmtCache) close() {
	c.m.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		c.m.Delete(k)
		return true
	})
}

// ms and fromMS convert times to and from the stored Unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// placeholders returns "?, ?, …" with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
