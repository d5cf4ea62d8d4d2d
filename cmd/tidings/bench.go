package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"
	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// The bench command runs the standard scenarios against a server it starts
// in a process of its own, on a fresh database, and prints one table: memory per held
// connection at several sizes, publish→delivered latency with them held,
// publishes per second at 1, 16 and 64 publishers, and fan-out to many
// subscribers. It needs no other tool. With --server it measures a running
// server instead, a Tidings or (--target nchan) an nginx with Nchan, so that
// bench/compare.sh puts both side by side with one load generator.

type benchConfig struct {
	sizes      []int
	publishers []int
	transport  []string
	samples    int
	duration   time.Duration
	fanout     int
	idlePolls  int             // polls of the idle scenario
	idleWindow time.Duration   // how long the idle scenario measures
	scenarios  map[string]bool // held, publish, fanout, answer, idle
	tsv        bool            // print key<TAB>value lines for bench/compare.sh
	// scenariosGiven: --scenarios was given; the default's idle is left out
	// where it cannot run.
	scenariosGiven bool

	// target is what the scenarios run against: "tidings" or "nchan" (an
	// nginx with Nchan, as bench/compare.sh configures it).
	target string
	// server, if set, is the URL of a running server: every scenario runs
	// on it rather than on a server of its own. pidFile, if set, holds its
	// process id, whose memory (with its children's) the bench reads.
	server  string
	pidFile string
	// metrics, with --server, is the running Tidings' metrics URL, which
	// the idle scenario reads.
	metrics string
	// login is an admin of the running Tidings, whose password is read from
	// standard input: the bench makes its users with it.
	login string
}

func (m *Main) runBench(ctx context.Context, args []string) error {
	var c benchConfig
	fs := flagSet("tidings bench", m.Stderr)
	sizes := fs.String("sizes", "1000,5000,9000", "held connections to measure at, comma-separated")
	transports := fs.String("transports", "poll,sse,ws", "transports of the held connections")
	publishers := fs.String("publishers", "1,16,64", "concurrent publishers of the publish scenario, comma-separated")
	fs.IntVar(&c.samples, "samples", 300, "publishes per latency measurement, after a few unmeasured ones")
	fs.DurationVar(&c.duration, "duration", 3*time.Second, "how long each throughput run lasts")
	fs.IntVar(&c.fanout, "fanout", 2000, "subscribers of the fan-out scenario")
	fs.IntVar(&c.idlePolls, "idle-polls", 1000, "polls the idle scenario holds")
	fs.DurationVar(&c.idleWindow, "idle-window", time.Minute, "how long the idle scenario counts statements")
	scenarios := fs.String("scenarios", "held,publish,fanout,idle", "scenarios to run: held (memory and latency), publish (publishes/s), fanout, answer (publish→answered, paced as the latency samples), idle (database statements per idle poll per minute)")
	format := fs.String("format", "table", "table, or tsv: one key<TAB>value line per figure")
	fs.StringVar(&c.target, "target", "tidings", "what to measure: tidings, or with --server nchan or empty (bench/empty, publishes only; see bench/compare.sh)")
	fs.StringVar(&c.server, "server", "", "URL of a running server to measure instead of starting one per scenario")
	fs.StringVar(&c.pidFile, "pid-file", "", "with --server: the file holding its process id, to read its memory")
	fs.StringVar(&c.metrics, "metrics", "", "with --server and the idle scenario: the running Tidings' metrics URL (its --metrics-addr), such as http://127.0.0.1:9090/metrics")
	fs.StringVar(&c.login, "login", "", "with --server and Tidings: an admin's login (password on stdin), to make the bench's users")
	if err := m.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("bench takes no arguments, got %q", fs.Arg(0))
	}
	var err error
	if c.sizes, err = benchCounts("--sizes", *sizes, "connections"); err != nil {
		return err
	}
	if c.publishers, err = benchCounts("--publishers", *publishers, "publishers"); err != nil {
		return err
	}
	for _, t := range strings.Split(*transports, ",") {
		if t = strings.TrimSpace(t); t != "poll" && t != "sse" && t != "ws" {
			return usagef("--transports: %q is not poll, sse or ws", t)
		}
		c.transport = append(c.transport, t)
	}
	if err := c.parseScenarios(*scenarios, *format); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) { c.scenariosGiven = c.scenariosGiven || f.Name == "scenarios" })
	if err := c.validateTarget(); err != nil {
		return err
	}
	if c.samples < 10 || c.fanout < 1 || c.duration < 100*time.Millisecond {
		return usagef("--samples must be at least 10, --fanout at least 1, --duration at least 100ms")
	}
	if c.idlePolls < 1 || c.idlePolls > 15000 || c.idleWindow < time.Second {
		return usagef("--idle-polls must be from 1 to 15000, --idle-window at least 1s")
	}
	b := &bench{out: m.Stdout, cfg: c}
	if c.login != "" {
		password, err := m.readLoginPassword()
		if err != nil {
			return err
		}
		b.password = password
	}
	return b.run(ctx)
}

