package sqlstore

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Wake-ups across nodes. A transaction that stores messages or ends
// credentials on PostgreSQL also sends a NOTIFY on NotifyChannel with the
// ids concerned — PostgreSQL delivers it at the commit, and only then — and
// every node keeps one LISTEN connection that turns those notifications into
// wake-ups of its own hub. The payload carries ids only: a woken client reads
// its messages from the database, as it does on one node.

// NotifyChannel is the channel of the nodes' NOTIFY and LISTEN.
const NotifyChannel = "tidings"

// maxNotifyPayload stays under PostgreSQL's 8000-byte limit of a NOTIFY
// payload.
const maxNotifyPayload = 7900

// notice is what one committed transaction tells the other nodes.
type notice struct {
	node      string   // the sending node, so that it skips its own
	wake      []int64  // users with new messages
	ended     []int64  // users some of whose credentials ended
	scheduled bool     // something was scheduled: look at what is due next
	published []int64  // plain users who published, for the nodes' publish limits
	failures  []string // failed logins, "address~login", for the nodes' login throttles
	people    bool     // a user, their settings or a membership may have changed: see keptRecipients
}

// payloads encodes the notice as "n<node>" followed by "|a4,5" (ended
// credentials, first, as on one node), "|m1,2,3" (wake-ups), "|p7"
// (publishers), "|faddr~login;addr~login" (failed logins), "|s"
// (scheduled) and "|r" (people changed), each list without repeats, split
// into as many payloads as the size limit needs. Nothing to say is no
// payload.
func (n notice) payloads() []string {
	var out []string
	var b strings.Builder
	start := func() { b.WriteString("n" + n.node) }
	start()
	add := func(kind byte, items []string, sep byte) {
		first := true
		for _, item := range items {
			if b.Len()+len(item)+3 > maxNotifyPayload {
				out = append(out, b.String())
				b.Reset()
				start()
				first = true
			}
			if first {
				b.WriteByte('|')
				b.WriteByte(kind)
				first = false
			} else {
				b.WriteByte(sep)
			}
			b.WriteString(item)
		}
	}
	ids := func(list []int64) []string {
		list = slices.Clone(list)
		slices.Sort(list)
		list = slices.Compact(list)
		out := make([]string, len(list))
		for i, id := range list {
			out[i] = strconv.FormatInt(id, 10)
		}
		return out
	}
	add('a', ids(n.ended), ',')
	add('m', ids(n.wake), ',')
	add('p', ids(n.published), ',')
	add('f', n.failures, ';')
	if n.scheduled {
		b.WriteString("|s")
	}
	if n.people {
		b.WriteString("|r")
	}
	if strings.Contains(b.String(), "|") {
		out = append(out, b.String())
	}
	return out
}

// notifyPayloads encodes the ids of a commit; see notice.payloads.
func notifyPayloads(node string, wake, ended []int64, scheduled bool) []string {
	return notice{node: node, wake: wake, ended: ended, scheduled: scheduled}.payloads()
}

// parseNotice decodes a payload of notice.payloads. Anything it does not
// understand is skipped: a newer node may say more.
func parseNotice(payload string) notice {
	var n notice
	for part := range strings.SplitSeq(payload, "|") {
		if part == "s" {
			n.scheduled = true
			continue
		}
		if part == "r" {
			n.people = true
			continue
		}
		if len(part) < 2 {
			continue
		}
		var dst *[]int64
		switch part[0] {
		case 'n':
			n.node = part[1:]
			continue
		case 'f':
			for f := range strings.SplitSeq(part[1:], ";") {
				if f != "" {
					n.failures = append(n.failures, f)
				}
			}
			continue
		case 'm':
			dst = &n.wake
		case 'a':
			dst = &n.ended
		case 'p':
			dst = &n.published
		default:
			continue
		}
		for field := range strings.SplitSeq(part[1:], ",") {
			if id, err := strconv.ParseInt(field, 10, 64); err == nil && id > 0 {
				*dst = append(*dst, id)
			}
		}
	}
	return n
}

// parseNotifyPayload decodes the ids of a payload; see parseNotice.
func parseNotifyPayload(payload string) (node string, wake, ended []int64, scheduled bool) {
	n := parseNotice(payload)
	return n.node, n.wake, n.ended, n.scheduled
}

