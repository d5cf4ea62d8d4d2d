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
	access  atomic.Uint64 // calls of NotifyAccess
}

type shard struct {
	mu   sync.Mutex
	subs map[int64][]*waiter
}

type waiter struct {
	ch     chan struct{} // messages committed
	access chan struct{} // a credential of the user ended
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

// Subscribe registers a waiter for userID. Its channels have room for one
// signal each: signals that arrive while one is pending coalesce, and the
// notifier never blocks on a waiter that does not read.
func (h *Hub) Subscribe(userID int64) tidings.Subscription {
	w := &waiter{ch: make(chan struct{}, 1), access: make(chan struct{}, 1)}
	s := h.shard(userID)
	s.mu.Lock()
	s.subs[userID] = append(s.subs[userID], w)
	s.mu.Unlock()
	h.waiting.Add(1)
	var once sync.Once
	return tidings.Subscription{
		Wake:   w.ch,
		Access: w.access,
		Cancel: func() { once.Do(func() { h.unsubscribe(userID, w) }) },
	}
}

func (h *Hub) unsubscribe(userID int64, w *waiter) {
	s := h.shard(userID)
	s.mu.Lock()
	list := s.subs[userID]
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
		delete(s.subs, userID)
	} else {
		s.subs[userID] = list
	}
	s.mu.Unlock()
	h.waiting.Add(-1)
}

// Notify wakes every waiter of the given users. The waiters are copied under
// each shard's lock and signalled after it is released.
func (h *Hub) Notify(userIDs ...int64) {
	h.signal(userIDs, func(w *waiter) chan struct{} { return w.ch })
}

// NotifyAccess tells every waiter of the given users to check its credential
// again.
func (h *Hub) NotifyAccess(userIDs ...int64) {
	h.access.Add(1)
	h.signal(userIDs, func(w *waiter) chan struct{} { return w.access })
}

func (h *Hub) signal(userIDs []int64, pick func(*waiter) chan struct{}) {
	var stack [16]chan struct{}
	chans := stack[:0]
	for _, id := range userIDs {
		s := h.shard(id)
		s.mu.Lock()
		for _, w := range s.subs[id] {
			chans = append(chans, pick(w))
		}
		s.mu.Unlock()
	}
	for _, ch := range chans {
		select {
		case ch <- struct{}{}:
		default: // a signal is already pending; the waiter will read everything
		}
	}
}

// WakeAll tells every waiter to read again and to check its credential: for
// when wake-ups may have been lost, such as a dropped connection to the
// other nodes. It costs every waiter one read.
func (h *Hub) WakeAll() {
	h.access.Add(1)
	var chans []chan struct{}
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for _, list := range s.subs {
			for _, w := range list {
				chans = append(chans, w.access, w.ch)
			}
		}
		s.mu.Unlock()
	}
	for _, ch := range chans {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// AccessChanges counts the calls of NotifyAccess.
func (h *Hub) AccessChanges() uint64 { return h.access.Load() }

// Waiting returns how many waiters are registered.
func (h *Hub) Waiting() int64 { return h.waiting.Load() }

// WaitingFor returns how many waiters userID has.
func (h *Hub) WaitingFor(userID int64) int {
	s := h.shard(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs[userID])
}
