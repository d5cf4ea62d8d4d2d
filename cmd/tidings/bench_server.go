package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings"
	"golang.org/x/term"
)

// With --server the bench measures a server that is already running: an
// nginx with Nchan that bench/compare.sh started, or a Tidings deployment.
// It cannot give each scenario a server of its own then, so bench/compare.sh
// runs it once per scenario on a freshly started nginx.

// parseScenarios reads --scenarios and --format.
func (c *benchConfig) parseScenarios(scenarios, format string) error {
	c.scenarios = map[string]bool{}
	for _, s := range strings.Split(scenarios, ",") {
		s = strings.TrimSpace(s)
		if s != "held" && s != "publish" && s != "fanout" && s != "answer" && s != "idle" {
			return usagef("--scenarios: %q is not held, publish, fanout, answer or idle", s)
		}
		c.scenarios[s] = true
	}
	switch format {
	case "table":
	case "tsv":
		c.tsv = true
	default:
		return usagef("--format: %q is not table or tsv", format)
	}
	return nil
}

// validateTarget checks --target, --server, --pid-file and --login together.
func (c *benchConfig) validateTarget() error {
	if c.target != "tidings" && c.target != "nchan" && c.target != "empty" {
		return usagef("--target: %q is not tidings, nchan or empty", c.target)
	}
	if c.server != "" {
		u, err := url.Parse(c.server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return usagef("--server must be a server's http:// or https:// URL, such as http://127.0.0.1:8080, not %q", c.server)
		}
		c.server = strings.TrimSuffix(c.server, "/")
	}
	if !c.scenariosGiven && (c.target != "tidings" || c.server != "" && c.metrics == "") {
		delete(c.scenarios, "idle") // of the default scenarios, it needs Tidings' metrics
	}
	switch {
	case c.target == "nchan" && c.server == "":
		return usagef("--target nchan needs --server, the URL of an nginx with Nchan (bench/compare.sh starts one)")
	case c.target == "empty" && (c.server == "" || c.scenarios["held"] || c.scenarios["fanout"]):
		return usagef("--target empty needs --server, the URL of bench/empty, and --scenarios publish or answer: it only answers")
	case c.scenarios["idle"] && c.target != "tidings":
		return usagef("--scenarios idle counts Tidings' database statements: leave it out with --target %s", c.target)
	case c.scenarios["idle"] && c.server != "" && c.metrics == "":
		return usagef("--scenarios idle with --server needs --metrics, the running Tidings' metrics URL (see serve --metrics-addr)")
	case c.metrics != "" && c.server == "":
		return usagef("--metrics goes with --server: the bench reads the metrics of a server it starts by itself")
	case c.pidFile != "" && c.server == "":
		return usagef("--pid-file goes with --server: the bench knows the pid of a server it starts")
	case c.login != "" && (c.server == "" || c.target != "tidings"):
		return usagef("--login goes with --server and --target tidings: it makes the bench's users on a running Tidings")
	case c.server != "" && c.target == "tidings" && c.login == "":
		return usagef("--server with Tidings needs --login, an admin's login (password on stdin), to make the bench's users")
	}
	return nil
}

