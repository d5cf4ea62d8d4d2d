package http

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidings/tidings"
)

// Defaults of the settings a Server takes.
const (
	DefaultPollTimeout  = 25 * time.Second
	DefaultHeartbeat    = 25 * time.Second
	DefaultShutdownWait = 10 * time.Second

	// DefaultUserPublishRate is how many messages a second a plain user may
	// publish, after a burst of 20.
	DefaultUserPublishRate = 5
)

// Server is the HTTP server. Set its fields, then Open it.
type Server struct {
	// Addr is the listen address; ":0" picks a free port.
	Addr string

	// PollTimeout is the longest hold of a long poll, and its default.
	PollTimeout time.Duration

	// Heartbeat is the interval of stream keep-alives.
	Heartbeat time.Duration

	// StreamWriteTimeout bounds how long a stream, or any answer, waits for
	// a client that does not read; the client is dropped then and resumes
	// from its cursor. Zero means DefaultStreamWriteTimeout.
	StreamWriteTimeout time.Duration

	// AllowedOrigins may call the API cross-origin, with credentials.
	AllowedOrigins []string

	// ShutdownWait bounds Close.
	ShutdownWait time.Duration

	// SendBuffer is the kernel's send buffer of each connection, which
	// bounds what a client that does not read holds before its writes
	// block. Zero means connSendBuffer.
	SendBuffer int

	// TrustedProxies are the reverse proxies whose X-Forwarded-For and
	// X-Forwarded-Proto are believed; from anyone else they are ignored.
	TrustedProxies []netip.Prefix

	// UserPublishRate is how many messages a second a plain user (not an
	// admin, not a publish token) may publish, after a burst of 20; zero
	// means unlimited.
	UserPublishRate float64

	// TellLoginFailure, if set, tells the other nodes of a failed login
	// ("address~login"), which count it through LoginFailedElsewhere.
	TellLoginFailure func(ctx context.Context, key string) error

	// TLSConfig, if set, makes the server speak HTTPS with its certificates.
	TLSConfig *tls.Config

	// Now is the clock of the login and publish throttles; nil means
	// time.Now. Tests move it instead of waiting.
	Now func() time.Time

	Logger *slog.Logger

	AuthService        tidings.AuthService
	UserService        tidings.UserService
	ProjectService     tidings.ProjectService
	MessageService     tidings.MessageService
	SettingsService    tidings.SettingsService
	TodoService        tidings.TodoService
	NoteService        tidings.NoteService
	AppointmentService tidings.AppointmentService
	Hub                tidings.Hub

	// Ping reports whether the database answers, for /healthz.
	Ping func(context.Context) error

	// AccessEnds, if set, tells whether every end of a credential reaches
	// the hub at once (the store's AccessEnds): then a cached credential is
	// believed until the store wants it looked up again, not 30 s.
	AccessEnds tidings.AccessEnds

	// Metrics, if set, is told of held polls, open streams and the
	// messages delivered.
	Metrics Metrics

	ln       net.Listener
	handoff  *handoffListener // hands parked connections back to net/http
	poller   *poller          // watches parked connections; nil: none are
	server   *http.Server
	mux      *http.ServeMux
	assets   map[string]asset
	views    views
	auths    authCache
	cop      *http.CrossOriginProtection
	ctx      context.Context // cancelled when Close gives up waiting
	cancel   context.CancelFunc
	draining atomic.Bool
	// shutdownCtx is cancelled when the server starts shutting down.
	shutdownCtx    context.Context
	shutdownCancel context.CancelFunc
	streams        sync.WaitGroup
	closing        sync.Once

	streamsMu sync.Mutex // orders streams.Add against Close's Wait

	connsMu sync.Mutex
	conns   map[net.Conn]http.ConnState // connections that have not sent a request yet

	waiting atomic.Int64 // deliveries waiting for news

	logins    *loginThrottle
	publishes *publishLimiter

	onPasswordCheck func(client netip.Addr) // for tests: counts the hashes computed
}

