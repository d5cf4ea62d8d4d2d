package sqlstore

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidings/tidings"
)

// The messages a node just committed, kept in memory per user, so that the
// client woken by a commit gets its messages without reading them back from
// the database. An inbox is used only where it provably knows every message
// of the range a read asks for; any doubt sends the read to the database:
//
//   - It knows the messages (base, head] of its user and nothing before base:
//     a read from a cursor before base, or without one, goes to the database,
//     and so does one from a cursor after head (a commit the inbox has not
//     heard of yet).
//   - It grows only by this node's commits, in the writer, after the commit
//     and before the waiters are woken; a commit whose numbers do not follow
//     on from head (another node committed in between, or a scheduled
//     message whose event is not in memory) starts it over at that commit.
//   - On PostgreSQL other nodes commit too. Their NOTIFY names the users
//     they stored messages for, and the node's Listener forgets those
//     inboxes before it wakes anyone. The writer does not fill inboxes from
//     a commit during which the Listener forgot anything, nor while no
//     Listener listens (then nothing would tell it of other nodes'
//     commits), so a kept inbox is never behind a commit that woke a waiter.
//   - A message expires from an inbox by the reader's clock, as in the
//     database, and also once the janitor's clock has passed its
//     valid_until or its event's expiry: the janitor has deleted it (or may
//     have), and the database would count it as missed.
//   - A transaction that ends a user's access (a deleted user among them)
//     forgets their inbox.
//   - A read from the database leaves an empty inbox at the head it read,
//     for a user who has none, so that an idle client's next poll, from
//     that head, costs the database nothing: only if no commit, forgetting
//     or dropping of that user's inbox came between the read's start and
//     its end (see mark and seed). A commit the read did not see then
//     grows the inbox as any commit does.
type inboxes struct {
	mu    sync.Mutex
	users map[int64]*inbox

	// gens count the changes to users: each change of a user's inbox
	// raises gens[userID%len(gens)], one of all inboxes at once raises all.
	gens [64]uint64
	all  uint64

	// on: inboxes may be filled and read. Always on SQLite, where only this
	// process writes; on PostgreSQL while a Listener of this store listens.
	on atomic.Bool
	// listens counts the Listener's beginnings: raised before on is set.
	listens atomic.Uint64

	// forgets counts the Listener's forgetting; the writer compares it
	// before and after a commit.
	forgets atomic.Uint64

	// swept is the clock, in Unix ms, of the janitor's last committed
	// round: messages expired by it may be gone from the database.
	swept atomic.Int64
}

// Bounds on what inboxes keep: a client that falls further behind than
// maxInboxMessages reads from the database.
const (
	maxInboxMessages = 64
	maxInboxUsers    = 100000
)

type inbox struct {
	base, head int64 // the inbox knows every message numbered in (base, head]
	msgs       []inboxMessage
}

// inboxMessage is a committed message and when it leaves the database.
type inboxMessage struct {
	m            tidings.Message // never encoded: each read gets a copy
	eventExpires int64           // Unix ms
}

// eventMessage is an event as its messages show it, kept by insertEvent for
// the inboxes, copied so that the caller's later changes cannot reach it.
type eventMessage struct {
	msg     tidings.Message // without cursor, text and validity
	expires int64           // Unix ms
}

func newEventMessage(ev *tidings.Event, expires int64) *eventMessage {
	m := tidings.Message{
		Event:     ev.ID,
		Process:   ev.Process,
		Module:    ev.Module,
		Text:      ev.Text,
		Urgent:    ev.Urgent,
		CreatedAt: fromMS(ms(ev.CreatedAt)),
		Details:   slices.Clone(ev.Details),
	}
	if m.Details == nil {
		m.Details = []tidings.Detail{}
	}
	if ev.Item != nil {
		item := *ev.Item
		m.Item = &item
	}
	if ev.Project != nil {
		p := *ev.Project
		m.Project = &p
	}
	if ev.Actor != nil {
		a := *ev.Actor
		m.Actor = &a
	}
	return &eventMessage{msg: m, expires: expires}
}

// committed is what one commit stored for one user: the messages numbered
// head-len(list)+1 … head, in order.
type committed struct {
	userID int64
	head   int64
	list   []delivery
}