// Listener keeps a node's LISTEN connection and hands what it hears to the
// node's hub. Set its fields, then Run it.
type Listener struct {
	// URL is the PostgreSQL database, as for the store.
	URL string

	// Node names this node in its own NOTIFY payloads; what it hears from
	// itself it skips, since its hub was woken at the commit already.
	Node string

	// Notifier is the node's hub; nil wakes no one, and the Store still
	// learns of what it hears.
	Notifier Notifier

	// Store, if set, is this node's store: while the Listener listens, the
	// store keeps the messages it commits in memory and answers reads from
	// there, since the Listener tells it of every other node's commit (it
	// forgets what those users had in memory before anyone is woken).
	// Without a Listener that names it, a store on PostgreSQL reads every
	// message from the database.
	Store *DB

	// Resync is called each time the connection is (re)established, after
	// LISTEN took effect: whatever was committed while no connection
	// listened was not heard, so every local waiter must read again.
	Resync func()

	// Scheduled, if set, is called when another node scheduled a message
	// or reminder: the local scheduler looks at what is due next.
	Scheduled func()

	// Published and LoginFailed, if set, are told what counts against the
	// publish limits and the login throttles of every node: plain users who
	// published, and failed logins as "address~login".
	Published   func(userIDs ...int64)
	LoginFailed func(keys ...string)

	// Connected, if set, is told whether the connection listens; for
	// health reporting and tests.
	Connected func(bool)

	Logger *slog.Logger
}

// listenerBackoff bounds the wait between reconnection attempts.
const listenerBackoff = 5 * time.Second

// Run listens until ctx ends, reconnecting with backoff when the connection
// drops.
func (l *Listener) Run(ctx context.Context) {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx)
		if l.Connected != nil {
			l.Connected(false)
		}
		if ctx.Err() != nil {
			return
		}
		logger.Warn("listen for other nodes' commits", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay/2 + rand.N(delay/2+1)):
		}
		delay = min(2*delay, listenerBackoff)
	}
}

// listen holds one connection until it fails.
func (l *Listener) listen(ctx context.Context) error {
	cfg, err := pgx.ParseConfig(l.URL)
	if err != nil {
		return err
	}
	// Named, so that an operator sees in pg_stat_activity which node listens.
	cfg.RuntimeParams["application_name"] = "tidings listen " + l.Node
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{NotifyChannel}.Sanitize()); err != nil {
		return err
	}
	if l.Store != nil {
		// Whatever was committed while nobody listened may be missing
		// from memory: start afresh, then let readers use it.
		l.Store.inboxes.forget()
		l.Store.inboxes.listens.Add(1)
		l.Store.inboxes.on.Store(true)
		defer func() {
			l.Store.inboxes.on.Store(false)
			l.Store.inboxes.forget()
		}()
	}
	if l.Connected != nil {
		l.Connected(true)
	}
	if l.Resync != nil {
		l.Resync()
	}
	if l.Scheduled != nil {
		// What other nodes scheduled while nobody listened: the scheduler,
		// which sleeps long while it hears every change, looks now.
		l.Scheduled()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil
			}
			return err
		}
		if n.Channel != NotifyChannel {
			continue
		}
		got := parseNotice(n.Payload)
		if got.node == l.Node && l.Node != "" {
			continue
		}
		if l.Store != nil {
			// Before anyone is woken to read them: what this node holds in
			// memory of these users misses the other node's commit.
			if ids := slices.Concat(got.wake, got.ended); len(ids) > 0 {
				l.Store.inboxes.forget(ids...)
			}
			if got.people {
				l.Store.peopleChanged.Add(1) // before any batch that follows looks a recipient up
			}
		}
		if len(got.ended) > 0 && l.Notifier != nil {
			l.Notifier.NotifyAccess(got.ended...)
		}
		if len(got.wake) > 0 && l.Notifier != nil {
			l.Notifier.Notify(got.wake...)
		}
		if got.scheduled && l.Scheduled != nil {
			l.Scheduled()
		}
		if len(got.published) > 0 && l.Published != nil {
			l.Published(got.published...)
		}
		if len(got.failures) > 0 && l.LoginFailed != nil {
			l.LoginFailed(got.failures...)
		}
	}
}
