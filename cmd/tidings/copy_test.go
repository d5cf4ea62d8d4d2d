package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCopyUsageErrors needs no database: bad usage exits 2 naming the flag,
// and no URL's password is printed.
func TestCopyUsageErrors(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "tidings.db")
	if err := os.WriteFile(existing, nil, 0o600); err != nil { // an empty file is an empty SQLite database
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.db")
	pg := "postgres://tidings@127.0.0.1:1/tidings?connect_timeout=2"
	cases := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no flags", nil, 2, "--from"},
		{"no --from", []string{"--to", pg}, 2, "--from"},
		{"no --to", []string{"--from", existing}, 2, "--to"},
		{"--from a URL", []string{"--from", "postgres://u:pw-from@127.0.0.1/x", "--to", pg}, 2, "--from"},
		{"--to a file", []string{"--from", existing, "--to", filepath.Join(dir, "other.db")}, 2, "--to"},
		{"--to another URL", []string{"--from", existing, "--to", "mysql://u:pw-to@127.0.0.1/x"}, 2, "--to"},
		{"an argument", []string{"--from", existing, "--to", pg, "now"}, 2, "now"},
		{"unknown flag", []string{"--from", existing, "--to", pg, "--force"}, 2, "force"},
		{"--from missing", []string{"--from", missing, "--to", pg}, 1, "--from"},
		{"--from a directory", []string{"--from", dir, "--to", pg}, 1, "--from"},
		{"--to unreachable", []string{"--from", existing, "--to", "postgres://tidings:pw-unreachable@127.0.0.1:1/tidings?connect_timeout=2"}, 1, "127.0.0.1:1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(t, nil, "", append([]string{"copy"}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.says) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, c.code, c.says)
			}
			if strings.Contains(stdout+stderr, "pw-") {
				t.Fatalf("printed a password: %s%s", stdout, stderr)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("copy created the missing --from file")
	}
}

// TestCopyCommand moves a server's SQLite database to PostgreSQL: a client
// polls the server on the copy from the cursor it had and gets what the
// SQLite server would have given it.
func TestCopyCommand(t *testing.T) {
	target := postgresSchema(t)
	sqlite := filepath.Join(t.TempDir(), "tidings.db")
	tokens := nodesOffice(t, sqlite, "bob")

	base, _, stop := serve(t, nil, "--addr", "127.0.0.1:0", "--db", sqlite)
	for _, text := range []string{"one", "two", "three"} {
		call(t, "POST", base+"/api/v1/messages", tokens["alice"], map[string]any{"recipients": []string{"bob"}, "text": text, "ttl": "10m"}, 202, nil)
	}
	all := getPoll(t, base, tokens["bob"], "timeout=0")
	if len(all.Messages) != 3 {
		t.Fatalf("bob has %d messages on SQLite", len(all.Messages))
	}
	cursor := all.Messages[0].ID
	want := getPoll(t, base, tokens["bob"], "timeout=0&since="+cursor)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := run(t, nil, "", "copy", "--from", sqlite, "--to", target)
	if code != 0 {
		t.Fatalf("copy exited %d: %s", code, stderr)
	}
	for _, line := range []string{"2  users", "2  tokens", "3  messages", "cursors"} {
		if !strings.Contains(stdout, line) {
			t.Errorf("copy printed no %q:\n%s", line, stdout)
		}
	}

	base, _, _ = serve(t, nil, "--addr", "127.0.0.1:0", "--db", target)
	got := getPoll(t, base, tokens["bob"], "timeout=0&since="+cursor)
	if got.Cursor != want.Cursor || got.Missed != want.Missed || len(got.Messages) != len(want.Messages) {
		t.Fatalf("on PostgreSQL bob got %+v, on SQLite %+v", got, want)
	}
	for i := range got.Messages {
		if got.Messages[i].ID != want.Messages[i].ID || got.Messages[i].Text != want.Messages[i].Text {
			t.Fatalf("on PostgreSQL bob got %+v, on SQLite %+v", got, want)
		}
	}

	code, _, stderr = run(t, nil, "", "copy", "--from", sqlite, "--to", target)
	if code != 1 || !strings.Contains(stderr, "not empty") {
		t.Fatalf("a second copy: exit %d, %s", code, stderr)
	}
}