// benchCounts parses a flag's comma-separated list of counts from 1 to
// 15,000 (what one process can hold open here) of what.
func benchCounts(flag, list, what string) ([]int, error) {
	var counts []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 15000 {
			return nil, usagef("%s: %q is not a number of %s from 1 to 15000", flag, s, what)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

type bench struct {
	out          io.Writer
	cfg          benchConfig
	url          string
	metricsURL   string // the server's metrics, for the idle scenario
	pid          int
	publishToken string
	tokens       map[string]string // user token by login
	client       *http.Client

	// With a running Tidings (--server): the admin's password, and the
	// logins the bench made there for its users, by the names above.
	password string
	admin    *http.Client // the admin's session
	logins   map[string]string
	// userPassword is the password of the bench's users, with which the
	// idle scenario logs its user in to make a token per poll.
	userPassword string
}

var (
	benchListening = regexp.MustCompile(`msg="tidings is listening".* url=(\S+)`)
	benchMetrics   = regexp.MustCompile(`msg="metrics are served".* url=(\S+)`)
)

// start makes a database with the bench's users and serves it from a
// second process, so that the server's memory is its own.
func (b *bench) start(ctx context.Context) (stop func(), err error) {
	if b.cfg.server != "" {
		return b.startRunning(ctx)
	}
	dir, err := os.MkdirTemp("", "tidings-bench-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "tidings.db")
	db := sqlstore.NewDB(path)
	if err := db.Open(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	sys := tidings.NewSystemContext(ctx)
	b.userPassword = "bench-password"
	hash, err := sqlstore.HashPassword(b.userPassword)
	if err != nil {
		return nil, err
	}
	b.tokens = map[string]string{}
	for _, login := range []string{"publisher", "idle", "target", "sink", "fan"} {
		u := &tidings.User{Login: login, Name: login, Email: login + "@example.org", Role: tidings.RoleUser}
		if login == "publisher" {
			u.Role = tidings.RoleAdmin
		}
		if err := db.ImportUser(sys, u, hash); err != nil {
			return nil, err
		}
		scope := tidings.ScopeUser
		if login == "publisher" {
			scope = tidings.ScopePublish
		}
		t := &tidings.Token{UserID: u.ID, Name: "bench", Scopes: []string{scope}}
		if err := db.CreateToken(sys, t); err != nil {
			return nil, err
		}
		b.tokens[login] = t.Secret
	}
	b.publishToken = b.tokens["publisher"]
	db.Close()

	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	serveArgs := []string{"serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--db", path, "--poll-timeout", "5m"}
	cmd := exec.CommandContext(ctx, exe, serveArgs...)
	if strings.HasSuffix(exe, ".test") {
		// Run from the tests, the binary is the test binary, which serves
		// when told to (see TestMain).
		cmd = exec.CommandContext(ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "TIDINGS_TEST_NODE=1", "TIDINGS_TEST_NODE_ARGS="+strings.Join(serveArgs, "\x1f"))
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 1)
	metricsURL := make(chan string, 1) // logged before the server listens
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := benchMetrics.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case metricsURL <- m[1]:
				default:
				}
			}
			if m := benchListening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
		}
		os.RemoveAll(dir)
	}
	select {
	case b.url = <-found:
	case <-time.After(30 * time.Second):
		stop()
		return nil, fmt.Errorf("the server did not start within 30 s")
	}
	select {
	case b.metricsURL = <-metricsURL:
	default:
		b.metricsURL = ""
	}
	b.pid = cmd.Process.Pid
	return stop, nil
}

