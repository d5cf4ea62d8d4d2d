package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	tidingshttp "github.com/tidings/tidings/http"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// syncBuffer is a buffer that the server goroutine writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// run runs one command to its end and returns its exit status and output.
func run(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut syncBuffer
	m := &Main{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
	code := m.exitCode(m.Run(context.Background(), args))
	return code, out.String(), errOut.String()
}

// serve starts the real serve wiring and returns its URL, its output and a
// stop function that shuts it down as SIGTERM does and returns Run's error.
func serve(t *testing.T, env map[string]string, args ...string) (string, *syncBuffer, func() error) {
	t.Helper()
	return serveWith(t, env, nil, args...)
}

// serveWith is serve with setup, if set, changing the Main first.
func serveWith(t *testing.T, env map[string]string, setup func(*Main), args ...string) (string, *syncBuffer, func() error) {
	t.Helper()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	ready := make(chan string, 1)
	m := &Main{Stdin: strings.NewReader(""), Stdout: out, Stderr: errOut,
		Getenv: func(k string) string { return env[k] }, Ready: func(u string) { ready <- u }}
	if setup != nil {
		setup(m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, append([]string{"serve"}, args...)) }()
	select {
	case u := <-ready:
		var once sync.Once
		var err error
		stop := func() error {
			once.Do(func() {
				cancel()
				select {
				case err = <-done:
				case <-time.After(15 * time.Second):
					err = fmt.Errorf("serve did not stop within 15s")
				}
			})
			return err
		}
		t.Cleanup(func() { stop() })
		return u, out, stop
	case err := <-done:
		cancel()
		t.Fatalf("serve ended before it listened: %v\n%s", err, errOut)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("serve did not start:\n%s", errOut)
	}
	return "", nil, nil
}

// demoCredentials reads the login table that serve --demo prints.
func demoCredentials(t *testing.T, out string) map[string][2]string {
	t.Helper()
	creds := map[string][2]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && strings.HasPrefix(f[2], "tdg_") {
			creds[f[0]] = [2]string{f[1], f[2]}
		}
	}
	for _, l := range []string{"alice", "bob", "carol"} {
		if creds[l][1] == "" {
			t.Fatalf("demo output has no credentials for %s:\n%s", l, out)
		}
	}
	return creds
}

type poll struct {
	Messages []struct {
		ID, Text, Module string
		Actor            *struct{ Login string }
	}
	Cursor string
	Missed int
}

// waitFor polls cond until it holds, failing the test after a bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// servedHeld serves with a hook that reports how many deliveries wait.
func servedHeld(t *testing.T, args ...string) (string, *syncBuffer, func() error, func() int64) {
	t.Helper()
	srvs := make(chan *tidingshttp.Server, 1)
	base, out, stop := serveWith(t, nil, func(m *Main) { m.Serving = func(s *tidingshttp.Server) { srvs <- s } }, args...)
	srv := <-srvs
	return base, out, stop, srv.Waiting
}

