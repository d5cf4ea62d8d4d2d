// Package hub wakes the requests and streams that wait for a user's
// messages, in process. It carries no messages, only the news that some have
// committed: a woken client reads them from the store, so a wake-up can never
// be lost or reordered by the hub, only coalesced.
package hub

import (
	"sync"
	"sync/atomic"

	"github.com/tidings/tidings"
)

const shardCount = 64

// Hub implements tidings.Hub. The zero value is not usable; call New.
type Hub struct {
	shards  [shardCount]shard
	waiting atomic.Int64
	access  atomic.Uint64 // calls of NotifyAccess and WakeAll

	// userAccess counts NotifyAccess's users, userID%len(userAccess)
	// each; resyncs counts WakeAll, which concerns everyone.
	userAccess [1024]atomic.Uint64
	resyncs    atomic.Uint64
}

type shard struct {
	mu   sync.Mutex
	subs map[int64][]*waiter
}

type waiter struct {
	userID    int64
	notify    func(tidings.Signal)
	cancelled atomic.Bool
}

var _ tidings.Hub = (*Hub)(nil)

// New returns an empty hub.
func New() *Hub {
	h := &Hub{}
	for i := range h.shards {
		h.shards[i].subs = make(map[int64][]*waiter)
	}
	return h
}

func (h *Hub) shard(userID int64) *shard {
	return &h.shards[uint64(userID)%shardCount]
}

// Subscribe registers notify for userID's signals. A waiter costs the hub
// one small struct: it owns no channel and no goroutine, so a connection
// parked without a goroutine of its own is woken by notify itself.
func (h *Hub) Subscribe(userID int64, notify func(tidings.Signal)) (cancel func()) {
	w := &waiter{userID: userID, notify: notify}
	s := h.shard(userID)
	s.mu.Lock()
	s.subs[userID] = append(s.subs[userID], w)
	s.mu.Unlock()
	h.waiting.Add(1)
	return func() { h.unsubscribe(w) }
}

func (h *Hub) unsubscribe(w *waiter) {
	if w.cancelled.Swap(true) {
		return
	}
	s := h.shard(w.userID)
	s.mu.Lock()
	list := s.subs[w.userID]
	for i, x := range list {
		if x == w {
			last := len(list) - 1
			list[i] = list[last]
			list[last] = nil
			list = list[:last]
			break
		}
	}
	if len(list) == 0 {
		delete(s.subs, w.userID)
	} else {
		s.subs[w.userID] = list
	}
	s.mu.Unlock()
	h.waiting.Add(-1)
}

// Notify wakes every waiter of the given users. The waiters are copied under
// each shard's lock and told after it is released.
func (h *Hub) Notify(userIDs ...int64) {
	h.signal(userIDs, tidings.SignalWake)
}

// NotifyAccess tells every waiter of the given users to check its credential
// again. It returns once every one was told, so an Access always comes before
// the Wake of a later Notify.
func (h *Hub) NotifyAccess(userIDs ...int64) {
	// The count of all first: a cache that reads a user's count, then the
	// count of all unchanged since before it asked, knows that no change
	// it has not counted came in between.
	h.access.Add(1)
	for _, id := range userIDs {
		h.userAccess[uint64(id)%uint64(len(h.userAccess))].Add(1)
	}
	h.signal(userIDs, tidings.SignalAccess)
}

func (h *Hub) signal(userIDs []int64, sig tidings.Signal) {
	var stack [16]*waiter
	ws := stack[:0]
	for _, id := range userIDs {
		s := h.shard(id)
		s.mu.Lock()
		ws = append(ws, s.subs[id]...)
		s.mu.Unlock()
	}
	for _, w := range ws {
		if !w.cancelled.Load() {
			w.notify(sig)
		}
	}
}

// WakeAll tells every waiter to read again and to check its credential: for
// when wake-ups may have been lost, such as a dropped connection to the
// other nodes. It costs every waiter one read.
func (h *Hub) WakeAll() {
	h.access.Add(1) // first, as in NotifyAccess
	h.resyncs.Add(1)
	var ws []*waiter
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for _, list := range s.subs {
			ws = append(ws, list...)
		}
		s.mu.Unlock()
	}
	for _, w := range ws {
		if !w.cancelled.Load() {
			w.notify(tidings.SignalAccess | tidings.SignalWake)
		}
	}
}

// AccessChanges counts the calls of NotifyAccess (and of WakeAll).
func (h *Hub) AccessChanges() uint64 { return h.access.Load() }

// AccessChangesFor counts the calls of NotifyAccess that named userID (or
// a user who shares its count) and of WakeAll.
func (h *Hub) AccessChangesFor(userID int64) uint64 {
	return h.resyncs.Load() + h.userAccess[uint64(userID)%uint64(len(h.userAccess))].Load()
}

// Waiting returns how many waiters are registered.
func (h *Hub) Waiting() int64 { return h.waiting.Load() }

// WaitingFor returns how many waiters userID has.
func (h *Hub) WaitingFor(userID int64) int {
	s := h.shard(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs[userID])
}