// rss is the server's resident memory in bytes, 0 if it cannot be read.
func (b *bench) rss() int64 {
	if b.pid == 0 {
		return 0
	}
	return treeRSS(b.pid)
}

// settled waits until the server's memory stops growing: every connection
// opened is held by then.
func (b *bench) settled(ctx context.Context) int64 {
	last := b.rss()
	for still := 0; still < 5 && ctx.Err() == nil; {
		time.Sleep(200 * time.Millisecond)
		now := b.rss()
		if now-last < 64<<10 {
			still++
		} else {
			still = 0
		}
		last = now
	}
	return last
}

func (b *bench) request(ctx context.Context, method, path, token, body string) (*http.Response, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.url+path, r)
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return b.client.Do(req)
}

type pollAnswer struct {
	Messages []struct{ Text string } `json:"messages"`
	Cursor   string                  `json:"cursor"`
}

func (b *bench) poll(ctx context.Context, login, query string) (pollAnswer, error) {
	return b.pollWith(ctx, b.tokens[login], query)
}

// pollWith is poll with a token of the caller's.
func (b *bench) pollWith(ctx context.Context, token, query string) (pollAnswer, error) {
	var p pollAnswer
	resp, err := b.request(ctx, "GET", "/api/v1/poll?"+query, token, "")
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return p, fmt.Errorf("poll: %s", resp.Status)
	}
	return p, json.NewDecoder(resp.Body).Decode(&p)
}

func (b *bench) publishTo(ctx context.Context, login, text string) error {
	if b.nchan() {
		return b.nchanPublish(ctx, login, text)
	}
	body, _ := json.Marshal(map[string]any{"recipients": []string{b.loginOf(login)}, "text": text})
	resp, err := b.request(ctx, "POST", "/api/v1/messages", b.publishToken, string(body))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		return fmt.Errorf("publish: %s", resp.Status)
	}
	return nil
}

// sampleConn is a kept-alive connection of the load generator's own, on
// which a latency measurement writes prepared requests and reads their
// answers itself, as the throughput scenario publishes: net/http's client
// hands each request and answer between goroutines of its own, which on
// these shared cores added about 0.1 ms to every sample and most of the
// tail, whichever server answered. A measurement has two: the subscriber's,
// whose poll is written before the sample is published and read after the
// publish's answer, and the publisher's.
type sampleConn struct {
	addr string
	tls  *tls.Config // over HTTPS
	conn net.Conn    // nil after the server closed it: dialled again
	br   *bufio.Reader
}

// sampleConn dials a connection to the server for latency samples. Over
// HTTPS it trusts what the bench's client trusts.
func (b *bench) sampleConn(ctx context.Context) (*sampleConn, error) {
	u, err := url.Parse(b.url)
	if err != nil {
		return nil, err
	}
	c := &sampleConn{addr: u.Host}
	port := "80"
	if u.Scheme == "https" {
		port, c.tls = "443", &tls.Config{}
		if t, ok := b.client.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
			c.tls = t.TLSClientConfig.Clone()
		}
		c.tls.ServerName = u.Hostname()
	}
	if u.Port() == "" {
		c.addr = net.JoinHostPort(u.Hostname(), port)
	}
	return c, c.dial(ctx)
}