func getPoll(t *testing.T, base, token, query string) poll {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/poll?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p poll
	if resp.StatusCode != 200 {
		t.Fatalf("poll: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeDemoEndToEnd is the README's promise: start with --demo, hold a
// poll as bob, publish as alice, and bob's poll answers.
func TestServeDemoEndToEnd(t *testing.T) {
	// Like the default ./tidings-data/tidings.db on a fresh checkout: in a
	// directory that does not exist yet.
	db := filepath.Join(t.TempDir(), "tidings-data", "tidings.db")
	// Carol's changes would wake bob's poll too: here she keeps still.
	base, out, stop, heldPolls := servedHeld(t, "--demo", "--demo-every", "0", "--addr", "127.0.0.1:0", "--db", db)
	creds := demoCredentials(t, out.String())
	if !strings.Contains(out.String(), base+"/api/v1/poll") {
		t.Errorf("demo instructions do not use the real address %s", base)
	}

	start := getPoll(t, base, creds["bob"][1], "timeout=0")
	got := make(chan poll, 1)
	go func() {
		req, _ := http.NewRequest("GET", base+"/api/v1/poll?timeout=20&since="+start.Cursor, nil)
		req.Header.Set("Authorization", "Bearer "+creds["bob"][1])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("bob's poll: %v", err)
			got <- poll{}
			return
		}
		defer resp.Body.Close()
		var p poll
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&p) != nil {
			t.Errorf("bob's poll: status %d", resp.StatusCode)
		}
		got <- p
	}()
	// The poll must be held before the publish, or an answer with the
	// message would prove nothing about waking it.
	waitFor(t, "bob's poll to be held", func() bool { return heldPolls() == 1 })
	select {
	case p := <-got:
		t.Fatalf("bob's poll answered %+v before anything was published", p)
	default:
	}

	code, stdout, stderr := run(t, map[string]string{"TIDINGS_TOKEN": creds["alice"][1]}, "",
		"publish", "--server", base, "--to", "bob", "Coffee in the kitchen")
	if code != 0 {
		t.Fatalf("publish exited %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "1 recipient") {
		t.Errorf("publish printed %q", stdout)
	}
	select {
	case p := <-got:
		if len(p.Messages) != 1 || p.Messages[0].Text != "Coffee in the kitchen" || p.Messages[0].Actor.Login != "alice" {
			t.Fatalf("bob's poll answered %+v", p)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("bob's poll did not answer")
	}

	// Passwords work for the browser login too.
	body := fmt.Sprintf(`{"login":"carol","password":%q}`, creds["carol"][0])
	resp, err := http.Post(base+"/api/v1/login", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("demo login: status %d", resp.StatusCode)
	}

	// A held poll is answered, not cut, when the server stops.
	carol := getPoll(t, base, creds["carol"][1], "timeout=0")
	wrote := make(chan struct{})
	held := make(chan poll, 1)
	go func() {
		req, _ := http.NewRequest("GET", base+"/api/v1/poll?timeout=20&since="+carol.Cursor, nil)
		req.Header.Set("Authorization", "Bearer "+creds["carol"][1])
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) },
		}))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("poll at shutdown: %v", err)
			held <- poll{}
			return
		}
		defer resp.Body.Close()
		var p poll
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&p) != nil {
			t.Errorf("poll at shutdown: status %d", resp.StatusCode)
		}
		held <- p
	}()
	<-wrote
	waitFor(t, "carol's poll to be held", func() bool { return heldPolls() == 1 })
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if p := <-held; len(p.Messages) != 0 || p.Cursor != carol.Cursor {
		t.Fatalf("poll at shutdown answered %+v, want [] with cursor %s", p, carol.Cursor)
	}
}

// TestCommandsOnTheServersDatabase adds a user and a token while serve runs
// on the same database, a SQLite file or a PostgreSQL database; the server
// sees both at once.
func TestCommandsOnTheServersDatabase(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testCommandsOnTheServersDatabase(t, filepath.Join(t.TempDir(), "tidings.db")) })
	t.Run("postgres", func(t *testing.T) { testCommandsOnTheServersDatabase(t, postgresSchema(t)) })
}

