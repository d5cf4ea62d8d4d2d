package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/tidings/tidings"
	tidingshttp "github.com/tidings/tidings/http"
	"github.com/tidings/tidings/hub"
	"github.com/tidings/tidings/metrics"
	"github.com/tidings/tidings/sqlstore"
)

// janitorInterval is how often expired rows are deleted.
const janitorInterval = 15 * time.Second

func (m *Main) runServe(ctx context.Context, args []string) error {
	c := DefaultConfig()
	fs := flagSet("tidings serve", m.Stderr)
	addServeFlags(fs, &c)
	if err := m.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("serve takes no arguments, got %q", fs.Arg(0))
	}
	if err := c.Validate(); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	var tlsConfig *tls.Config
	if c.TLSCert != "" {
		// Before the database is opened: a wrong file is found at once and
		// leaves nothing behind.
		var err error
		if tlsConfig, err = loadTLS(c.TLSCert, c.TLSKey); err != nil {
			return err
		}
	}

	var pm *metrics.Metrics
	var metricsLn net.Listener
	if c.MetricsAddr != "" {
		// Before the database is opened, as the TLS files: a taken port
		// is found at once.
		var err error
		if metricsLn, err = net.Listen("tcp", c.MetricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr %s: %w", c.MetricsAddr, err)
		}
		defer metricsLn.Close()
		pm = metrics.New()
	}

	h := hub.New()
	db := sqlstore.NewDB(c.DB)
	db.SyncFull = c.Sync == "full"
	db.Serving = true
	db.MessageTTL = c.MessageTTL
	db.ReminderLead = c.ReminderLead
	db.Notifier = h
	db.Logger = logger
	if pm != nil {
		db.Metrics = pm
	}
	if err := db.Open(); err != nil {
		return err
	}
	defer db.Close()
	if pm != nil {
		pm.CountStatements(db.StatementCounts)
	}

	var demo *demoSetup
	if c.Demo {
		var err error
		if demo, err = m.setUpDemo(ctx, db); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	} else if n, err := db.CountUsers(ctx); err != nil {
		return err
	} else if n == 0 {
		fmt.Fprintf(m.Stderr, "The database has no users yet. Create the first admin with:\n\n"+
			"  tidings user add --db %s --login admin --name \"Your Name\" --email you@example.org --admin\n\n"+
			"or start with \"tidings serve --demo\" to try Tidings with three demo users.\n\n", sqlstore.Redact(c.DB))
	}

	bg, stopBackground := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { db.RunScheduler(bg) })
	wg.Go(func() { db.RunJanitor(bg, janitorInterval) })
	if demo != nil && c.DemoEvery > 0 {
		wg.Go(func() { runDemoActivity(bg, db, demo.project, demo.carol, c.DemoEvery, logger) })
	}
	defer func() { stopBackground(); wg.Wait() }()

	srv := tidingshttp.NewServer()
	srv.Addr = c.Addr
	srv.PollTimeout = c.PollTimeout
	srv.AllowedOrigins = c.AllowedOrigins
	srv.TrustedProxies = c.TrustedProxies
	srv.UserPublishRate = c.UserPublishRate
	srv.TLSConfig = tlsConfig
	srv.Logger = logger
	srv.AuthService = db
	srv.UserService = db
	srv.ProjectService = db
	srv.MessageService = db
	srv.SettingsService = db
	srv.TodoService = db
	srv.NoteService = db
	srv.AppointmentService = db
	srv.Hub = h
	srv.Ping = db.Ping
	if pm != nil {
		srv.Metrics = pm
	}
	srv.AccessEnds = db.AccessEnds
	if db.Postgres() {
		srv.TellLoginFailure = db.TellLoginFailure
	}
	if err := srv.Open(); err != nil {
		return fmt.Errorf("--addr %s: %w", c.Addr, err)
	}
	if db.Postgres() {
		// Other nodes' commits wake this node's clients, and count against
		// its limits.
		l := &sqlstore.Listener{URL: c.DB, Node: db.Node, Store: db, Notifier: h, Resync: h.WakeAll, Scheduled: db.ScheduleChanged,
			Published: srv.PublishedElsewhere, LoginFailed: srv.LoginFailedElsewhere, Logger: logger}
		wg.Go(func() { l.Run(bg) })
	}
	if metricsLn != nil {
		ms := &http.Server{Handler: pm.Handler(), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
		go func() {
			if err := ms.Serve(metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("serve metrics", "err", err)
			}
		}()
		defer ms.Close()
		u := "http://" + metricsLn.Addr().String() + "/metrics"
		logger.Info("metrics are served", "addr", metricsLn.Addr().String(), "url", u)
		if m.MetricsReady != nil {
			m.MetricsReady(u)
		}
	}
	logger.Info("tidings is listening", "addr", srv.ListenAddr(), "url", srv.URL(), "db", sqlstore.Redact(c.DB))
	if demo != nil {
		demo.print(srv.URL(), c.DemoEvery)
	}
	if m.Serving != nil {
		m.Serving(srv)
	}
	if m.Ready != nil {
		m.Ready(srv.URL())
	}

	<-ctx.Done()
	logger.Info("shutting down")
	start := time.Now()
	if err := srv.Close(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("shutdown", "err", err)
	}
	stopBackground()
	wg.Wait()
	if err := db.Close(); err != nil {
		return err
	}
	logger.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// loadTLS reads the certificate and key files; each error names the flag
// whose file is wrong, which tls.LoadX509KeyPair alone would not tell.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-key: %w", err)
	}
	if err := checkCertificatePEM(certPEM); err != nil {
		return nil, fmt.Errorf("--tls-cert %s: %w", certFile, err)
	}
	// The certificate is sound, so what fails now is the key or the pair.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--tls-key %s: %w", keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}}, nil
}

