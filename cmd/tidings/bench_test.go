package main

import (
	"strings"
	"testing"
	"time"
)

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--sizes", "many"},
		{"bench", "--sizes", "0"},
		{"bench", "--publishers", "16,none"},
		{"bench", "--transports", "carrier-pigeon"},
		{"bench", "--samples", "1"},
		{"bench", "extra"},
		{"bench", "--nchan", "http://127.0.0.1:18090"},
		{"bench", "--nchan-pid-file", "/run/nginx.pid"},
		{"bench", "--nchan", "127.0.0.1:18090", "--nchan-pid-file", "/run/nginx.pid"},
	} {
		if code, _, stderr := run(t, nil, "", args...); code != 2 || !strings.Contains(stderr, "tidings:") {
			t.Errorf("%q: exit %d, %s", args, code, stderr)
		}
	}
}

// A small run of every scenario, on servers the bench starts itself, prints
// every row of the table.
func TestBenchRunsEveryScenario(t *testing.T) {
	code, stdout, stderr := run(t, nil, "", "bench", "--sizes", "20", "--samples", "10", "--duration", "200ms", "--fanout", "5", "--idle-polls", "20", "--idle-window", "3s")
	if code != 0 {
		t.Fatalf("bench exited %d: %s", code, stderr)
	}
	// An idle poll costs the database nothing, however often it is made
	// again: a count, not a timing.
	for _, row := range []string{"held poll", "held sse", "held ws", "KB per held connection", "1 publishers", "16 publishers", "64 publishers", "fan-out",
		"20 polls, 3s  0 statements per idle poll per minute"} {
		if !strings.Contains(stdout, row) {
			t.Errorf("the table has no %q:\n%s", row, stdout)
		}
	}
}

// The warm-up publishes of a latency measurement count in none of its
// figures: a first publish that took a second is not the maximum.
func TestLatencyFiguresLeaveOutTheWarmup(t *testing.T) {
	var d []time.Duration
	for range latencyWarmup {
		d = append(d, time.Second)
	}
	for i := range 100 {
		d = append(d, time.Duration(100-i)*time.Millisecond) // 100 ms down to 1 ms
	}
	p50, p99, max := latencyFigures(d)
	if p50 != 51*time.Millisecond || p99 != 100*time.Millisecond || max != 100*time.Millisecond {
		t.Errorf("p50 %v, p99 %v, max %v; want 51ms, 100ms, 100ms from the samples after the warm-up", p50, p99, max)
	}
	if d[0] != time.Second || d[latencyWarmup] != 100*time.Millisecond {
		t.Error("latencyFigures reordered the caller's samples")
	}
}
