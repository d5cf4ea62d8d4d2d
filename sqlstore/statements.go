package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync/atomic"
)

// statementCounts counts the statements the store sends to its database,
// apart by whom they are for: clients (requests, and the writes and reads
// they make) or upkeep (the janitor, the scheduler, checkpoints, opening
// and closing the store). What an idle client costs the database is read
// off the first: nothing a server does for itself counts in it.
type statementCounts struct {
	clients, upkeep atomic.Int64
}

func (c *statementCounts) add(ctx context.Context) {
	if isUpkeep(ctx) {
		c.upkeep.Add(1)
	} else {
		c.clients.Add(1)
	}
}

type upkeepKey struct{}

// upkeepCtx is a background context whose statements count as upkeep.
var upkeepCtx = withUpkeep(context.Background())

// withUpkeep marks ctx's statements as the store's own upkeep.
func withUpkeep(ctx context.Context) context.Context {
	if isUpkeep(ctx) {
		return ctx
	}
	return context.WithValue(ctx, upkeepKey{}, true)
}

func isUpkeep(ctx context.Context) bool { return ctx.Value(upkeepKey{}) != nil }

// countingConnector opens SQLite connections whose statements are counted:
// SQLite runs in the process, so no driver hook sees them leave. The
// connections of an upkeep connector (the checkpointer's) count as
// upkeep whatever their context.
type countingConnector struct {
	driver driver.Driver
	dsn    string
	counts *statementCounts
	upkeep bool
}

// openCounted opens a pool of SQLite connections to dsn that count their
// statements in counts.
func openCounted(dsn string, counts *statementCounts, upkeep bool) (*sql.DB, error) {
	probe, err := sql.Open("sqlite", dsn) // only for the driver: it opens no connection
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	probe.Close()
	return sql.OpenDB(countingConnector{driver: drv, dsn: dsn, counts: counts, upkeep: upkeep}), nil
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dc, err := c.driver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{conn: dc, counts: c.counts, upkeep: c.upkeep}, nil
}

func (c countingConnector) Driver() driver.Driver { return c.driver }

// countingConn is a driver connection that counts each statement it runs,
// prepared or not, and each BEGIN, COMMIT and ROLLBACK, as PostgreSQL's
// counter (pgx's tracer) does. It offers what database/sql asks of a
// connection; the store reaches SQLite's own methods through unwrap.
type countingConn struct {
	conn   driver.Conn
	counts *statementCounts
	upkeep bool
}

// unwrap returns the driver's own connection of dc, which database/sql's
// Conn.Raw hands out.
func unwrap(dc any) any {
	if c, ok := dc.(*countingConn); ok {
		return c.conn
	}
	return dc
}

func (c *countingConn) count(ctx context.Context) {
	if c.upkeep {
		ctx = upkeepCtx
	}
	c.counts.add(ctx)
}

func (c *countingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var s driver.Stmt
	var err error
	if p, ok := c.conn.(driver.ConnPrepareContext); ok {
		s, err = p.PrepareContext(ctx, query)
	} else {
		s, err = c.conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &countingStmt{stmt: s, conn: c}, nil
}

func (c *countingConn) Close() error { return c.conn.Close() }

func (c *countingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.count(ctx)
	var tx driver.Tx
	var err error
	if b, ok := c.conn.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else {
		tx, err = c.conn.Begin() //nolint:staticcheck // the driver offers no BeginTx
	}
	if err != nil {
		return nil, err
	}
	return countingTx{tx: tx, conn: c, ctx: ctx}, nil
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.count(ctx)
	return e.ExecContext(ctx, query, args)
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.count(ctx)
	return q.QueryContext(ctx, query, args)
}

func (c *countingConn) Ping(ctx context.Context) error {
	if p, ok := c.conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// countingTx counts its COMMIT or ROLLBACK as its BEGIN was counted.
type countingTx struct {
	tx   driver.Tx
	conn *countingConn
	ctx  context.Context
}

func (t countingTx) Commit() error {
	t.conn.count(t.ctx)
	return t.tx.Commit()
}

func (t countingTx) Rollback() error {
	t.conn.count(t.ctx)
	return t.tx.Rollback()
}

// countingStmt is a prepared statement that counts its runs.
type countingStmt struct {
	stmt driver.Stmt
	conn *countingConn
}

func (s *countingStmt) Close() error  { return s.stmt.Close() }
func (s *countingStmt) NumInput() int { return s.stmt.NumInput() }

func (s *countingStmt) Exec(args []driver.Value) (driver.Result, error) {
	s.conn.count(context.Background())
	return s.stmt.Exec(args) //nolint:staticcheck // what database/sql calls without StmtExecContext
}

func (s *countingStmt) Query(args []driver.Value) (driver.Rows, error) {
	s.conn.count(context.Background())
	return s.stmt.Query(args) //nolint:staticcheck // as Exec
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	e, ok := s.stmt.(driver.StmtExecContext)
	if !ok {
		return nil, errors.New("sqlstore: the SQLite driver's statement has no ExecContext")
	}
	s.conn.count(ctx)
	return e.ExecContext(ctx, args)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := s.stmt.(driver.StmtQueryContext)
	if !ok {
		return nil, errors.New("sqlstore: the SQLite driver's statement has no QueryContext")
	}
	s.conn.count(ctx)
	return q.QueryContext(ctx, args)
}
