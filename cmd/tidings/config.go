package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	tidingshttp "github.com/tidings/tidings/http"
	"github.com/tidings/tidings/sqlstore"
)

// Config is the server's configuration, from flags and TIDINGS_* variables.
type Config struct {
	Addr           string
	DB             string
	PollTimeout    time.Duration
	MessageTTL     time.Duration
	ReminderLead   time.Duration
	AllowedOrigins []string
	LogLevel       slog.Level
	Demo           bool
	DemoEvery      time.Duration

	// TrustedProxies are believed in X-Forwarded-For and X-Forwarded-Proto.
	TrustedProxies []netip.Prefix

	// UserPublishRate is a plain user's messages a second; 0 is unlimited.
	UserPublishRate float64

	// TLSCert and TLSKey are PEM files; with both, serve speaks HTTPS.
	TLSCert string
	TLSKey  string

	// MetricsAddr, if set, is a listen address of its own for GET /metrics,
	// apart from Addr so that only the operator reaches it.
	MetricsAddr string

	// Sync is how a SQLite commit waits: "normal" (survives kill -9 of the
	// process) or "full" (waits for the disk: survives power loss).
	Sync string
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Addr:         "127.0.0.1:8080",
		DB:           "./tidings-data/tidings.db",
		PollTimeout:  25 * time.Second,
		MessageTTL:   2 * time.Minute,
		ReminderLead: 15 * time.Minute,
		LogLevel:     slog.LevelInfo,
		Sync:         "normal",

		UserPublishRate: tidingshttp.DefaultUserPublishRate,
	}
}

// flagSet returns a flag set for a command that prints its help to w and
// leaves error reporting to the caller.
func flagSet(name string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	return fs
}

// parseFlags parses args, after taking, for every flag not given, its
// TIDINGS_* variable. Errors name the flag or the variable.
func (m *Main) parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usagef("%s", err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		env := envName(f.Name)
		if v := m.Getenv(env); v != "" {
			if e := f.Value.Set(v); e != nil {
				err = usagef("%s=%q: %v", env, v, e)
			}
		}
	})
	return err
}

// envName is the variable of a flag: --poll-timeout is TIDINGS_POLL_TIMEOUT.
func envName(flagName string) string {
	return "TIDINGS_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// addDBFlag adds --db to a command.
func addDBFlag(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.DB, "db", c.DB, "a SQLite file path, or a PostgreSQL database's postgres:// or postgresql:// URL (several servers may share one)")
}

// addServeFlags adds the server's flags.
func addServeFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (:0 picks a free port)")
	addDBFlag(fs, c)
	fs.DurationVar(&c.PollTimeout, "poll-timeout", c.PollTimeout, "longest hold of a long poll")
	fs.DurationVar(&c.MessageTTL, "message-ttl", c.MessageTTL, "message lifetime after valid_from")
	fs.DurationVar(&c.ReminderLead, "reminder-lead", c.ReminderLead, "default lead time of appointment reminders")
	fs.Func("allowed-origins", "comma-separated origins allowed to call the API cross-origin", func(v string) error {
		c.AllowedOrigins = nil
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				c.AllowedOrigins = append(c.AllowedOrigins, strings.TrimSuffix(o, "/"))
			}
		}
		return nil
	})
	fs.Func("log-level", "debug, info, warn or error (default info)", func(v string) error {
		switch strings.ToLower(v) {
		case "debug":
			c.LogLevel = slog.LevelDebug
		case "info":
			c.LogLevel = slog.LevelInfo
		case "warn", "warning":
			c.LogLevel = slog.LevelWarn
		case "error":
			c.LogLevel = slog.LevelError
		default:
			return fmt.Errorf("must be debug, info, warn or error")
		}
		return nil
	})
	fs.Func("trusted-proxies", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For/-Proto are believed (a bare IP is one host)", func(v string) error {
		p, err := tidingshttp.ParseTrustedProxies(v)
		if err != nil {
			return err
		}
		c.TrustedProxies = p
		return nil
	})
	fs.Float64Var(&c.UserPublishRate, "user-publish-rate", c.UserPublishRate, "messages a second a plain user may publish, after bursts of 20 (0: unlimited)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate file (with --tls-key: serve HTTPS directly)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key file of --tls-cert")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "listen address of GET /metrics in Prometheus format, e.g. 127.0.0.1:9090, apart from --addr (default: no metrics)")
	fs.Func("sync", "how a SQLite commit waits: normal (it survives kill -9 of the process) or full (it waits for the disk and survives power loss, at a cost in publishes/s)", func(v string) error {
		if v != "normal" && v != "full" {
			return fmt.Errorf("must be normal or full, not %q", v)
		}
		c.Sync = v
		return nil
	})
	fs.BoolVar(&c.Demo, "demo", false, "create three users and a shared project to try Tidings at once")
	fs.DurationVar(&c.DemoEvery, "demo-every", c.DemoEvery, "with --demo, how often carol changes something (0: never)")
}

// Validate checks the values, naming the flag that is wrong.
func (c *Config) Validate() error {
	if c.Addr == "" {
		return usagef("--addr must not be empty")
	}
	if err := validateDB(c.DB); err != nil {
		return err
	}
	switch {
	case c.PollTimeout < time.Second || c.PollTimeout > 5*time.Minute:
		return usagef("--poll-timeout must be between 1s and 5m, not %s", c.PollTimeout)
	case c.MessageTTL < time.Second || c.MessageTTL > 24*time.Hour:
		return usagef("--message-ttl must be between 1s and 24h, not %s", c.MessageTTL)
	case c.ReminderLead < 0 || c.ReminderLead > 7*24*time.Hour:
		return usagef("--reminder-lead must be between 0 and 168h, not %s", c.ReminderLead)
	case c.ReminderLead%time.Minute != 0:
		return usagef("--reminder-lead must be whole minutes, not %s", c.ReminderLead)
	}
	if r := c.UserPublishRate; math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
		return usagef("--user-publish-rate must be 0 (unlimited) or a positive number of messages a second, not %v", r)
	}
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		return usagef("--tls-cert needs --tls-key, the file with its private key")
	case c.TLSKey != "" && c.TLSCert == "":
		return usagef("--tls-key needs --tls-cert, the file with its certificate")
	}
	if c.MetricsAddr != "" {
		_, port, err := net.SplitHostPort(c.MetricsAddr)
		if err != nil {
			return usagef("--metrics-addr %q is not a listen address such as 127.0.0.1:9090", c.MetricsAddr)
		}
		if c.MetricsAddr == c.Addr && port != "0" { // two :0 are two free ports
			return usagef("--metrics-addr must differ from --addr: metrics are for the operator, not for every client")
		}
	}
	if c.DemoEvery < 0 {
		return usagef("--demo-every must not be negative, not %s", c.DemoEvery)
	}
	for _, o := range c.AllowedOrigins {
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return usagef("--allowed-origins: %q is not an origin such as https://app.example.org", o)
		}
	}
	return nil
}

func validateDB(db string) error {
	if db == "" {
		return usagef("--db must not be empty")
	}
	if sqlstore.IsPostgresURL(db) {
		if _, err := url.Parse(db); err != nil {
			return usagef("--db %s is not a PostgreSQL URL such as postgres://user@host:5432/tidings", sqlstore.Redact(db))
		}
	}
	return nil
}