// readLoginPassword reads the admin's password: asked once without echo on
// a terminal, else the first line of standard input.
func (m *Main) readLoginPassword() (string, error) {
	if f, ok := m.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(m.Stderr, "Password: ")
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(m.Stderr)
		return string(p), err
	}
	line, err := bufio.NewReader(io.LimitReader(m.Stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	if line = strings.TrimRight(line, "\r\n"); line == "" {
		return "", errors.New("no password on standard input (give it as the first line)")
	}
	return line, nil
}

// startRunning readies a scenario on the running server: its pid is read
// anew each time, as a restarted server has another, and a Tidings gets
// the bench's users the first time.
func (b *bench) startRunning(ctx context.Context) (stop func(), err error) {
	b.url, b.metricsURL = b.cfg.server, b.cfg.metrics
	b.pid = 0
	if b.cfg.pidFile != "" {
		data, err := os.ReadFile(b.cfg.pidFile)
		if err != nil {
			return nil, fmt.Errorf("--pid-file: %w", err)
		}
		if b.pid, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil || b.pid < 1 {
			return nil, fmt.Errorf("--pid-file %s holds no process id", b.cfg.pidFile)
		}
	}
	if b.empty() {
		b.publishToken = "none" // it reads the header and looks at nothing
	}
	if b.cfg.target == "tidings" && b.logins == nil {
		if err := b.makeUsers(ctx); err != nil {
			return nil, err
		}
	}
	return func() {}, nil
}

// treeRSS is the resident memory of a process and its children in bytes
// (nginx's master and its workers), 0 if it cannot be read.
func treeRSS(pid int) int64 {
	total := rssOf(pid)
	if total == 0 {
		return 0
	}
	children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(children)) {
		if child, err := strconv.Atoi(f); err == nil {
			total += rssOf(child)
		}
	}
	return total
}

func rssOf(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// loginOf is the login of one of the bench's users: on a running Tidings
// they carry a prefix of their own.
func (b *bench) loginOf(name string) string {
	if login, ok := b.logins[name]; ok {
		return login
	}
	return name
}

// makeUsers makes the bench's users on a running Tidings, as its admin, each
// with a token; the admin's publish token publishes.
func (b *bench) makeUsers(ctx context.Context) error {
	admin, err := b.session(ctx, b.cfg.login, b.password)
	if err != nil {
		return err
	}
	if b.publishToken, err = b.apiToken(ctx, admin, tidings.ScopePublish); err != nil {
		return err
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	password := hex.EncodeToString(suffix) + "-bench-password"
	b.userPassword = password
	b.tokens, b.logins = map[string]string{}, map[string]string{}
	for _, name := range []string{"idle", "target", "sink", "fan"} {
		login := "bench-" + hex.EncodeToString(suffix) + "-" + name
		body := map[string]string{"login": login, "name": "bench " + name, "email": login + "@example.org", "password": password, "role": "user"}
		if err := b.apiCall(ctx, admin, "POST", "/api/v1/users", body, http.StatusCreated, nil); err != nil {
			return fmt.Errorf("make the bench's user %s: %w", login, err)
		}
		b.logins[name] = login
		user, err := b.session(ctx, login, password)
		if err != nil {
			return err
		}
		if b.tokens[name], err = b.apiToken(ctx, user, tidings.ScopeUser); err != nil {
			return err
		}
	}
	b.admin = admin
	return nil
}

// removeUsers deletes the users makeUsers made, and their tokens with them.
func (b *bench) removeUsers() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, login := range b.logins {
		if err := b.apiCall(ctx, b.admin, "DELETE", "/api/v1/users/"+login, nil, http.StatusNoContent, nil); err != nil {
			fmt.Fprintf(os.Stderr, "tidings bench: remove the bench's user %s: %v\n", login, err)
		}
	}
}

// session logs in and returns a client that carries the session's cookie.
func (b *bench) session(ctx context.Context, login, password string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	err := b.apiCall(ctx, c, "POST", "/api/v1/login", map[string]string{"login": login, "password": password}, http.StatusOK, nil)
	if err != nil {
		return nil, fmt.Errorf("log in as %s: %w", login, err)
	}
	return c, nil
}

func (b *bench) apiToken(ctx context.Context, session *http.Client, scope string) (string, error) {
	var t struct{ Token string }
	body := map[string]any{"name": "tidings bench", "scopes": []string{scope}}
	if err := b.apiCall(ctx, session, "POST", "/api/v1/tokens", body, http.StatusCreated, &t); err != nil {
		return "", fmt.Errorf("make a %s token: %w", scope, err)
	}
	return t.Token, nil
}

func (b *bench) apiCall(ctx context.Context, c *http.Client, method, path string, body any, want int, into any) error {
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = strings.NewReader(string(data))
	}
	req, err := http.NewRequestWithContext(ctx, method, b.url+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	if into != nil {
		return json.NewDecoder(resp.Body).Decode(into)
	}
	return nil
}