// NewServer returns a server with default settings.
func NewServer() *Server {
	s := &Server{
		Addr:            "127.0.0.1:8080",
		PollTimeout:     DefaultPollTimeout,
		Heartbeat:       DefaultHeartbeat,
		ShutdownWait:    DefaultShutdownWait,
		UserPublishRate: DefaultUserPublishRate,
		Logger:          slog.Default(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.shutdownCtx, s.shutdownCancel = context.WithCancel(context.Background())
	return s
}

// Open listens on Addr and serves in the background.
func (s *Server) Open() error {
	if err := s.init(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return err
	}
	sendBuffer := s.SendBuffer
	if sendBuffer <= 0 {
		sendBuffer = connSendBuffer
	}
	s.ln = &boundedListener{Listener: ln, sendBuffer: sendBuffer}
	s.server = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelDebug),
		ConnState:         s.trackConn,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	var serveLn net.Listener = s.ln // bounds each connection's send buffer
	if s.TLSConfig == nil {
		// Held connections park without goroutines where the system
		// allows; TLS connections keep theirs.
		if p, err := newPoller(); err == nil {
			s.poller = p
			s.handoff = newHandoffListener(s.ln)
			serveLn = s.handoff
			go s.returnMemory(s.shutdownCtx.Done())
		}
	}
	if s.TLSConfig != nil {
		cfg := s.TLSConfig.Clone()
		// HTTP/1.1 only: WebSocket hijacks its connection, which HTTP/2
		// cannot hand over.
		cfg.NextProtos = []string{"http/1.1"}
		if cfg.MinVersion == 0 {
			cfg.MinVersion = tls.VersionTLS12
		}
		serveLn = tls.NewListener(s.ln, cfg)
	}
	go func() {
		if err := s.server.Serve(serveLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("serve", "err", err)
		}
	}()
	return nil
}

// init builds the routes; Open calls it, and tests that serve the handler
// without a listener.
func (s *Server) init() error {
	if s.mux != nil {
		return nil
	}
	if s.AuthService == nil || s.UserService == nil || s.ProjectService == nil ||
		s.MessageService == nil || s.SettingsService == nil || s.Hub == nil ||
		s.TodoService == nil || s.NoteService == nil || s.AppointmentService == nil {
		return errors.New("http: server is missing a service")
	}
	s.cop = http.NewCrossOriginProtection()
	for _, o := range s.AllowedOrigins {
		if err := s.cop.AddTrustedOrigin(o); err != nil {
			return err
		}
	}
	s.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, tidings.Errorf(tidings.EFORBIDDEN, "Cross-origin request refused."))
	}))
	var err error
	if s.assets, err = loadAssets(); err != nil {
		return fmt.Errorf("http: embedded assets: %w", err)
	}
	if s.views, err = s.loadViews(); err != nil {
		return fmt.Errorf("http: embedded views: %w", err)
	}

	s.logins = newLoginThrottle(s.Now)
	s.publishes = newPublishLimiter(s.UserPublishRate, s.Now)
	s.mux = http.NewServeMux()
	s.registerRoutes()
	return nil
}

// URL is the server's base URL, e.g. http://127.0.0.1:41234, or https://
// with TLSConfig.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http://"
	if s.TLSConfig != nil {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// ListenAddr is the address the server listens on.
func (s *Server) ListenAddr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close shuts the server down gracefully: it answers held polls with what
// they have, ends streams, answers new requests with 503, and waits for the
// handlers to finish, at most ShutdownWait.
func (s *Server) Close() error {
	var err error
	s.closing.Do(func() {
		s.streamsMu.Lock()
		s.draining.Store(true)
		s.streamsMu.Unlock()
		s.shutdownCancel()
		if s.server == nil {
			s.cancel()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.ShutdownWait)
		defer cancel()
		go s.closeSilentConns(ctx)
		err = s.server.Shutdown(ctx)
		done := make(chan struct{})
		go func() { s.streams.Wait(); close(done) }() // hijacked connections
		select {
		case <-done:
		case <-ctx.Done():
		}
		s.cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			s.server.Close()
		}
		if s.poller != nil {
			s.poller.close()
		}
	})
	return err
}

