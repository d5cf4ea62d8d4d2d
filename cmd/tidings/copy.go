package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/tidings/tidings/sqlstore"
)

// runCopy copies a SQLite database into an empty PostgreSQL one (SPEC §7).
func (m *Main) runCopy(ctx context.Context, args []string) error {
	fset := flagSet("tidings copy", m.Stderr)
	from := fset.String("from", "", "the SQLite file to copy, e.g. ./tidings-data/tidings.db (stop its server first: what it stores later is not copied)")
	to := fset.String("to", "", "the empty PostgreSQL database to copy into: postgres://user:password@host:5432/tidings")
	if err := m.parseFlags(fset, args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return usagef("copy takes no arguments, got %q", fset.Arg(0))
	}
	switch {
	case *from == "":
		return usagef("copy needs --from, the SQLite file to copy")
	case strings.Contains(*from, "://"):
		return usagef("--from %s is not a SQLite file path: copy reads a SQLite database", redactURL(*from))
	case *to == "":
		return usagef("copy needs --to, the URL of an empty PostgreSQL database")
	case !sqlstore.IsPostgresURL(*to):
		return usagef("--to %s is not a PostgreSQL URL such as postgres://user@host:5432/tidings", redactURL(*to))
	}
	if _, err := url.Parse(*to); err != nil {
		return usagef("--to %s is not a PostgreSQL URL such as postgres://user@host:5432/tidings", sqlstore.Redact(*to))
	}
	// Opening a file that is not there would create an empty database
	// and copy nothing.
	st, err := os.Stat(*from)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("--from %s: there is no such file", *from)
	case err != nil:
		return fmt.Errorf("--from: %w", err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("--from %s is not a file", *from)
	}

	src, err := m.openDB(*from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer src.Close()
	dst, err := m.openDB(*to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer dst.Close()
	stats, err := sqlstore.Copy(ctx, src, dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "Copied %s into %s:\n", *from, sqlstore.Redact(*to))
	for _, t := range stats.Tables {
		fmt.Fprintf(m.Stdout, "%10d  %s\n", t.Rows, t.Table)
	}
	fmt.Fprintf(m.Stdout, "Clients keep their cursors: start the servers with --db %s.\n", sqlstore.Redact(*to))
	return nil
}

// redactURL is sqlstore.Redact for any URL, so that a mistyped scheme does
// not print its password either.
func redactURL(s string) string {
	if sqlstore.IsPostgresURL(s) || !strings.Contains(s, "://") {
		return sqlstore.Redact(s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}
