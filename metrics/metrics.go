// Package metrics keeps Tidings' metrics in Prometheus collectors and serves
// them in Prometheus' text format. A Metrics is both the store's and the
// HTTP server's Metrics (sqlstore.Metrics, http.Metrics) by its methods
// alone: neither of them knows Prometheus, and this package imports neither.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tidings/tidings"
)

// Transports are the transports whose series exist from the start, so that
// a dashboard shows a zero rather than nothing before the first client.
// They are the HTTP server's names (http.TransportPoll, …), which this
// package, an implementation beside it, does not import.
var Transports = []string{"poll", "sse", "websocket"}

// Metrics holds the collectors. Make it with New.
type Metrics struct {
	registry *prometheus.Registry
	now      func() time.Time

	open            *prometheus.GaugeVec
	delivered       *prometheus.CounterVec
	deliveryLatency *prometheus.HistogramVec
	publishCommit   prometheus.Histogram
	batchWrites     prometheus.Histogram
	commitSeconds   prometheus.Histogram
	janitorRuns     *prometheus.CounterVec
	schedulerRuns   *prometheus.CounterVec
	fired           prometheus.Counter
	databaseErrors  *prometheus.CounterVec
}

// New returns metrics registered with a registry of their own, together
// with the Go runtime's and the process's.
func New() *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry(), now: time.Now}
	// Latencies from 50 µs, below a wake-up's, to a quarter of an hour,
	// beyond any message's default life.
	latency := prometheus.ExponentialBuckets(0.00005, 2, 25)
	m.open = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tidings_deliveries_open",
		Help: "Long polls held and streams open, by transport.",
	}, []string{"transport"})
	m.delivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tidings_messages_delivered_total",
		Help: "Messages sent to clients, by transport.",
	}, []string{"transport"})
	m.deliveryLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tidings_delivery_latency_seconds",
		Help: "From a message's commit on this node to its sending, by transport; for a message read from the database (another node's, or older than what a node keeps in memory), from its valid_from (its commit, or when a scheduled message became due). A client that was away adds the time it was away.",

		Buckets: latency,
	}, []string{"transport"})
	m.publishCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tidings_publish_commit_seconds",
		Help:    "From a write that stores messages being submitted to its commit.",
		Buckets: latency,
	})
	m.batchWrites = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tidings_commit_batch_writes",
		Help:    "Writes committed together in one group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 … 256, the largest batch
	})
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tidings_commit_seconds",
		Help:    "Duration of a group commit's transaction.",
		Buckets: latency,
	})
	m.janitorRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tidings_janitor_runs_total",
		Help: "Runs of the janitor that deletes expired rows, by result (ok, error).",
	}, []string{"result"})
	m.schedulerRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tidings_scheduler_runs_total",
		Help: "Runs of the scheduler that fires due messages and reminders, by result (ok, error).",
	}, []string{"result"})
	m.fired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tidings_scheduled_fired_total",
		Help: "Scheduled messages and reminders the scheduler delivered.",
	})
	m.databaseErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tidings_database_errors_total",
		Help: "Errors the database reported, by kind (retry: serialization failure or deadlock; unavailable; other).",
	}, []string{"kind"})

	for _, t := range Transports {
		m.open.WithLabelValues(t)
		m.delivered.WithLabelValues(t)
		m.deliveryLatency.WithLabelValues(t)
	}
	for _, r := range []string{"ok", "error"} {
		m.janitorRuns.WithLabelValues(r)
		m.schedulerRuns.WithLabelValues(r)
	}
	for _, k := range []string{"retry", "unavailable", "other"} {
		m.databaseErrors.WithLabelValues(k)
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.open, m.delivered, m.deliveryLatency, m.publishCommit, m.batchWrites,
		m.commitSeconds, m.janitorRuns, m.schedulerRuns, m.fired, m.databaseErrors,
	)
	return m
}

// Handler serves GET /metrics in Prometheus' text format, and nothing else.
// It is meant for a listener of its own that only the operator reaches.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	return mux
}

// CountStatements serves what counts returns as
// tidings_database_statements_total, by whom the statements were for:
// clients (requests, and the reads and writes they make) or upkeep (the
// server's own: janitor, scheduler, checkpoints). What idle clients cost
// the database is the first's growth while they wait. Call it once.
func (m *Metrics) CountStatements(counts func() (clients, upkeep int64)) {
	help := "Statements the store sent to its database (prepared or not, and each BEGIN, COMMIT and ROLLBACK), by whom they were for: clients (requests and the reads and writes they make) or upkeep (janitor, scheduler, checkpoints, migrations)."
	m.registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tidings_database_statements_total", Help: help, ConstLabels: prometheus.Labels{"for": "clients"},
		}, func() float64 { c, _ := counts(); return float64(c) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tidings_database_statements_total", Help: help, ConstLabels: prometheus.Labels{"for": "upkeep"},
		}, func() float64 { _, u := counts(); return float64(u) }),
	)
}

// DeliveryOpened counts a held poll or an open stream.
func (m *Metrics) DeliveryOpened(transport string) { m.open.WithLabelValues(transport).Inc() }

// DeliveryClosed counts a poll or stream that ended.
func (m *Metrics) DeliveryClosed(transport string) { m.open.WithLabelValues(transport).Dec() }

// Delivered counts messages sent and observes how long after their
// valid_from they were sent.
func (m *Metrics) Delivered(transport string, messages []*tidings.Message) {
	if len(messages) == 0 {
		return
	}
	m.delivered.WithLabelValues(transport).Add(float64(len(messages)))
	latency := m.deliveryLatency.WithLabelValues(transport)
	now := m.now()
	for _, msg := range messages {
		from := msg.ValidFrom
		if !msg.Committed.IsZero() {
			from = msg.Committed
		}
		// Another node's clock may run a little ahead of this one's.
		latency.Observe(max(now.Sub(from), 0).Seconds())
	}
}

// BatchCommitted observes a group commit's size and duration.
func (m *Metrics) BatchCommitted(writes int, took time.Duration) {
	m.batchWrites.Observe(float64(writes))
	m.commitSeconds.Observe(took.Seconds())
}

// PublishCommitted observes the time from a publish to its commit.
func (m *Metrics) PublishCommitted(took time.Duration) { m.publishCommit.Observe(took.Seconds()) }

// JanitorRun counts a janitor run.
func (m *Metrics) JanitorRun(err error) { m.janitorRuns.WithLabelValues(result(err)).Inc() }

// SchedulerRun counts a scheduler run and the messages it fired.
func (m *Metrics) SchedulerRun(fired int, err error) {
	m.schedulerRuns.WithLabelValues(result(err)).Inc()
	m.fired.Add(float64(fired))
}

// DatabaseError counts an error the database reported.
func (m *Metrics) DatabaseError(kind string) { m.databaseErrors.WithLabelValues(kind).Inc() }

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}