func (c *sampleConn) dial(ctx context.Context) error {
	var conn net.Conn
	var err error
	if c.tls != nil {
		conn, err = (&tls.Dialer{Config: c.tls}).DialContext(ctx, "tcp", c.addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", c.addr)
	}
	if err != nil {
		return err
	}
	c.conn, c.br = conn, bufio.NewReader(conn)
	return nil
}

// send writes a request, dialling again if the server closed the
// connection after its last answer.
func (c *sampleConn) send(ctx context.Context, req []byte) error {
	if c.conn == nil {
		if err := c.dial(ctx); err != nil {
			return err
		}
	}
	c.conn.SetDeadline(time.Now().Add(90 * time.Second))
	_, err := c.conn.Write(req)
	return err
}

// receive reads the answer to the request sent last, with its body.
func (c *sampleConn) receive() (*http.Response, []byte, error) {
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Close { // the server ends the connection after this answer
		c.close()
		c.conn = nil
	}
	return resp, body, err
}

func (c *sampleConn) close() {
	if c.conn != nil {
		c.conn.Close()
	}
}

// publishSample publishes a latency sample on c and reads the answer.
func (b *bench) publishSample(ctx context.Context, c *sampleConn, login, text string) error {
	if err := c.send(ctx, b.publishRequest(c.addr, login, text)); err != nil {
		return err
	}
	resp, _, err := c.receive()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("publish: %s", resp.Status)
	}
	return nil
}

// hold opens n connections of the idle user on a transport and keeps them
// until the returned function is called.
func (b *bench) hold(ctx context.Context, transport string, n int) (release func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var failed atomic.Int64
	wsURL := "ws" + strings.TrimPrefix(b.url, "http") + "/api/v1/ws"
	for range n {
		wg.Go(func() {
			if b.nchan() {
				if !b.nchanHold(ctx, transport) && ctx.Err() == nil {
					failed.Add(1)
				}
				return
			}
			switch transport {
			case "poll":
				for ctx.Err() == nil {
					resp, err := b.request(ctx, "GET", "/api/v1/poll?timeout=300", b.tokens["idle"], "")
					if err != nil {
						if ctx.Err() == nil {
							failed.Add(1)
						}
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			case "sse":
				resp, err := b.request(ctx, "GET", "/api/v1/stream", b.tokens["idle"], "")
				if err != nil {
					failed.Add(1)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			case "ws":
				c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + b.tokens["idle"]}}})
				if err != nil {
					failed.Add(1)
					return
				}
				c.CloseRead(ctx)
				<-ctx.Done()
				c.CloseNow()
			}
		})
	}
	return func() { cancel(); wg.Wait() }, nil
}

// latency measures publish→delivered for the target's long poll. The load
// generator's own garbage collector stays off meanwhile (the samples make a
// few megabytes of garbage): with thousands of held connections to scan, a
// collection here would pause the client, not the server, and count in the
// server's tail.
func (b *bench) latency(ctx context.Context, samples int) (p50, p99, max time.Duration, err error) {
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	if b.nchan() {
		return b.nchanLatency(ctx, samples)
	}
	start, err := b.poll(ctx, "target", "timeout=0")
	if err != nil {
		return 0, 0, 0, err
	}
	cursor := start.Cursor
	return b.sampleLatency(ctx, samples, func(host string) []byte {
		return fmt.Appendf(nil, "GET /api/v1/poll?timeout=60&since=%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n",
			url.QueryEscape(cursor), host, b.tokens["target"])
	}, func(resp *http.Response, body []byte) error {
		var p pollAnswer
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &p) != nil || len(p.Messages) == 0 {
			return fmt.Errorf("poll: %s, %.200s", resp.Status, body)
		}
		cursor = p.Cursor
		return nil
	})
}