// checkCertificatePEM reports whether the PEM data starts with a certificate
// that parses.
func checkCertificatePEM(data []byte) error {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return errors.New("no PEM certificate in the file")
		}
		if block.Type == "CERTIFICATE" {
			_, err := x509.ParseCertificate(block.Bytes)
			return err
		}
	}
}

// demoUsers are the people of the demo.
var demoUsers = []struct {
	login, name, role string
}{
	{"alice", "Alice Adams", tidings.RoleAdmin},
	{"bob", "Bob Brown", tidings.RoleUser},
	{"carol", "Carol Clark", tidings.RoleUser},
}

const demoProject = "Office move"

// demoSetup is what serve --demo made: the project, carol, who acts in it,
// and the instructions to print once the server listens.
type demoSetup struct {
	project int64
	carol   *tidings.User
	print   func(url string, every time.Duration)
}

// setUpDemo creates alice, bob and carol and their shared project with a
// few items, or, when they exist from an earlier demo, gives them new
// passwords; it prints the passwords and one API token per user, so that
// the demo can be used at once from a browser or with curl.
func (m *Main) setUpDemo(ctx context.Context, db *sqlstore.DB) (*demoSetup, error) {
	sys := tidings.NewSystemContext(ctx)
	type cred struct{ login, password, token string }
	var creds []cred
	var ids []*tidings.User
	for _, d := range demoUsers {
		password := demoPassword()
		u, err := db.FindUserByLogin(sys, d.login)
		switch {
		case tidings.ErrorCode(err) == tidings.ENOTFOUND:
			u = &tidings.User{Login: d.login, Name: d.name, Email: d.login + "@example.org", Role: d.role}
			if err := db.CreateUser(sys, u, password); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		default:
			if _, err := db.UpdateUser(sys, d.login, tidings.UserUpdate{Password: &password}); err != nil {
				return nil, err
			}
		}
		t := &tidings.Token{UserID: u.ID, Name: "demo", Scopes: []string{tidings.ScopeUser}}
		if err := db.CreateToken(sys, t); err != nil {
			return nil, err
		}
		ids = append(ids, u)
		creds = append(creds, cred{d.login, password, t.Secret})
	}

	// The project is alice's; bob and carol join it.
	aliceCtx := tidings.NewContextWithAuth(ctx, &tidings.Auth{User: ids[0]})
	projects, _, err := db.FindProjects(aliceCtx, tidings.ProjectFilter{Limit: tidings.MaxPageSize})
	if err != nil {
		return nil, err
	}
	var project *tidings.Project
	for _, p := range projects {
		if p.Name == demoProject {
			project = p
		}
	}
	if project == nil {
		project = &tidings.Project{Name: demoProject, Description: "Everything about moving to the new office."}
		if err := db.CreateProject(aliceCtx, project); err != nil {
			return nil, err
		}
		for _, u := range ids[1:] {
			if _, err := db.SetMember(aliceCtx, project.ID, u.Login, tidings.ProjectMember); err != nil {
				return nil, err
			}
		}
		if err := fillDemoProject(ctx, db, project.ID, ids[0], ids[1], ids[2]); err != nil {
			return nil, err
		}
	}

	print := func(url string, every time.Duration) {
		w := m.Stdout
		fmt.Fprintf(w, "Demo: project %q (id %d) shared by alice, bob and carol.\n\n", project.Name, project.ID)
		fmt.Fprintf(w, "  %-6s  %-20s  %s\n", "login", "password", "API token")
		for _, c := range creds {
			fmt.Fprintf(w, "  %-6s  %-20s  %s\n", c.login, c.password, c.token)
		}
		fmt.Fprintf(w, "\nOpen %s/ in your browser and log in as bob (password %s).\n", url, creds[1].password)
		fmt.Fprintf(w, "Log in as alice (password %s) in another browser or a private window, and change\n"+
			"something: bob's pages show it at once, in an info box and in their lists.\n", creds[0].password)
		if every > 0 {
			fmt.Fprintf(w, "Carol changes something every %s, so bob sees info boxes even without a second window.\n", every)
		}
		fmt.Fprintf(w, "\nOr try the API: hold a poll as bob, then publish as alice:\n\n"+
			"  curl -s -H 'Authorization: Bearer %s' '%s/api/v1/poll?timeout=25'\n"+
			"  curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \\\n"+
			"       -d '{\"recipients\":[\"bob\"],\"text\":\"Hello Bob\"}' %s/api/v1/messages\n\n"+
			"Passwords and tokens are new on every start with --demo.\n\n",
			creds[1].token, url, creds[0].token, url)
	}
	return &demoSetup{project: project.ID, carol: ids[2], print: print}, nil
}

// demoPassword returns a fresh password that is easy to type.
func demoPassword() string {
	const letters = "abcdefghijkmnpqrstuvwxyz23456789"
	b := make([]byte, 12)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b[:4]) + "-" + string(b[4:8]) + "-" + string(b[8:])
}