// add records a commit's messages. known is false when the caller cannot
// vouch that no other node's commit was missed meanwhile: the inboxes
// concerned are forgotten instead.
func (c *inboxes) add(epoch uint64, commits []committed, known bool, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cm := range commits {
		c.changed(cm.userID)
	}
	if !known || !c.on.Load() {
		for _, cm := range commits {
			delete(c.users, cm.userID)
		}
		return
	}
	if c.users == nil || len(c.users) >= maxInboxUsers {
		c.users = make(map[int64]*inbox)
		c.all++
	}
	for _, cm := range commits {
		first := cm.head - int64(len(cm.list)) + 1
		in := c.users[cm.userID]
		if in == nil || in.head != first-1 {
			in = &inbox{base: first - 1, head: first - 1}
			c.users[cm.userID] = in
		}
		for k, d := range cm.list {
			seq := first + int64(k)
			if d.event == nil {
				// Its event is not in memory (a scheduled message): the
				// inbox starts over after it.
				in.base, in.head, in.msgs = seq, seq, in.msgs[:0]
				continue
			}
			m := d.event.msg
			m.Cursor = tidings.Cursor{Epoch: epoch, UserID: cm.userID, Seq: seq}
			m.ID = m.Cursor.String()
			m.Committed = at
			// As the database gives them back: whole milliseconds, UTC.
			m.ValidFrom, m.ValidUntil = fromMS(ms(d.validFrom)), fromMS(ms(d.validUntil))
			if d.text != "" {
				m.Text = d.text
			}
			in.msgs = append(in.msgs, inboxMessage{m: m, eventExpires: d.event.expires})
			in.head = seq
		}
		if n := len(in.msgs) - maxInboxMessages; n > 0 {
			in.msgs = slices.Delete(in.msgs, 0, n)
			in.base = in.msgs[0].m.Cursor.Seq - 1
		}
	}
}

// forget drops users' inboxes: another node stored messages for them, or
// their access ended. With no ids it drops them all.
func (c *inboxes) forget(userIDs ...int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgets.Add(1)
	if len(userIDs) == 0 {
		c.users = nil
		c.all++
		return
	}
	for _, id := range userIDs {
		delete(c.users, id)
		c.changed(id)
	}
}

// drop forgets users' inboxes without telling the writer: for what the
// writer itself learns after its commit.
func (c *inboxes) drop(userIDs ...int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range userIDs {
		delete(c.users, id)
		c.changed(id)
	}
}

// changed counts a change of a user's inbox. The caller holds mu.
func (c *inboxes) changed(userID int64) { c.gens[uint64(userID)%uint64(len(c.gens))]++ }

// inboxMark is where the changes to a user's inbox stood.
type inboxMark struct{ gen, all uint64 }

// mark returns where the changes to a user's inbox stand, before a read
// from the database that may seed it.
func (c *inboxes) mark(userID int64) inboxMark {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.markOf(userID)
}

// markOf is mark for a caller that holds mu.
func (c *inboxes) markOf(userID int64) inboxMark {
	return inboxMark{gen: c.gens[uint64(userID)%uint64(len(c.gens))], all: c.all}
}

// seed leaves an empty inbox at head for a user who has none, after a read
// from the database that found head there and began after mark: only if
// the user's inbox has not changed since (a change of another user's that
// shares the count also stops it, which costs only the seed).
func (c *inboxes) seed(userID, head int64, m inboxMark) {
	if !c.on.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on.Load() || c.markOf(userID) != m || c.users[userID] != nil || len(c.users) >= maxInboxUsers {
		return
	}
	if c.users == nil {
		c.users = make(map[int64]*inbox)
	}
	c.users[userID] = &inbox{base: head, head: head}
}

// read answers FindMessages from the user's inbox, if it knows the whole
// range after the cursor; ok is false when the database must answer.
func (c *inboxes) read(epoch uint64, userID, after, now int64, limit int) (batch *tidings.MessageBatch, ok bool, err error) {
	if !c.on.Load() {
		return nil, false, nil
	}
	swept := c.swept.Load()
	gone := max(now, swept) // valid_until at or before it: expired
	c.mu.Lock()
	in := c.users[userID]
	if in == nil || after < in.base || after > in.head {
		c.mu.Unlock()
		return nil, false, nil
	}
	head := in.head
	var msgs []tidings.Message
	for _, im := range in.msgs[after-in.base:] {
		if im.m.ValidUntil.UnixMilli() > gone && im.eventExpires > swept {
			msgs = append(msgs, im.m)
		}
	}
	c.mu.Unlock()

	batch = &tidings.MessageBatch{Messages: make([]*tidings.Message, 0, min(len(msgs), limit))}
	size := 0
	for i := range msgs {
		m := &msgs[i]
		if len(batch.Messages) == limit {
			batch.More = true
			break
		}
		// Bounded in bytes as in the database's answer.
		b, err := m.MarshalJSON()
		if err != nil {
			return nil, false, err
		}
		if size += len(b) + 1; size > tidings.MaxBatchBytes-answerEnvelope && len(batch.Messages) > 0 {
			batch.More = true
			break
		}
		batch.Messages = append(batch.Messages, m)
	}
	upTo := head
	if n := len(batch.Messages); n > 0 {
		upTo = batch.Messages[n-1].Cursor.Seq
	}
	batch.Cursor = tidings.Cursor{Epoch: epoch, UserID: userID, Seq: upTo}
	batch.Missed = upTo - after - int64(len(batch.Messages))
	return batch, true, nil
}
