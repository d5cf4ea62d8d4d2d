package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// copyTables are the tables of the schema in foreign-key order: every table
// comes after the tables it refers to. key orders the rows read, so that a
// copy reads each table along its primary key; where, if set, picks the
// rows copied. A table the schema gains must be added here: Copy refuses a
// database with a table it does not know.
var copyTables = []struct{ name, key, where string }{
	// event_ids is SQLite's own (see eventIDs): the target's events take
	// their ids from its sequence, started past it by copySequences.
	{"meta", "key", "key <> 'event_ids'"},
	{"users", "id", ""},
	{"inboxes", "user_id", ""},
	{"sessions", "hash", ""},
	{"tokens", "id", ""},
	{"projects", "id", ""},
	{"members", "project_id, user_id", ""},
	{"muted_projects", "user_id, project_id", ""},
	{"events", "id", ""},
	{"messages", "user_id, seq", ""},
	{"pending", "id", ""},
	{"todos", "id", ""},
	{"notes", "id", ""},
	{"appointments", "id", ""},
	{"appointment_participants", "appointment_id, user_id", ""},
	{"reminders", "appointment_id, user_id", ""},
}

// copyBatch bounds the rows a copy holds in memory and sends in one INSERT;
// PostgreSQL takes at most 65535 arguments a statement.
const copyBatch = 500

// TableCount is how many rows of one table a copy wrote.
type TableCount struct {
	Table string
	Rows  int64
}

// CopyStats is what Copy wrote, table by table in the order it copied them.
type CopyStats struct {
	Tables []TableCount
}

// Rows returns how many rows of table were copied.
func (s CopyStats) Rows(table string) int64 {
	for _, t := range s.Tables {
		if t.Table == table {
			return t.Rows
		}
	}
	return 0
}

