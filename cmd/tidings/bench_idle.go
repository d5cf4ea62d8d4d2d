package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidings/tidings"
)

// The idle scenario: what idle clients cost the database. It holds polls of
// the idle user for a window, each with a token of its own, as each browser
// has its session, and each made again with its answer's cursor when it
// times out empty, as an idle browser's are, and reads off the server's
// metrics the statements its store sent to the database for clients
// meanwhile (tidings_database_statements_total{for="clients"}): the
// server's own upkeep (janitor, scheduler, checkpoints) is counted apart and
// does not grow with the clients.

// idleRepoll is how long each idle poll is held before it times out and is
// made again: three times in the window, at most the 25 s a browser's poll
// is held.
func idleRepoll(window time.Duration) time.Duration {
	return min(25*time.Second, max(time.Second, (window/3).Truncate(time.Second)))
}

// idleResult is what the idle scenario measured.
type idleResult struct {
	statements int64 // for clients, in the window
	repolls    int64 // polls made again after timing out, in the window
}

// perPollMinute is the statements per idle poll per minute.
func (r idleResult) perPollMinute(polls int, window time.Duration) float64 {
	return float64(r.statements) / float64(polls) / window.Minutes()
}

func (b *bench) idle(parent context.Context, polls int, window time.Duration) (idleResult, error) {
	var res idleResult
	if b.metricsURL == "" {
		return res, fmt.Errorf("the idle scenario reads the server's metrics, and the bench knows no metrics URL")
	}
	tokens, err := b.idleTokens(parent, polls)
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	repoll := strconv.Itoa(int(idleRepoll(window) / time.Second))
	var measuring atomic.Bool
	var repolls, failed atomic.Int64
	var first sync.WaitGroup // every poll has its first answer, and a cursor
	first.Add(len(tokens))
	var wg sync.WaitGroup
	for _, token := range tokens {
		wg.Go(func() {
			p, err := b.pollWith(ctx, token, "timeout=0")
			first.Done()
			if err != nil {
				failed.Add(1)
				return
			}
			for cursor := p.Cursor; ctx.Err() == nil; cursor = p.Cursor {
				if p, err = b.pollWith(ctx, token, "timeout="+repoll+"&since="+url.QueryEscape(cursor)); err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					return
				}
				if measuring.Load() {
					repolls.Add(1)
				}
			}
		})
	}
	stop := func() { cancel(); wg.Wait() }
	first.Wait()
	// Held: every poll waits on the server again.
	deadline := time.Now().Add(time.Minute)
	for {
		open, err := b.metric(ctx, `tidings_deliveries_open{transport="poll"}`)
		if err != nil {
			stop()
			return res, err
		}
		if open >= float64(polls) {
			break
		}
		if n := failed.Load(); n > 0 {
			stop()
			return res, fmt.Errorf("%d of %d idle polls failed", n, polls)
		}
		if time.Now().After(deadline) {
			stop()
			return res, fmt.Errorf("only %.0f of %d idle polls held after a minute", open, polls)
		}
		time.Sleep(50 * time.Millisecond)
	}
	before, err := b.metric(ctx, `tidings_database_statements_total{for="clients"}`)
	if err != nil {
		stop()
		return res, err
	}
	measuring.Store(true)
	select {
	case <-time.After(window): // the idle time measured
	case <-ctx.Done():
	}
	measuring.Store(false)
	after, err := b.metric(ctx, `tidings_database_statements_total{for="clients"}`)
	stop()
	if err := parent.Err(); err != nil {
		return res, err
	}
	if err != nil {
		return res, err
	}
	if n := failed.Load(); n > 0 {
		return res, fmt.Errorf("%d of %d idle polls failed", n, polls)
	}
	res.statements, res.repolls = int64(after-before), repolls.Load()
	return res, nil
}

// idleTokens makes n tokens of the idle user, logged in as them. On a
// running Tidings they go with the user when the bench removes it.
func (b *bench) idleTokens(ctx context.Context, n int) ([]string, error) {
	session, err := b.session(ctx, b.loginOf("idle"), b.userPassword)
	if err != nil {
		return nil, err
	}
	tokens := make([]string, n)
	for i := range tokens {
		if tokens[i], err = b.apiToken(ctx, session, tidings.ScopeUser); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}

// metric reads one series of the server's metrics, such as
// tidings_deliveries_open{transport="poll"}.
func (b *bench) metric(ctx context.Context, series string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", b.metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read the server's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read the server's metrics at %s: %s", b.metricsURL, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read the server's metrics: %w", err)
	}
	return 0, fmt.Errorf("the server's metrics at %s have no %s: is it a Tidings of this version?", b.metricsURL, series)
}

// idleRow is the idle scenario's line of the table.
func idleRow(polls int, window time.Duration, r idleResult) (size, result string, figures []benchFigure) {
	per := r.perPollMinute(polls, window)
	size = fmt.Sprintf("%d polls, %s", polls, window)
	result = fmt.Sprintf("%s statements per idle poll per minute (%d statements for clients in %s, %d polls made again after timing out empty)",
		strconv.FormatFloat(per, 'f', -1, 64), r.statements, window, r.repolls)
	figures = []benchFigure{
		{"idle.per_poll_minute", strconv.FormatFloat(per, 'f', -1, 64)},
		{"idle.statements", strconv.FormatInt(r.statements, 10)},
		{"idle.polls", strconv.Itoa(polls)},
		{"idle.window", window.String()},
		{"idle.repolls", strconv.FormatInt(r.repolls, 10)},
	}
	return size, result, figures
}
