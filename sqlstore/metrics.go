package sqlstore

import (
	"context"
	"errors"
	"time"
)

// Metrics is told what the store does, so that an operator can watch it.
// The store knows no metrics system: an implementation turns these calls
// into its own. Methods are called from the writer and the background
// loops, so they must be quick and safe for concurrent use.
type Metrics interface {
	// BatchCommitted is called after each group commit, with the number
	// of writes it committed and how long its transaction took.
	BatchCommitted(writes int, took time.Duration)

	// PublishCommitted is called, for a write that stored messages, with
	// the time from its submission to the commit that answered it.
	PublishCommitted(took time.Duration)

	// JanitorRun is called after each janitor run; err is nil if it
	// succeeded.
	JanitorRun(err error)

	// SchedulerRun is called after each scheduler run, with the number of
	// messages it fired.
	SchedulerRun(fired int, err error)

	// DatabaseError is called for each error the database reported, with
	// its kind: "retry" (a serialization failure or a deadlock),
	// "unavailable" or "other". A unique key's conflict is not one: it is
	// an answer to the caller, not the database failing.
	DatabaseError(kind string)
}

// noMetrics counts nothing, for a DB without Metrics.
type noMetrics struct{}

func (noMetrics) BatchCommitted(int, time.Duration) {}
func (noMetrics) PublishCommitted(time.Duration)    {}
func (noMetrics) JanitorRun(error)                  {}
func (noMetrics) SchedulerRun(int, error)           {}
func (noMetrics) DatabaseError(string)              {}

func (db *DB) metrics() Metrics {
	if db.Metrics == nil {
		return noMetrics{}
	}
	return db.Metrics
}

// countError tells Metrics of a database error that translate recognized.
// A caller that gave up is not the database failing, and an error that was
// translated before was counted then.
func (db *DB) countError(err error, kind string) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, errUnavailable) || errors.Is(err, errRetry) {
		return
	}
	db.metrics().DatabaseError(kind)
}
