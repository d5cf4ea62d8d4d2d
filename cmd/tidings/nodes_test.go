package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Several nodes: real serve processes — the test binary started again as
// tidings — on one PostgreSQL database, the one TIDINGS_TEST_POSTGRES names
// a server for.

// TestMain lets the test binary be a serve process for these tests.
func TestMain(m *testing.M) {
	if os.Getenv("TIDINGS_TEST_NODE") == "1" {
		os.Args = append([]string{"tidings"}, strings.Split(os.Getenv("TIDINGS_TEST_NODE_ARGS"), "\x1f")...)
		main()
		return
	}
	os.Exit(m.Run())
}

// postgresServer returns the server URL for the tests, or skips.
func postgresServer(t *testing.T) string {
	t.Helper()
	u := os.Getenv("TIDINGS_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("TIDINGS_REQUIRE_POSTGRES") == "1" {
			t.Fatal("TIDINGS_REQUIRE_POSTGRES=1 but TIDINGS_TEST_POSTGRES names no server")
		}
		t.Skip("TIDINGS_TEST_POSTGRES names no PostgreSQL server: the several-node tests need one")
	}
	return u
}

// freshDatabase creates an empty database on the test server and returns
// its URL; it is dropped when the test ends.
func freshDatabase(t *testing.T) string {
	t.Helper()
	server := postgresServer(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "tidings_nodes_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close(ctx)
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// node is a serve process.
type node struct {
	url  string
	cmd  *exec.Cmd
	logs *syncBuffer
}

var listening = regexp.MustCompile(`msg="tidings is listening".* url=(\S+)`)

// startNode starts a serve process on db and waits until it listens.
func startNode(t *testing.T, db string, extra ...string) *node {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, extra...)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TIDINGS_TEST_NODE=1", "TIDINGS_TEST_NODE_ARGS="+strings.Join(args, "\x1f"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, logs: &syncBuffer{}}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(n.logs, line)
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() { n.stop(t) })
	select {
	case n.url = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("the node did not listen within 30 s:\n%s", n.logs)
	}
	return n
}

// stop ends the process as an operator does, with SIGTERM.
func (n *node) stop(t *testing.T) {
	if n.cmd.ProcessState != nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("node %s exited with %v:\n%s", n.url, err, n.logs)
		}
	case <-time.After(15 * time.Second):
		n.cmd.Process.Kill()
		t.Errorf("node %s did not stop within 15 s", n.url)
	}
}

// nodesOffice creates alice (admin) and users through the command line on
// db, with a token each.
func nodesOffice(t *testing.T, db string, logins ...string) map[string]string {
	t.Helper()
	tokens := map[string]string{}
	for i, login := range append([]string{"alice"}, logins...) {
		args := []string{"user", "add", "--db", db, "--login", login, "--email", login + "@example.org"}
		if i == 0 {
			args = append(args, "--admin")
		}
		if code, _, stderr := run(t, nil, "password1\n", args...); code != 0 {
			t.Fatalf("user add %s: %s", login, stderr)
		}
		code, stdout, stderr := run(t, nil, "", "token", "create", "--db", db, "--user", login)
		if code != 0 {
			t.Fatalf("token create %s: %s", login, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		tokens[login] = lines[len(lines)-1]
	}
	return tokens
}

// call sends a JSON request with a token and decodes the answer.
func call(t *testing.T, method, url, token string, body any, want int, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, url, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
}

func TestNodesWakeEachOther(t *testing.T) {
	db := freshDatabase(t)
	tokens := nodesOffice(t, db, "bob")
	a, b := startNode(t, db), startNode(t, db)

	// A stream on B is waiting once it sent its first line: it subscribed
	// before it read, so what commits after that must wake it.
	start := getPoll(t, b.url, tokens["bob"], "timeout=0").Cursor
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", b.url+"/api/v1/stream?since="+start, nil)
	req.Header.Set("Authorization", "Bearer "+tokens["bob"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "retry:") {
		t.Fatalf("the stream on B began with %q", lines.Text())
	}
	for range 3 {
		call(t, "POST", a.url+"/api/v1/messages", tokens["alice"], map[string]any{"recipients": []string{"bob"}, "text": "from node A"}, 202, nil)
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), "data: ") {
				if !strings.Contains(lines.Text(), `"text":"from node A"`) {
					t.Fatalf("the stream on B got %s", lines.Text())
				}
				break
			}
		}
		if ctx.Err() != nil || lines.Err() != nil {
			t.Fatalf("a publish on A did not reach the stream held on B: %v %v", ctx.Err(), lines.Err())
		}
	}
}