// beginStream counts a hijacked stream that Close must wait for; it
// reports false once the server is shutting down.
func (s *Server) beginStream() (done func(), ok bool) {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	if s.draining.Load() {
		return nil, false
	}
	s.streams.Add(1)
	return s.streams.Done, true
}

// connSendBuffer bounds the kernel's send buffer of each connection (Linux
// doubles it), so that a stream client that stops reading holds about
// 1 MiB of the server's memory before its writes block and it is dropped,
// instead of the several MiB that buffer auto-tuning would grant it.
const connSendBuffer = 512 << 10

type boundedListener struct {
	net.Listener
	sendBuffer int
}

func (l *boundedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(l.sendBuffer)
	}
	return c, err
}

// trackConn remembers connections that were opened but have not sent a
// request: Shutdown would wait for them for 5 s, although most are spares a
// client dialled and never used.
func (s *Server) trackConn(c net.Conn, state http.ConnState) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if state == http.StateNew {
		if s.conns == nil {
			s.conns = make(map[net.Conn]http.ConnState)
		}
		s.conns[c] = state
		return
	}
	delete(s.conns, c)
}

// closeSilentConns closes, shortly after shutdown began, the connections
// that still have not sent a request.
func (s *Server) closeSilentConns(ctx context.Context) {
	select {
	case <-time.After(250 * time.Millisecond):
	case <-ctx.Done():
		return
	}
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	for c := range s.conns {
		c.Close()
		delete(s.conns, c)
	}
}

// Waiting returns how many held polls, streams and sockets wait for news
// right now, parked or not.
func (s *Server) Waiting() int64 { return s.waiting.Load() }

// Draining reports whether the server is shutting down.
func (s *Server) Draining() bool { return s.draining.Load() }

// ServeHTTP answers every request: size limit, shutdown, CORS and
// authentication come before routing, so that an unauthenticated client
// learns nothing about which paths exist.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.mux == nil {
		if err := s.init(); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, writeTimeout: s.streamWriteTimeout()}
	if s.Logger.Enabled(r.Context(), slog.LevelDebug) { // or its arguments are made for nothing
		defer func() {
			s.Logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
		}()
	}
	w = rec
	h := w.Header()
	h["X-Content-Type-Options"] = nosniff // shared, as every answer has them
	h["Referrer-Policy"] = sameOrigin

	if r.ContentLength > MaxBodyBytes {
		w.Header().Set("Connection", "close")
		s.writeError(w, r, errTooLarge())
		return
	}
	if s.draining.Load() {
		w.Header().Set("Connection", "close")
		s.writeError(w, r, tidings.Errorf(tidings.EUNAVAILABLE, "The server is shutting down; try again in a moment."))
		return
	}
	api := strings.HasPrefix(r.URL.Path, "/api/")
	if api && s.cors(w, r) {
		return
	}
	if api && !(r.URL.Path == "/api/v1/login" && r.Method == http.MethodPost) {
		// Read before the credential is checked: a delivery compares it once
		// it waits, to catch a credential that ended in between.
		changes := s.Hub.AccessChanges()
		auth, err := s.authenticate(r)
		if err != nil {
			if tidings.ErrorCode(err) == tidings.EUNAUTHORIZED {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tidings"`)
			}
			s.writeError(w, r, err)
			return
		}
		s.refreshCookie(w, r, auth)
		r = r.WithContext(tidings.NewContextWithAuth(context.WithValue(r.Context(), accessChangesKey{}, changes), auth))
	}
	if !api || r.Header.Get("Authorization") == "" {
		// Cookies ride along with cross-site requests; bearer tokens do not.
		// Page forms (login, logout) are guarded the same way.
		if err := s.cop.Check(r); err != nil {
			s.writeError(w, r, tidings.Errorf(tidings.EFORBIDDEN, "Cross-origin request refused."))
			return
		}
	}
	s.route(w, r)
}