// sampleLatency times publish→delivered for the target's long poll, for
// Tidings and Nchan alike: for each sample it writes the poll that poll
// makes (the request after the last answer), publishes the sample, then
// reads the poll's answer and gives it to answered, untimed. Without a
// poll it times publish→answered alone.
func (b *bench) sampleLatency(ctx context.Context, samples int, poll func(host string) []byte, answered func(*http.Response, []byte) error) (p50, p99, max time.Duration, err error) {
	pub, err := b.sampleConn(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	defer pub.close()
	var sub *sampleConn
	if poll != nil {
		if sub, err = b.sampleConn(ctx); err != nil {
			return 0, 0, 0, err
		}
		defer sub.close()
	}
	var d []time.Duration
	for i := range latencyWarmup + samples {
		if sub != nil {
			if err := sub.send(ctx, poll(sub.addr)); err != nil {
				return 0, 0, 0, err
			}
		}
		time.Sleep(samplePause) // the poll is held by then, almost always
		sent := time.Now()
		if err := b.publishSample(ctx, pub, "target", fmt.Sprintf("sample %d", i)); err != nil {
			return 0, 0, 0, err
		}
		if sub == nil {
			d = append(d, time.Since(sent))
			continue
		}
		resp, body, err := sub.receive()
		if err != nil {
			return 0, 0, 0, err
		}
		d = append(d, time.Since(sent))
		if err := answered(resp, body); err != nil {
			return 0, 0, 0, err
		}
	}
	p50, p99, max = latencyFigures(d)
	return p50, p99, max, nil
}

// samplePause is how long the load generator waits before each latency
// sample's publish: the cores are idle when it is sent.
const samplePause = 2 * time.Millisecond

// answerLatency times publish→answered alone, with the publishes paced as
// the latency samples are. Against bench/empty it is the least a latency
// sample costs on the machine: waking an idle server, and the load
// generator, for a round trip.
func (b *bench) answerLatency(ctx context.Context, samples int) (p50, p99, max time.Duration, err error) {
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	return b.sampleLatency(ctx, samples, nil, nil)
}

// latencyWarmup is how many publishes each latency measurement makes before
// the samples it counts, for Tidings and Nchan alike. The first pays what a
// server that has run for a while paid long ago: its statements prepared on
// first use, the subscriber's connection dialled. Left in, it is the
// maximum of every row and one of the three samples above p99.
const latencyWarmup = 10

// latencyFigures returns p50, p99 and the maximum of the samples after the
// warm-up.
func latencyFigures(d []time.Duration) (p50, p99, max time.Duration) {
	d = slices.Clone(d[min(latencyWarmup, len(d)):])
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100], d[len(d)-1]
}

