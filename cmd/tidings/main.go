// Command tidings runs the Tidings server and its administration commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tidings/tidings"
	tidingshttp "github.com/tidings/tidings/http"

	_ "time/tzdata" // time zones work on machines without a zoneinfo database
)

const usage = `Tidings — a team groupware whose changes reach everyone at once.

Usage:
  tidings serve [--demo] [flags]        run the server
  tidings user add --login L --name N --email E [--admin]   (password on stdin)
  tidings token create --user L [--scope publish] [--name N]
  tidings bench [--sizes 1000,5000,9000] [--transports poll,sse,ws]   measure a server it starts
  tidings publish [--to a,b] [--project ID] [--urgent] [--ttl D] [--valid-from T] "text"
  tidings copy --from SQLITE_PATH --to postgres://…   copy everything into an empty PostgreSQL database

Run "tidings <command> --help" for the flags of a command. Every flag is also
an environment variable: --poll-timeout is TIDINGS_POLL_TIMEOUT.
`

// Main holds what a run of the command talks to, so that tests run the real
// wiring in-process.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string

	// Ready, if set, is called with the server's URL once serve listens.
	Ready func(url string)

	// MetricsReady, if set, is called with the URL of GET /metrics once
	// serve listens on --metrics-addr, before Ready.
	MetricsReady func(url string)

	// Serving, if set, is given the HTTP server once serve listens, before
	// Ready: tests watch its held deliveries.
	Serving func(*tidingshttp.Server)
}

func main() {
	m := &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	if len(os.Args) > 1 && os.Args[1] == "serve" && os.Getenv("GOGC") == "" {
		keepHeapFloor(heapFloor)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := m.Run(ctx, os.Args[1:])
	stop()
	os.Exit(m.exitCode(err))
}

// usageError is bad usage: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelp is returned after help was printed on request.
var errHelp = errors.New("help requested")

func (m *Main) exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(m.Stderr, "tidings:", err)
		fmt.Fprintln(m.Stderr, `Run "tidings help" for usage.`)
		return 2
	default:
		if tidings.ErrorCode(err) != tidings.EINTERNAL {
			// Its message is written for the person who runs the command.
			fmt.Fprintln(m.Stderr, "tidings:", tidings.ErrorMessage(err))
		} else {
			fmt.Fprintln(m.Stderr, "tidings:", err)
		}
		return 1
	}
}

// Run runs the command named by args.
func (m *Main) Run(ctx context.Context, args []string) error {
	if m.Getenv == nil {
		m.Getenv = func(string) string { return "" }
	}
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return usagef("no command given")
	}
	switch args[0] {
	case "serve":
		return m.runServe(ctx, args[1:])
	case "user":
		if len(args) < 2 || args[1] != "add" {
			return usagef(`"tidings user" takes the subcommand "add"`)
		}
		return m.runUserAdd(ctx, args[2:])
	case "token":
		if len(args) < 2 || args[1] != "create" {
			return usagef(`"tidings token" takes the subcommand "create"`)
		}
		return m.runTokenCreate(ctx, args[2:])
	case "publish":
		return m.runPublish(ctx, args[1:])
	case "bench":
		return m.runBench(ctx, args[1:])
	case "copy":
		return m.runCopy(ctx, args[1:])
	case "help", "-h", "--help", "-help":
		fmt.Fprint(m.Stdout, usage)
		return errHelp
	default:
		return usagef("unknown command %q", args[0])
	}
}