// Four publishers on each node, 100 messages each, to users whose pollers
// switch between the nodes at random: every user gets every message once,
// in order.
func TestNodesNumberEveryMessageOnceInOrder(t *testing.T) {
	db := freshDatabase(t)
	users := []string{"bob", "carol"}
	tokens := nodesOffice(t, db, users...)
	nodes := []*node{startNode(t, db), startNode(t, db)}
	const perPublisher = 100

	type received struct {
		texts []string
		seqs  []string
	}
	results := make([]received, len(users))
	var pollers sync.WaitGroup
	stopPolling := make(chan struct{})
	for i, u := range users {
		cursor := getPoll(t, nodes[0].url, tokens[u], "timeout=0").Cursor
		pollers.Go(func() {
			for {
				n, _ := rand.Int(rand.Reader, big.NewInt(2))
				p := getPoll(t, nodes[n.Int64()].url, tokens[u], "timeout=1&since="+cursor)
				for _, m := range p.Messages {
					results[i].texts = append(results[i].texts, m.Text)
					results[i].seqs = append(results[i].seqs, m.ID)
				}
				cursor = p.Cursor
				if len(p.Messages) == 0 {
					select {
					case <-stopPolling:
						return
					default:
					}
				}
			}
		})
	}
	var publishers sync.WaitGroup
	for ni, n := range nodes {
		for p := range 4 {
			publishers.Go(func() {
				for k := range perPublisher {
					call(t, "POST", n.url+"/api/v1/messages", tokens["alice"], map[string]any{"recipients": users, "text": fmt.Sprintf("%d/%d/%03d", ni, p, k)}, 202, nil)
				}
			})
		}
	}
	publishers.Wait()
	close(stopPolling)
	pollers.Wait()

	for i, u := range users {
		got := results[i].texts
		if len(got) != 2*4*perPublisher {
			t.Errorf("%s got %d messages, want %d", u, len(got), 2*4*perPublisher)
		}
		seen := map[string]bool{}
		last := map[string]int{}
		for _, text := range got {
			if seen[text] {
				t.Fatalf("%s got %s twice", u, text)
			}
			seen[text] = true
			var ni, p, k int
			fmt.Sscanf(text, "%d/%d/%d", &ni, &p, &k)
			pub := fmt.Sprintf("%d/%d", ni, p)
			if prev, ok := last[pub]; ok && k <= prev {
				t.Fatalf("%s got %s after %s/%03d: one publisher's messages out of order", u, text, pub, prev)
			}
			last[pub] = k
		}
	}
}