// Copy copies the whole SQLite database of from into the empty PostgreSQL
// database of to: every row, with its id, and the epoch, so that clients'
// cursors stay valid; and each id sequence of to starts past the largest id
// from ever gave, so that no id is given twice (SPEC §7). Both stores must
// be open, which migrates them; they must be at the same schema version.
//
// from is read in one read transaction, so it may be live: the copy is one
// snapshot of it, and what it stores after that is not copied. to is written
// in one transaction, so a copy that fails leaves it as it was. Copy
// refuses a target that holds any row but the epoch its own Open drew, and
// to must serve no clients until Copy returns: its epoch changes.
func Copy(ctx context.Context, from, to *DB) (CopyStats, error) {
	var stats CopyStats
	if from.dialect != sqliteDialect {
		return stats, fmt.Errorf("copy: the source %s is not a SQLite database", Redact(from.Path))
	}
	if to.dialect != postgresDialect {
		return stats, fmt.Errorf("copy: the target %s is not a PostgreSQL database", Redact(to.Path))
	}
	src, err := from.reader.BeginTx(ctx, from.dialect.readOptions)
	if err != nil {
		return stats, fmt.Errorf("copy: read %s: %w", Redact(from.Path), err)
	}
	defer src.Rollback()
	dst, err := to.writer.BeginTx(ctx, nil)
	if err != nil {
		return stats, fmt.Errorf("copy: write %s: %w", Redact(to.Path), err)
	}
	defer dst.Rollback()
	// The migrations' lock: a node that starts on the target meanwhile
	// waits, and then reads the epoch copied rather than the one replaced.
	if _, err := dst.ExecContext(ctx, postgresDialect.lockMigrations); err != nil {
		return stats, fmt.Errorf("copy: lock %s: %w", Redact(to.Path), err)
	}
	if err := checkCopy(ctx, src, dst, to); err != nil {
		return stats, err
	}
	// The epoch Open drew for the empty target gives way to the source's.
	if _, err := dst.ExecContext(ctx, `DELETE FROM meta`); err != nil {
		return stats, fmt.Errorf("copy: %w", err)
	}
	cols, err := targetColumns(ctx, dst)
	if err != nil {
		return stats, err
	}
	for _, t := range copyTables {
		n, err := copyTable(ctx, src, dst, t.name, t.key, t.where, cols[t.name])
		if err != nil {
			return stats, fmt.Errorf("copy table %s: %w", t.name, err)
		}
		stats.Tables = append(stats.Tables, TableCount{t.name, n})
	}
	if err := copySequences(ctx, src, dst, cols); err != nil {
		return stats, err
	}
	var epoch string
	if err := dst.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'epoch'`).Scan(&epoch); err != nil {
		return stats, fmt.Errorf("copy: read the copied epoch: %w", err)
	}
	e, err := strconv.ParseUint(epoch, 10, 64)
	if err != nil || e != from.epoch {
		return stats, fmt.Errorf("copy: the copied epoch %q is not the source's %d", epoch, from.epoch)
	}
	if err := dst.Commit(); err != nil {
		return stats, fmt.Errorf("copy: commit: %w", err)
	}
	src.Rollback()
	to.epoch = from.epoch
	to.ScheduleChanged() // pending messages and reminders came with the copy
	return stats, nil
}

// checkCopy refuses a copy between databases at different schema versions
// or with tables Copy does not know, and a target that is not empty.
func checkCopy(ctx context.Context, src, dst *sql.Tx, to *DB) error {
	var sv, dv int
	if err := src.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&sv); err != nil {
		return fmt.Errorf("copy: read the source's schema version: %w", err)
	}
	if err := dst.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&dv); err != nil {
		return fmt.Errorf("copy: read the target's schema version: %w", err)
	}
	if sv != dv {
		return fmt.Errorf("copy: the source is at schema version %d and the target at %d: open both with the same Tidings first", sv, dv)
	}
	known := map[string]bool{"schema_migrations": true}
	for _, t := range copyTables {
		known[t.name] = true
	}
	for _, side := range []struct {
		name  string
		tx    *sql.Tx
		query string
	}{
		{"source", src, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`},
		{"target", dst, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`},
	} {
		names, err := queryStrings(ctx, side.tx, side.query)
		if err != nil {
			return fmt.Errorf("copy: list the %s's tables: %w", side.name, err)
		}
		for _, n := range names {
			if !known[n] {
				return fmt.Errorf("copy: the %s has a table %s that this Tidings does not know how to copy", side.name, n)
			}
		}
	}

	// The target's Open stored an epoch, and nothing else may be there: a
	// different epoch means another copy or node wrote it since.
	keys, err := queryStrings(ctx, dst, `SELECT key || '=' || value FROM meta ORDER BY key`)
	if err != nil {
		return fmt.Errorf("copy: read the target's meta: %w", err)
	}
	for _, kv := range keys {
		if kv != "epoch="+strconv.FormatUint(to.epoch, 10) {
			return fmt.Errorf("copy: the target %s is not empty: its meta table holds %s", Redact(to.Path), kv)
		}
	}
	var there []string
	for _, t := range copyTables[1:] {
		var n int64
		if err := dst.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t.name).Scan(&n); err != nil {
			return fmt.Errorf("copy: count the target's %s: %w", t.name, err)
		}
		if n > 0 {
			there = append(there, fmt.Sprintf("%d %s", n, t.name))
		}
	}
	if len(there) > 0 {
		return fmt.Errorf("copy: the target %s is not empty: it holds %s; copy only into a new database", Redact(to.Path), strings.Join(there, ", "))
	}
	return nil
}

func queryStrings(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// column is a column of the target, by PostgreSQL's types: they say what a
// SQLite value becomes.
type column struct {
	name     string
	dataType string
	identity bool
}

// targetColumns reads the target's columns, table by table, in their order.
func targetColumns(ctx context.Context, dst *sql.Tx) (map[string][]column, error) {
	rows, err := dst.QueryContext(ctx, `SELECT table_name, column_name, data_type, is_identity
		FROM information_schema.columns WHERE table_schema = current_schema()
		ORDER BY table_name, ordinal_position`)
	if err != nil {
		return nil, fmt.Errorf("copy: read the target's columns: %w", err)
	}
	defer rows.Close()
	out := map[string][]column{}
	for rows.Next() {
		var table, identity string
		var c column
		if err := rows.Scan(&table, &c.name, &c.dataType, &identity); err != nil {
			return nil, err
		}
		c.identity = identity == "YES"
		out[table] = append(out[table], c)
	}
	return out, rows.Err()
}

// copyTable copies one table's rows from src to dst, copyBatch rows at a
// time, and returns how many it copied.
func copyTable(ctx context.Context, src, dst *sql.Tx, table, key, where string, cols []column) (int64, error) {
	if len(cols) == 0 {
		return 0, fmt.Errorf("the target has no such table")
	}
	have, err := queryStrings(ctx, src, `SELECT name FROM pragma_table_info(?) ORDER BY name`, table)
	if err != nil {
		return 0, fmt.Errorf("read the source's columns: %w", err)
	}
	var want []string
	identity := false
	for _, c := range cols {
		want = append(want, c.name)
		identity = identity || c.identity
	}
	names := strings.Join(want, ", ")
	slices.Sort(want)
	if !slices.Equal(have, want) {
		return 0, fmt.Errorf("the source's columns (%s) are not the target's (%s)", strings.Join(have, ", "), strings.Join(want, ", "))
	}

	query := `SELECT ` + names + ` FROM ` + table
	if where != "" {
		query += ` WHERE ` + where
	}
	rows, err := src.QueryContext(ctx, query+` ORDER BY `+key)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	insert := `INSERT INTO ` + table + ` (` + names + `)`
	if identity {
		insert += ` OVERRIDING SYSTEM VALUE`
	}
	insert += ` VALUES `
	tuple := `(` + placeholders(len(cols)) + `)`
	batch := max(1, min(copyBatch, 65535/len(cols)))
	args := make([]any, 0, batch*len(cols))
	var copied int64
	flush := func() error {
		n := len(args) / len(cols)
		if n == 0 {
			return nil
		}
		q := insert + strings.TrimSuffix(strings.Repeat(tuple+", ", n), ", ")
		if _, err := dst.ExecContext(ctx, numberMarks(q), args...); err != nil {
			return err
		}
		copied += int64(n)
		args = args[:0]
		return nil
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return copied, err
		}
		for i, c := range cols {
			v, err := convert(vals[i], c.dataType)
			if err != nil {
				return copied, fmt.Errorf("column %s: %w", c.name, err)
			}
			args = append(args, v)
		}
		if len(args) == batch*len(cols) {
			if err := flush(); err != nil {
				return copied, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return copied, err
	}
	return copied, flush()
}

// convert turns a value as SQLite stores it into one for a PostgreSQL
// column of dataType: SQLite keeps booleans as 0 or 1, and may hand back
// text as bytes or bytes as text.
func convert(v any, dataType string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch dataType {
	case "boolean":
		switch v {
		case int64(0):
			return false, nil
		case int64(1):
			return true, nil
		}
		return nil, fmt.Errorf("%v (%T) is not a boolean 0 or 1", v, v)
	case "bytea":
		switch b := v.(type) {
		case []byte:
			return b, nil
		case string:
			return []byte(b), nil
		}
	case "text":
		switch s := v.(type) {
		case string:
			return s, nil
		case []byte:
			return string(s), nil
		}
	case "bigint", "integer", "smallint":
		if i, ok := v.(int64); ok {
			return i, nil
		}
	}
	return nil, fmt.Errorf("%v (%T) does not fit PostgreSQL's %s", v, v, dataType)
}

// copySequences starts each identity sequence of the target past the
// largest id the source ever gave: SQLite's sqlite_sequence remembers ids
// of rows deleted since, which MAX(id) does not, and for events (schema 4)
// meta's event_ids does. A target sequence that is further already stays
// where it is.
func copySequences(ctx context.Context, src, dst *sql.Tx, cols map[string][]column) error {
	for _, t := range copyTables {
		for _, c := range cols[t.name] {
			if !c.identity {
				continue
			}
			var last int64
			if err := src.QueryRowContext(ctx, `SELECT MAX(COALESCE((SELECT MAX(`+c.name+`) FROM `+t.name+`), 0),
				COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0),
				CASE WHEN ? = 'events' THEN COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'event_ids'), 0) ELSE 0 END)`,
				t.name, t.name).Scan(&last); err != nil {
				return fmt.Errorf("copy: read the source's last %s id: %w", t.name, err)
			}
			var seq string
			if err := dst.QueryRowContext(ctx, `SELECT pg_get_serial_sequence($1, $2)`, t.name, c.name).Scan(&seq); err != nil {
				return fmt.Errorf("copy: find the sequence of %s: %w", t.name, err)
			}
			// seq is PostgreSQL's own quoted name of the sequence.
			var given int64
			if err := dst.QueryRowContext(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM `+seq).Scan(&given); err != nil {
				return fmt.Errorf("copy: read the sequence of %s: %w", t.name, err)
			}
			if last <= given {
				continue
			}
			if _, err := dst.ExecContext(ctx, `SELECT setval($1, $2, true)`, seq, last); err != nil {
				return fmt.Errorf("copy: set the sequence of %s: %w", t.name, err)
			}
		}
	}
	return nil
}
