// Command empty is an HTTP server that answers every request at once and
// does nothing else: a publish costs it only what Go's net/http costs. It
// gives bench/compare.sh the ceiling of a Go server on the machine, measured
// by the same load generator in the same run as Tidings and Nchan.
//
//	go run ./bench/empty --addr 127.0.0.1:0
//
// It prints the URL it serves once it listens, and stops on SIGTERM or
// interrupt.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// answer is about the size of Tidings' answer to a publish.
const answer = `{"event_id":123456,"recipients":1,"valid_from":"2026-01-01T00:00:00.000Z","valid_until":"2026-01-01T00:02:00.000Z"}` + "\n"

// handler reads each request's body, as Tidings does, within the same
// limit, and answers 202 Accepted.
func handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 1<<20))
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, answer)
	})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "empty:", err)
		os.Exit(1)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: handler()}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Printf("http://%s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "empty:", err)
		os.Exit(1)
	}
}