func TestNodesShareSessionsAndEndThem(t *testing.T) {
	db := freshDatabase(t)
	nodesOffice(t, db, "bob")
	a, b := startNode(t, db), startNode(t, db)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.Post(a.url+"/api/v1/login", "application/json", strings.NewReader(`{"login":"bob","password":"password1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login on A: %d", resp.StatusCode)
	}
	// The cookie was set for A's host and port; B is on the same host.
	au, _ := url.Parse(a.url)
	bu, _ := url.Parse(b.url)
	jar.SetCookies(bu, jar.Cookies(au))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", b.url+"/api/v1/stream", nil)
	stream, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if stream.StatusCode != 200 {
		t.Fatalf("a session made on A opened a stream on B with %d", stream.StatusCode)
	}
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, stream.Body); ended <- err }()

	logout, _ := http.NewRequest("POST", a.url+"/api/v1/logout", nil)
	resp, err = client.Do(logout)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("logout on A: %d", resp.StatusCode)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("logout on A left the stream on B open")
	}
	// B believed the session (it opened the stream with it), and refuses
	// it at its very next request: the end came to B at once.
	me, err := client.Get(b.url + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	me.Body.Close()
	if me.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the session ended on A got %d on B, want 401", me.StatusCode)
	}
}

// A token that B has cached, revoked on A, is refused by B at once: B
// believes cached credentials beyond 30 s only while it hears every end.
func TestNodesEndCachedTokensAtOnce(t *testing.T) {
	db := freshDatabase(t)
	nodesOffice(t, db, "bob")
	a, b := startNode(t, db), startNode(t, db)
	jar, _ := cookiejar.New(nil)
	session := &http.Client{Jar: jar}
	resp, err := session.Post(a.url+"/api/v1/login", "application/json", strings.NewReader(`{"login":"bob","password":"password1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = session.Post(a.url+"/api/v1/tokens", "application/json", strings.NewReader(`{"name":"script"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		ID    int64
		Token string
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || tok.Token == "" {
		t.Fatalf("create a token on A: %d", resp.StatusCode)
	}
	me := func() int {
		t.Helper()
		req, _ := http.NewRequest("GET", b.url+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := me(); got != 200 {
		t.Fatalf("the token on B: %d", got)
	}
	req, _ := http.NewRequest("DELETE", a.url+"/api/v1/tokens/"+strconv.FormatInt(tok.ID, 10), nil)
	resp, err = session.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke on A: %d", resp.StatusCode)
	}
	// The notice reaches B within moments of the commit, not 30 s.
	deadline := time.Now().Add(5 * time.Second)
	for me() != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("B still believed the token revoked on A 5 s later")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A reminder that falls due while both nodes run fires once.
func TestNodesFireAReminderOnce(t *testing.T) {
	db := freshDatabase(t)
	tokens := nodesOffice(t, db, "bob")
	a, b := startNode(t, db), startNode(t, db)
	var project struct{ ID int64 }
	call(t, "POST", a.url+"/api/v1/projects", tokens["alice"], map[string]any{"name": "Office move"}, 201, &project)
	call(t, "PUT", fmt.Sprintf("%s/api/v1/projects/%d/members/bob", a.url, project.ID), tokens["alice"], map[string]any{"role": "member"}, 200, nil)
	call(t, "PUT", b.url+"/api/v1/me/settings", tokens["bob"], map[string]any{"reminder_lead_minutes": 1}, 200, nil)
	cursor := getPoll(t, b.url, tokens["bob"], "timeout=0").Cursor
	// bob's reminder is due in about three seconds, on whichever node.
	start := time.Now().Add(time.Minute + 3*time.Second).UTC().Truncate(time.Second)
	call(t, "POST", fmt.Sprintf("%s/api/v1/projects/%d/appointments", b.url, project.ID), tokens["alice"], map[string]any{
		"title": "Movers arrive", "start": start.Format(time.RFC3339), "end": start.Add(time.Hour).Format(time.RFC3339), "participants": []string{"bob"},
	}, 201, nil)

	reminders := 0
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && (reminders == 0 || time.Now().Before(start.Add(-time.Minute+3*time.Second))) {
		p := getPoll(t, a.url, tokens["bob"], "timeout=2&since="+cursor)
		for _, m := range p.Messages {
			if m.Module == "appointment" && strings.Contains(m.Text, "Movers arrive") && strings.Contains(strings.ToLower(m.Text), "remind") {
				reminders++
			}
		}
		cursor = p.Cursor
	}
	if reminders != 1 {
		t.Fatalf("bob got %d reminders, want 1", reminders)
	}
}

// The database goes away while a node publishes: /healthz says so, no
// acknowledged message is lost, and the stream held on the other node
// delivers everything once the database is back.
func TestNodesSurviveTheDatabaseGoingAway(t *testing.T) {
	db := freshDatabase(t)
	tokens := nodesOffice(t, db, "bob")
	a, b := startNode(t, db), startNode(t, db)
	u, _ := url.Parse(db)
	name := strings.TrimPrefix(u.Path, "/")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, postgresServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	defer admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true")

	start := getPoll(t, b.url, tokens["bob"], "timeout=0").Cursor
	streamCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(streamCtx, "GET", b.url+"/api/v1/stream?since="+start, nil)
	req.Header.Set("Authorization", "Bearer "+tokens["bob"])
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	received := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m struct{ Text string }
				if json.Unmarshal([]byte(line), &m) == nil && m.Text != "" {
					received <- m.Text
				}
			}
		}
		close(received)
	}()

	health := func(n *node) int {
		resp, err := http.Get(n.url + "/healthz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var mu sync.Mutex
	var acked []string
	stopPublishing := make(chan struct{})
	var publisher sync.WaitGroup
	publisher.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stopPublishing:
				return
			default:
			}
			text := fmt.Sprintf("m%04d", i)
			body, _ := json.Marshal(map[string]any{"recipients": []string{"bob"}, "text": text, "ttl": "10m"})
			req, _ := http.NewRequest("POST", a.url+"/api/v1/messages", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tokens["alice"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == 202 {
				mu.Lock()
				acked = append(acked, text)
				mu.Unlock()
			} else if resp.StatusCode != 503 {
				t.Errorf("publish while the database comes and goes: %d\n%s", resp.StatusCode, a.logs)
			}
			time.Sleep(5 * time.Millisecond) // a steady stream, not a flood
		}
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor(t, "some publishes", func() bool { return count() >= 20 })

	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "/healthz to say the database is away", func() bool { return health(a) == 503 && health(b) == 503 })
	away := count()
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "/healthz to be well again", func() bool { return health(a) == 200 && health(b) == 200 })
	waitFor(t, "publishes after the database came back", func() bool { return count() >= away+20 })
	close(stopPublishing)
	publisher.Wait()

	mu.Lock()
	want := slices.Clone(acked)
	mu.Unlock()
	got := map[string]int{}
	timeout := time.After(20 * time.Second)
	for len(got) < len(want) {
		select {
		case text, ok := <-received:
			if !ok {
				t.Fatalf("the stream on B ended after %d of %d messages", len(got), len(want))
			}
			got[text]++
			if got[text] > 1 {
				t.Fatalf("%s came twice", text)
			}
		case <-timeout:
			t.Fatalf("the stream on B got %d of the %d acknowledged messages", len(got), len(want))
		}
	}
	for _, text := range want {
		if got[text] != 1 {
			t.Fatalf("acknowledged %s never arrived", text)
		}
	}
}

// The login throttle and the publish limit hold for the nodes together: a
// client that spreads its attempts over two nodes gets no more than from one.
func TestNodesShareTheLimits(t *testing.T) {
	db := freshDatabase(t)
	tokens := nodesOffice(t, db, "bob", "carol")
	a, b := startNode(t, db), startNode(t, db)
	login := func(n *node, password string) int {
		resp, err := http.Post(n.url+"/api/v1/login", "application/json", strings.NewReader(`{"login":"carol","password":"`+password+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 10 {
		if got := login(a, "wrong-password"); got != 401 {
			t.Fatalf("wrong password %d on A: %d", i+1, got)
		}
	}
	lets := 0 // wrong passwords B still checks after A's ten
	for got := login(b, "wrong-password"); got != 429; got = login(b, "wrong-password") {
		lets++
		if got != 401 || lets > 2 {
			t.Fatalf("after 10 failures on A, node B checked %d more wrong passwords (last %d)", lets, got)
		}
	}

	// bob, a plain user, publishes his burst of 20 on A; B refuses more.
	var project struct{ ID int64 }
	call(t, "POST", a.url+"/api/v1/projects", tokens["bob"], map[string]any{"name": "Shared"}, 201, &project)
	call(t, "PUT", fmt.Sprintf("%s/api/v1/projects/%d/members/carol", a.url, project.ID), tokens["bob"], map[string]any{"role": "member"}, 200, nil)
	publish := func(n *node) int {
		body := strings.NewReader(`{"recipients":["carol"],"text":"hello"}`)
		req, _ := http.NewRequest("POST", n.url+"/api/v1/messages", body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tokens["bob"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for publish(a) == 202 {
	}
	more := 0 // what B still accepts once A refuses
	for got := publish(b); got != 429; got = publish(b) {
		more++
		if got != 202 || more > 3 {
			t.Fatalf("once A refused bob's publishes, B accepted %d more (last %d)", more, got)
		}
	}
}