// route dispatches to the mux, answering unknown paths and wrong methods
// with the JSON error body.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r) // sets the path values, which Handler does not
		return
	}
	probe := &probeWriter{header: http.Header{}}
	h.ServeHTTP(probe, r)
	switch probe.code {
	case http.StatusMethodNotAllowed:
		if allow := probe.Header().Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		s.writeErrorStatus(w, http.StatusMethodNotAllowed,
			tidings.Errorf(tidings.EINVALID, "Method %s is not allowed on %s.", r.Method, r.URL.Path))
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		h.ServeHTTP(w, r)
	default:
		err := tidings.Errorf(tidings.ENOTFOUND, "Nothing is at %s.", r.URL.Path)
		if isPagePath(r.URL.Path) {
			var v *view
			if auth, aerr := s.authenticatePage(r); aerr == nil {
				v = &view{User: auth.User, TZ: auth.User.TimeZone}
			}
			s.writePageError(w, r, v, err)
			return
		}
		s.writeError(w, r, err)
	}
}

// probeWriter catches what the mux would answer for an unmatched request
// (404, 405 or a redirect), so that it can be answered with a JSON body.
type probeWriter struct {
	header http.Header
	code   int
}

func (p *probeWriter) Header() http.Header { return p.header }

func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }

func (p *probeWriter) WriteHeader(code int) {
	if p.code == 0 {
		p.code = code
	}
}

// cors answers preflight requests from allowed origins and marks answers to
// them; it reports whether the request was fully answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || !s.originAllowed(origin) {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

func (s *Server) originAllowed(origin string) bool {
	for _, o := range s.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// handlerFunc is a handler that returns its error for one place to render.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers a handler that needs the given access.
func (s *Server) handle(pattern string, need access, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := need.check(tidings.AuthFromContext(r.Context())); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// access says who may call a route.
type access int

const (
	public      access = iota // no credentials needed
	userAccess                // a session, or a token with the user scope
	publishable               // also a token with only the publish scope
	sessionOnly               // a session: tokens may not manage tokens or users
)

func (a access) check(auth *tidings.Auth) error {
	if a == public {
		return nil
	}
	if auth == nil || auth.User == nil {
		return tidings.Errorf(tidings.EUNAUTHORIZED, "Log in or send an API token.")
	}
	switch a {
	case userAccess:
		if !auth.HasScope(tidings.ScopeUser) {
			return tidings.Errorf(tidings.EFORBIDDEN, "This token's scopes do not allow this call; it needs the %q scope.", tidings.ScopeUser)
		}
	case publishable:
		if !auth.HasScope(tidings.ScopeUser) && !auth.HasScope(tidings.ScopePublish) {
			return tidings.Errorf(tidings.EFORBIDDEN, "This token's scopes do not allow publishing.")
		}
	case sessionOnly:
		if auth.Session == nil {
			return tidings.Errorf(tidings.EFORBIDDEN, "API tokens cannot manage tokens or users; log in instead.")
		}
	}
	return nil
}

func (s *Server) registerRoutes() {
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.registerAuthRoutes()
	s.registerUserRoutes()
	s.registerProjectRoutes()
	s.registerSettingsRoutes()
	s.registerTodoRoutes()
	s.registerNoteRoutes()
	s.registerAppointmentRoutes()
	s.registerMessageRoutes()
	s.registerPollRoutes()
	s.registerStreamRoutes()
	s.registerAssetRoutes()
	s.registerPages()
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.Ping != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Ping(ctx); err != nil {
			s.Logger.Warn("health check", "err", err)
			s.writeError(w, r, tidings.Errorf(tidings.EUNAVAILABLE, "The database does not answer."))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// statusRecorder remembers the status for the request log and passes
// everything else through, including Flush and Hijack via Unwrap. When an
// answer starts it gives the writes a deadline: the server has no write
// timeout of its own, as long polls are held for longer, and a client that
// does not read its answer must not hold a goroutine and a buffer for ever.
// A stream sets a deadline of its own for every write it flushes.
type statusRecorder struct {
	http.ResponseWriter
	status       int
	writeTimeout time.Duration
}

func (r *statusRecorder) start(code int) {
	if r.status == 0 {
		r.status = code
		if r.writeTimeout > 0 {
			_ = http.NewResponseController(r.ResponseWriter).SetWriteDeadline(time.Now().Add(r.writeTimeout))
		}
	}
}

func (r *statusRecorder) WriteHeader(code int) {
	r.start(code)
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.start(http.StatusOK)
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