// throughput publishes from n concurrent publishers for the bench's
// duration, each on a keep-alive connection of its own that writes a
// prepared request and reads its answer: net/http's client would cost the
// load generator, which shares the cores with the server, several times
// more than the servers spend on a publish.
func (b *bench) throughput(ctx context.Context, n int) (float64, error) {
	u, err := url.Parse(b.url)
	if err != nil || u.Scheme != "http" {
		return b.throughputClient(ctx, n)
	}
	req := b.publishRequest(u.Host, "sink", "throughput")
	deadline := time.Now().Add(b.cfg.duration)
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for range n {
		wg.Go(func() {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			conn.SetDeadline(deadline)
			br := bufio.NewReader(conn)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if _, err := conn.Write(req); err != nil {
					break
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					break
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusCreated {
					errs <- fmt.Errorf("publish: %s", resp.Status)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return float64(done.Load()) / elapsed.Seconds(), nil
}

// publishRequest is the HTTP/1.1 request of one publish to a user (a
// channel of Nchan's), as publishTo sends it.
func (b *bench) publishRequest(host, login, text string) []byte {
	path, auth, body := "/pub/"+login, "", text
	if !b.nchan() {
		data, _ := json.Marshal(map[string]any{"recipients": []string{b.loginOf(login)}, "text": text})
		path, auth, body = "/api/v1/messages", "Authorization: Bearer "+b.publishToken+"\r\nContent-Type: application/json\r\n", string(data)
	}
	return fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n%s", path, host, auth, len(body), body)
}

// throughputClient is throughput through net/http's client, for HTTPS.
func (b *bench) throughputClient(ctx context.Context, n int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.duration)
	defer cancel()
	var done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := b.publishTo(ctx, "sink", "throughput"); err == nil {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds(), nil
}

// fanout opens n streams of one user and publishes to them, measuring each
// delivery from the moment its publish was sent: Nchan answers a publish
// after writing it to every subscriber, Tidings once it is committed, so
// timing from the answer would favour the one that answers last.
func (b *bench) fanout(ctx context.Context, n, messages int) (perSecond float64, p99 time.Duration, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var start pollAnswer
	if !b.nchan() {
		if start, err = b.poll(ctx, "fan", "timeout=0"); err != nil {
			return 0, 0, err
		}
	}
	var ready sync.WaitGroup
	var mu sync.Mutex
	got := map[string][]time.Time{}
	var all sync.WaitGroup
	for range n {
		ready.Add(1)
		all.Go(func() {
			var resp *http.Response
			var err error
			if b.nchan() {
				resp, err = b.nchanSubscribe(ctx, "sse", "fan")
			} else {
				resp, err = b.request(ctx, "GET", "/api/v1/stream?since="+start.Cursor, b.tokens["fan"], "")
			}
			if err != nil {
				ready.Done()
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			first := true
			seen := 0
			for sc.Scan() {
				line := sc.Text()
				if first {
					first = false
					ready.Done()
				}
				if text, ok := strings.CutPrefix(line, "data: "); ok {
					var m struct{ Text string }
					if b.nchan() {
						m.Text = text // Nchan sends what was published
					}
					if m.Text != "" || json.Unmarshal([]byte(text), &m) == nil {
						mu.Lock()
						got[m.Text] = append(got[m.Text], time.Now())
						mu.Unlock()
						if seen++; seen == messages {
							return
						}
					}
				}
			}
		})
	}
	ready.Wait()
	sent := map[string]time.Time{}
	first := time.Now()
	for i := range messages {
		text := fmt.Sprintf("fan %d", i)
		sent[text] = time.Now()
		if err := b.publishTo(ctx, "fan", text); err != nil {
			return 0, 0, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	finished := make(chan struct{})
	go func() { all.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	var d []time.Duration
	last := first
	for text, times := range got {
		for _, t := range times {
			d = append(d, t.Sub(sent[text]))
			if t.After(last) {
				last = t
			}
		}
	}
	if len(d) == 0 {
		return 0, 0, fmt.Errorf("fan-out: nothing was delivered")
	}
	slices.Sort(d)
	return float64(len(d)) / last.Sub(first).Seconds(), d[len(d)*99/100], nil
}

// run runs every scenario on a server of its own, so that what one leaves
// behind (memory the runtime keeps, connections) does not count in the next;
// with --server, every scenario runs on that one.
func (b *bench) run(ctx context.Context) error {
	w := tabwriter.NewWriter(b.out, 2, 8, 2, ' ', 0)
	if !b.cfg.tsv {
		when := time.Now().UTC().Format("2006-01-02 15:04 MST")
		switch {
		case b.nchan():
			fmt.Fprintf(b.out, "Nchan at %s, %s, the same scenarios (held connections subscribe to one channel)\n\n", b.cfg.server, when)
		case b.empty():
			fmt.Fprintf(b.out, "An empty HTTP server at %s, %s, answering Tidings' publishes\n\n", b.cfg.server, when)
		case b.cfg.server != "":
			fmt.Fprintf(b.out, "Tidings bench, %s, every scenario on the running server at %s\n\n", when, b.cfg.server)
		default:
			fmt.Fprintf(b.out, "Tidings bench, %s, each scenario on a server of its own on a fresh SQLite database\n\n", when)
		}
		fmt.Fprintln(w, "scenario\tsize\tresult")
	}
	// row prints a line of the table, or its figures as key<TAB>value.
	row := func(scenario, size, result string, figures ...benchFigure) error {
		if b.cfg.tsv {
			for _, f := range figures {
				fmt.Fprintf(b.out, "%s\t%s\n", f.key, f.value)
			}
			return nil
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", scenario, size, result)
		return w.Flush()
	}
	fresh := func(scenario func() error) error {
		stop, err := b.start(ctx)
		if err != nil {
			return err
		}
		defer stop()
		b.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 20000, IdleConnTimeout: time.Minute}}
		defer b.client.CloseIdleConnections()
		return scenario()
	}
	if b.cfg.server != "" && b.cfg.target == "tidings" {
		defer b.removeUsers()
	}
	for _, transport := range b.cfg.transport {
		for _, n := range b.cfg.sizes {
			if !b.cfg.scenarios["held"] {
				break
			}
			err := fresh(func() error {
				before := b.settled(ctx)
				release, err := b.hold(ctx, transport, n)
				if err != nil {
					return err
				}
				defer release()
				after := b.settled(ctx)
				p50, p99, max, err := b.latency(ctx, b.cfg.samples)
				if err != nil {
					return err
				}
				key := fmt.Sprintf("held.%s.%d.", transport, n)
				figures := []benchFigure{{key + "p50", ms(p50)}, {key + "p99", ms(p99)}, {key + "max", ms(max)}}
				mem := "n/a"
				if before > 0 && after > 0 {
					kb := float64(after-before) / float64(n) / 1024
					mem = fmt.Sprintf("%.1f KB per held connection", kb)
					figures = append(figures, benchFigure{key + "kb", fmt.Sprintf("%.1f", kb)})
				}
				return row("held "+transport, strconv.Itoa(n), fmt.Sprintf("%s; publish→delivered p50 %s, p99 %s, max %s", mem, millis(p50), millis(p99), millis(max)), figures...)
			})
			if err != nil {
				return err
			}
		}
	}
	if b.cfg.scenarios["answer"] {
		err := fresh(func() error {
			p50, p99, max, err := b.answerLatency(ctx, b.cfg.samples)
			if err != nil {
				return err
			}
			return row("publish→answered", fmt.Sprintf("one every %s", samplePause), fmt.Sprintf("p50 %s, p99 %s, max %s", millis(p50), millis(p99), millis(max)),
				benchFigure{"answer.p50", ms(p50)}, benchFigure{"answer.p99", ms(p99)}, benchFigure{"answer.max", ms(max)})
		})
		if err != nil {
			return err
		}
	}
	if b.cfg.scenarios["publish"] {
		err := fresh(func() error {
			for _, n := range b.cfg.publishers {
				rate, err := b.throughput(ctx, n)
				if err != nil {
					return err
				}
				kind := "durable publishes/s"
				if b.nchan() {
					kind = "publishes/s, in memory"
				} else if b.empty() {
					kind = "publishes/s, answered without any work"
				}
				err = row("publishes/s", fmt.Sprintf("%d publishers", n), fmt.Sprintf("%.0f %s", rate, kind),
					benchFigure{fmt.Sprintf("publish.%d.rate", n), fmt.Sprintf("%.0f", rate)})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if b.cfg.scenarios["fanout"] {
		err := fresh(func() error {
			rate, p99, err := b.fanout(ctx, b.cfg.fanout, 20)
			if err != nil {
				return err
			}
			key := fmt.Sprintf("fanout.%d.", b.cfg.fanout)
			return row("fan-out", fmt.Sprintf("%d subscribers", b.cfg.fanout), fmt.Sprintf("%.0f deliveries/s, p99 %s", rate, millis(p99)),
				benchFigure{key + "rate", fmt.Sprintf("%.0f", rate)}, benchFigure{key + "p99", ms(p99)})
		})
		if err != nil {
			return err
		}
	}
	if !b.cfg.scenarios["idle"] {
		return nil
	}
	return fresh(func() error {
		r, err := b.idle(ctx, b.cfg.idlePolls, b.cfg.idleWindow)
		if err != nil {
			return err
		}
		size, result, figures := idleRow(b.cfg.idlePolls, b.cfg.idleWindow, r)
		return row("idle polls", size, result, figures...)
	})
}

// benchFigure is one figure of the bench's --format tsv: its key, such as
// held.poll.1000.kb, and its value in KB, ms or per second.
type benchFigure struct{ key, value string }

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

func millis(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