// postgresSchema returns the URL of a fresh schema on the server that
// TIDINGS_TEST_POSTGRES names, dropped when the test ends.
func postgresSchema(t *testing.T) string {
	server := os.Getenv("TIDINGS_TEST_POSTGRES")
	if server == "" {
		if os.Getenv("TIDINGS_REQUIRE_POSTGRES") == "1" {
			t.Fatal("TIDINGS_REQUIRE_POSTGRES=1, but TIDINGS_TEST_POSTGRES names no server")
		}
		t.Skip("set TIDINGS_TEST_POSTGRES to a PostgreSQL server, e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable")
	}
	admin, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [8]byte
	rand.Read(b[:])
	schema := "tidings_cmd_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// A PostgreSQL URL's password never shows in what the commands print.
func TestDatabasePasswordIsNotPrinted(t *testing.T) {
	db := "postgres://tidings:s3cret-pw@127.0.0.1:1/tidings?connect_timeout=2"
	for _, args := range [][]string{
		{"user", "add", "--db", db, "--login", "dora", "--email", "dora@example.org"},
		{"token", "create", "--db", db, "--user", "dora"},
		{"serve", "--addr", "127.0.0.1:0", "--db", db},
	} {
		code, stdout, stderr := run(t, nil, "correct horse battery\n", args...)
		if code == 0 {
			t.Fatalf("%s with an unreachable database exited 0", args[0])
		}
		if strings.Contains(stdout+stderr, "s3cret-pw") {
			t.Fatalf("%s printed the database password: %s%s", args[0], stdout, stderr)
		}
	}
}

func testCommandsOnTheServersDatabase(t *testing.T, db string) {
	env := map[string]string{"TIDINGS_DB": db}
	base, _, _ := serve(t, env, "--addr", "127.0.0.1:0")

	code, stdout, stderr := run(t, env, "correct horse battery\n",
		"user", "add", "--login", "dora", "--name", "Dora Diaz", "--email", "dora@example.org", "--admin")
	if code != 0 {
		t.Fatalf("user add exited %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "dora") {
		t.Errorf("user add printed %q", stdout)
	}
	code, stdout, stderr = run(t, env, "", "token", "create", "--user", "dora", "--scope", "publish", "--name", "ops")
	if code != 0 {
		t.Fatalf("token create exited %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	token := lines[len(lines)-1]
	if !strings.HasPrefix(token, "tdg_") || strings.ContainsAny(token, " \t") {
		t.Fatalf("last line of token create is %q, want the token alone", token)
	}

	resp, err := http.Post(base+"/api/v1/login", "application/json", strings.NewReader(`{"login":"dora","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login of the new user: status %d", resp.StatusCode)
	}
	code, _, stderr = run(t, nil, "", "publish", "--server", base, "--token", token, "--to", "dora", "note to self")
	if code != 0 {
		t.Fatalf("publish with the new token exited %d: %s", code, stderr)
	}
	// The server's refusal is an error with its message, exit status 1.
	code, _, stderr = run(t, nil, "", "publish", "--server", base, "--token", token, "--to", "nobody", "hello")
	if code != 1 || !strings.Contains(stderr, "recipients") || !strings.Contains(stderr, "nobody") {
		t.Fatalf("publish to an unknown login: exit %d, stderr %q", code, stderr)
	}

	// A second server on the same SQLite file is refused, as its clients
	// would not hear of the first one's messages; on PostgreSQL it is a
	// second node.
	if strings.HasPrefix(db, "postgres") {
		serve(t, env, "--addr", "127.0.0.1:0")
		return
	}
	var errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan string, 1)
	m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &errOut,
		Getenv: func(k string) string { return env[k] }, Ready: func(u string) { started <- u }}
	ended := make(chan error, 1)
	go func() { ended <- m.Run(ctx, []string{"serve", "--addr", "127.0.0.1:0"}) }()
	select {
	case u := <-started:
		cancel()
		<-ended
		t.Fatalf("a second server on the SQLite file started at %s", u)
	case err := <-ended:
		if m.exitCode(err) == 0 || !strings.Contains(err.Error(), "Another Tidings server is serving") {
			t.Fatalf("a second server on the SQLite file: %v (exit %d)", err, m.exitCode(err))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a second server on the SQLite file neither started nor failed in 30 s")
	}
}

func TestUsageErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tidings.db")
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		says  string
	}{
		{"no command", "", nil, 2, "no command"},
		{"unknown command", "", []string{"frobnicate"}, 2, "frobnicate"},
		{"unknown flag", "", []string{"serve", "--colour", "red"}, 2, "colour"},
		{"bad duration", "", []string{"serve", "--poll-timeout", "soon"}, 2, "poll-timeout"},
		{"publish without text", "", []string{"publish", "--to", "bob", "--token", "x"}, 2, "text"},
		{"user add without login", "", []string{"user", "add", "--db", db, "--email", "a@example.org"}, 2, "--login"},
		{"short password", "short\n", []string{"user", "add", "--db", db, "--login", "erin", "--email", "e@example.org"}, 1, "at least 8"},
		{"bad login", "long enough\n", []string{"user", "add", "--db", db, "--login", "Erin!", "--email", "e@example.org"}, 1, "--login"},
		{"token for unknown user", "", []string{"token", "create", "--db", db, "--user", "ghost"}, 1, "ghost"},
		{"unknown scope", "", []string{"token", "create", "--db", db, "--user", "x", "--scope", "root"}, 2, "root"},
		{"server unreachable", "", []string{"publish", "--server", "http://127.0.0.1:1", "--token", "t", "--to", "bob", "hi"}, 1, "127.0.0.1:1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run(t, nil, c.stdin, c.args...)
			if code != c.code || !strings.Contains(stderr, c.says) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, c.code, c.says)
			}
		})
	}
}

func TestEnvironmentVariablesSetFlags(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tidings.db")
	code, _, stderr := run(t, map[string]string{"TIDINGS_POLL_TIMEOUT": "forever"}, "", "serve", "--db", db)
	if code != 2 || !strings.Contains(stderr, "TIDINGS_POLL_TIMEOUT") {
		t.Fatalf("bad TIDINGS_POLL_TIMEOUT: exit %d, %q", code, stderr)
	}
	// A flag given on the command line wins over the variable.
	base, _, _ := serve(t, map[string]string{"TIDINGS_ADDR": "256.0.0.1:1", "TIDINGS_DB": db}, "--addr", "127.0.0.1:0")
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
}

// writeTestCertificate writes a self-signed certificate for 127.0.0.1 and
// its key as PEM files, and returns their paths and a pool that trusts it.
func writeTestCertificate(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tidings test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeHTTPS runs serve with --tls-cert and --tls-key and asks it for
// /healthz over HTTPS, trusting only the test's certificate.
func TestServeHTTPS(t *testing.T) {
	certFile, keyFile, pool := writeTestCertificate(t)
	db := filepath.Join(t.TempDir(), "tidings.db")
	base, _, stop := serve(t, nil, "--addr", "127.0.0.1:0", "--db", db, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("serve announced %q, want an https:// URL", base)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("healthz over HTTPS: status %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestServeTLSAndThrottleFlagErrors: a missing half of the TLS pair is bad
// usage; a file that cannot be used is an error naming its flag; bad values
// of the throttling flags are bad usage naming the flag and the value.
func TestServeTLSAndThrottleFlagErrors(t *testing.T) {
	certFile, keyFile, _ := writeTestCertificate(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "tidings.db")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := writeTestCertificate(t)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		says []string
	}{
		{"cert without key", nil, []string{"--tls-cert", certFile}, 2, []string{"--tls-key"}},
		{"key without cert", nil, []string{"--tls-key", keyFile}, 2, []string{"--tls-cert"}},
		{"cert from the environment without key", map[string]string{"TIDINGS_TLS_CERT": certFile}, nil, 2, []string{"--tls-key"}},
		{"missing cert file", nil, []string{"--tls-cert", filepath.Join(dir, "nope.pem"), "--tls-key", keyFile}, 1, []string{"--tls-cert", "nope.pem"}},
		{"missing key file", nil, []string{"--tls-cert", certFile, "--tls-key", filepath.Join(dir, "nope.pem")}, 1, []string{"--tls-key", "nope.pem"}},
		{"cert file is not PEM", nil, []string{"--tls-cert", garbage, "--tls-key", keyFile}, 1, []string{"--tls-cert", "garbage.pem"}},
		{"key file is not PEM", nil, []string{"--tls-cert", certFile, "--tls-key", garbage}, 1, []string{"--tls-key", "garbage.pem"}},
		{"key of another certificate", nil, []string{"--tls-cert", certFile, "--tls-key", otherKey}, 1, []string{"--tls-key"}},
		{"bad trusted proxy", nil, []string{"--trusted-proxies", "10.0.0.0/8,10.0.0.0/33"}, 2, []string{"trusted-proxies", "10.0.0.0/33"}},
		{"bad trusted proxy from the environment", map[string]string{"TIDINGS_TRUSTED_PROXIES": "proxy.example.org"}, nil, 2, []string{"TIDINGS_TRUSTED_PROXIES", "proxy.example.org"}},
		{"negative publish rate", nil, []string{"--user-publish-rate", "-1"}, 2, []string{"--user-publish-rate", "-1"}},
		{"publish rate not a number", nil, []string{"--user-publish-rate", "fast"}, 2, []string{"user-publish-rate", "fast"}},
		{"unknown sync", nil, []string{"--sync", "sometimes"}, 2, []string{"sync", "sometimes"}},
		{"unknown sync from the environment", map[string]string{"TIDINGS_SYNC": "off"}, nil, 2, []string{"TIDINGS_SYNC", "off"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run(t, c.env, "", append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, c.code, stderr)
			}
			for _, s := range c.says {
				if !strings.Contains(stderr, s) {
					t.Fatalf("stderr %q does not mention %q", stderr, s)
				}
			}
		})
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a refused start created the database")
	}
}

// TestServeTrustsConfiguredProxies: with --trusted-proxies the client
// address comes from X-Forwarded-For, so ten failed logins claimed by one
// client behind the proxy leave another client's login alone; and with
// --user-publish-rate 0 a plain user publishes without limit.
func TestServeTrustsConfiguredProxies(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tidings.db")
	env := map[string]string{"TIDINGS_DB": db}
	if code, _, stderr := run(t, env, "correct horse battery\n",
		"user", "add", "--login", "erin", "--name", "Erin Ebert", "--email", "erin@example.org"); code != 0 {
		t.Fatalf("user add exited %d: %s", code, stderr)
	}
	base, _, _ := serve(t, env, "--addr", "127.0.0.1:0", "--trusted-proxies", "127.0.0.1", "--user-publish-rate", "0")
	login := func(xff, password string) int {
		req, _ := http.NewRequest("POST", base+"/api/v1/login", strings.NewReader(fmt.Sprintf(`{"login":"erin","password":%q}`, password)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 10 {
		if st := login("203.0.113.1", "wrong password"); st != 401 {
			t.Fatalf("wrong password: status %d", st)
		}
	}
	if st := login("203.0.113.1", "correct horse battery"); st != 429 {
		t.Fatalf("11th login from the failing client: status %d, want 429", st)
	}
	if st := login("203.0.113.2", "correct horse battery"); st != 200 {
		t.Fatalf("login from another client behind the proxy: status %d, want 200", st)
	}

	code, stdout, stderr := run(t, env, "", "token", "create", "--user", "erin")
	if code != 0 {
		t.Fatalf("token create exited %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	token := lines[len(lines)-1]
	for i := range 30 {
		if code, _, stderr := run(t, nil, "", "publish", "--server", base, "--token", token, "--to", "erin", fmt.Sprintf("note %d", i)); code != 0 {
			t.Fatalf("publish %d with --user-publish-rate 0 exited %d: %s", i+1, code, stderr)
		}
	}
}

// TestServeDemoFillsTheProjectAndCarolActs: a newcomer logged in as bob
// finds a project with items, and sees carol's changes arrive without a
// second window.
func TestServeDemoFillsTheProjectAndCarolActs(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tidings.db")
	base, out, _ := serve(t, nil, "--demo", "--demo-every", "50ms", "--addr", "127.0.0.1:0", "--db", db)
	if !strings.Contains(out.String(), "Open "+base+"/ in your browser and log in as bob") {
		t.Errorf("the demo does not say where to open it:\n%s", out)
	}
	creds := demoCredentials(t, out.String())
	bob := creds["bob"][1]
	for _, kind := range []string{"todos", "notes", "appointments"} {
		req, _ := http.NewRequest("GET", base+"/api/v1/projects/1/"+kind, nil)
		req.Header.Set("Authorization", "Bearer "+bob)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var list struct{ Items []json.RawMessage }
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil || len(list.Items) == 0 {
			t.Fatalf("the demo project has no %s (%v)", kind, err)
		}
	}
	cursor := getPoll(t, base, bob, "timeout=0").Cursor
	seen := map[string]bool{}
	for len(seen) < 3 {
		p := getPoll(t, base, bob, "timeout=10&since="+cursor)
		if len(p.Messages) == 0 {
			t.Fatal("carol changed nothing for 10 s")
		}
		for _, m := range p.Messages {
			if m.Actor == nil || m.Actor.Login != "carol" {
				t.Fatalf("a message from someone else than carol: %+v", m)
			}
			seen[m.Text] = true
		}
		cursor = p.Cursor
	}
}
