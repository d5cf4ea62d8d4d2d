package hub_test

import (
	"github.com/tidings/tidings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidings/tidings/hub"
)

func TestNotifyWakesOnlyTheUsersWaiters(t *testing.T) {
	h := hub.New()
	bob, cancelBob := subscribe(h, 2)
	defer cancelBob()
	carol, cancelCarol := subscribe(h, 3)
	defer cancelCarol()

	h.Notify(2)
	select {
	case <-bob:
	case <-time.After(time.Second):
		t.Fatal("bob's waiter was not woken")
	}
	select {
	case <-carol:
		t.Fatal("carol's waiter was woken for bob's message")
	default:
	}
}

func TestCancelledWaiterIsNotTold(t *testing.T) {
	h := hub.New()
	var told atomic.Int32
	cancel := h.Subscribe(1, func(tidings.Signal) { told.Add(1) })
	h.Notify(1)
	cancel()
	h.Notify(1)
	h.NotifyAccess(1)
	h.WakeAll()
	if got := told.Load(); got != 1 {
		t.Fatalf("the waiter was told %d times, want once (before it cancelled)", got)
	}
}

func TestAccessComesBeforeALaterWake(t *testing.T) {
	h := hub.New()
	var mu sync.Mutex
	var got []tidings.Signal
	cancel := h.Subscribe(1, func(s tidings.Signal) { mu.Lock(); got = append(got, s); mu.Unlock() })
	defer cancel()
	h.NotifyAccess(1)
	h.Notify(1)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != tidings.SignalAccess || got[1] != tidings.SignalWake {
		t.Fatalf("signals = %v, want access then wake", got)
	}
}

func TestCancelRemovesTheWaiter(t *testing.T) {
	h := hub.New()
	_, cancel := subscribe(h, 1)
	_, cancel2 := subscribe(h, 1)
	if got := h.WaitingFor(1); got != 2 {
		t.Fatalf("WaitingFor = %d, want 2", got)
	}
	cancel()
	cancel() // idempotent
	if got := h.WaitingFor(1); got != 1 {
		t.Fatalf("after cancel WaitingFor = %d, want 1", got)
	}
	cancel2()
	if got := h.Waiting(); got != 0 {
		t.Fatalf("Waiting = %d, want 0", got)
	}
}

func TestConcurrentSubscribeNotify(t *testing.T) {
	h := hub.New()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func(id int64) {
			defer wg.Done()
			for j := 0; j < 500; j++ {
				_, cancel := subscribe(h, id)
				cancel()
			}
		}(int64(i))
		go func(id int64) {
			defer wg.Done()
			for j := 0; j < 500; j++ {
				h.Notify(id, id+1)
			}
		}(int64(i))
	}
	wg.Wait()
	if got := h.Waiting(); got != 0 {
		t.Fatalf("Waiting = %d after all cancelled", got)
	}
}

func BenchmarkNotifyOneOf1000(b *testing.B) {
	h := hub.New()
	for i := int64(1); i <= 1000; i++ {
		_, cancel := subscribe(h, i)
		defer cancel()
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Notify(int64(i%1000) + 1)
	}
}

// chanWaiter turns a waiter's signals into channels that hold one pending
// signal each.
type chanWaiter struct {
	Wake, Access chan struct{}
	Cancel       func()
}

func subscribeBoth(h *hub.Hub, userID int64) chanWaiter {
	w := chanWaiter{Wake: make(chan struct{}, 1), Access: make(chan struct{}, 1)}
	w.Cancel = h.Subscribe(userID, func(s tidings.Signal) {
		if s&tidings.SignalWake != 0 {
			select {
			case w.Wake <- struct{}{}:
			default:
			}
		}
		if s&tidings.SignalAccess != 0 {
			select {
			case w.Access <- struct{}{}:
			default:
			}
		}
	})
	return w
}

// subscribe is Subscribe for tests that need only the wake-up channel.
func subscribe(h *hub.Hub, userID int64) (<-chan struct{}, func()) {
	w := subscribeBoth(h, userID)
	return w.Wake, w.Cancel
}

func TestNotifyAccessSignalsOnlyTheAccessChannel(t *testing.T) {
	h := hub.New()
	bob := subscribeBoth(h, 2)
	defer bob.Cancel()
	carol := subscribeBoth(h, 3)
	defer carol.Cancel()

	h.NotifyAccess(2)
	select {
	case <-bob.Access:
	case <-time.After(time.Second):
		t.Fatal("bob's waiter was not told that a credential ended")
	}
	select {
	case <-bob.Wake:
		t.Fatal("an access signal woke the message channel")
	case <-carol.Access:
		t.Fatal("carol's waiter was told about bob's credentials")
	default:
	}
}

func TestWakeAllSignalsEveryWaiterBothWays(t *testing.T) {
	h := hub.New()
	var subs []func()
	var wakes, access []<-chan struct{}
	for id := int64(1); id <= 100; id++ {
		sub := subscribeBoth(h, id)
		subs, wakes, access = append(subs, sub.Cancel), append(wakes, sub.Wake), append(access, sub.Access)
	}
	defer func() {
		for _, c := range subs {
			c()
		}
	}()
	before := h.AccessChanges()
	h.WakeAll()
	for i := range wakes {
		select {
		case <-wakes[i]:
		default:
			t.Fatalf("waiter %d was not woken", i+1)
		}
		select {
		case <-access[i]:
		default:
			t.Fatalf("waiter %d was not told to check its credential", i+1)
		}
	}
	if h.AccessChanges() == before {
		t.Fatal("WakeAll did not count as an access change")
	}
}

// A user's access changes count the ends that named them and whatever
// concerns everyone, not the ends of other users'.
func TestAccessChangesForAUser(t *testing.T) {
	h := hub.New()
	bob, alice := h.AccessChangesFor(5), h.AccessChangesFor(6)
	all := h.AccessChanges()
	h.NotifyAccess(5)
	if h.AccessChangesFor(5) == bob {
		t.Error("an end of bob's credential did not count for bob")
	}
	if h.AccessChangesFor(6) != alice {
		t.Error("an end of bob's credential counted for alice")
	}
	if h.AccessChanges() == all {
		t.Error("an end of bob's credential did not count for all")
	}
	alice = h.AccessChangesFor(6)
	h.WakeAll()
	if h.AccessChangesFor(6) == alice {
		t.Error("WakeAll did not count for alice")
	}
}
