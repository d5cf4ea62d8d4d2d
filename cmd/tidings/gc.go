package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// heapFloor is how far the heap may grow past what is live before the
// garbage collector runs, at the least. With Go's default (GOGC=100) a
// server whose live heap is 4 MiB collects every 4 MiB of garbage: at
// thousands of publishes a second that is dozens of collections a second,
// each taking a quarter of the cores for its marking, and a fifth of the
// server's time went to it. With the floor, such a heap collects every
// 32 MiB; once the live heap is larger than the floor (thousands of held
// connections), the default applies unchanged. The cost is at most this
// much more memory under load.
const heapFloor = 32 << 20

// keepHeapFloor sets the collector's percentage after every collection so
// that the next one waits for at least floor bytes of new garbage, or for
// as much as is live if that is more, until stop is called; stop restores
// the percentage it found. An operator's GOGC is theirs: main does not call
// this when it is set.
func keepHeapFloor(floor uint64) (stop func()) {
	now := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(now)
	t := &gcTuner{floor: floor, base: 100, sample: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
	if now[0].Value.Kind() == metrics.KindUint64 {
		t.base = int(now[0].Value.Uint64())
	}
	t.tune()
	t.arm()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.stopped = true
		debug.SetGCPercent(t.base)
	}
}

// gcTuner is keepHeapFloor's state. Its sentinel, an object nothing points
// to, is finalized after each collection, which runs tune and arms the
// next sentinel: the tuner costs nothing between collections.
type gcTuner struct {
	floor   uint64
	base    int // the percentage before, restored by stop; the least it sets
	percent int // the last it set
	sample  []metrics.Sample

	mu      sync.Mutex // stop waits for a tune under way
	stopped bool
}

// gcSentinel is large enough not to share an allocation with other tiny
// objects, whose liveness would delay its finalizer.
type gcSentinel struct{ _ [32]byte }

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		if t.tune() {
			t.arm()
		}
	})
}

// tune sets the percentage for the live heap just measured, if it differs
// by more than a tenth from the one set last: SetGCPercent is cheap, but
// not free. It reports false once stop was called.
func (t *gcTuner) tune() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	var v [3]uint64 // the live heap, stacks and globals
	for i, s := range t.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	p := gcPercentFor(v[0], v[0]+v[1]+v[2], t.floor, t.base)
	if t.percent > 0 && p > t.percent*9/10 && p < t.percent*11/10 {
		return true
	}
	t.percent = p
	debug.SetGCPercent(p)
	return true
}

// minHeapGoal is the runtime's least heap goal at GOGC=100; it grows with
// the percentage, which gcPercentFor must allow for.
const minHeapGoal = 4 << 20

// gcPercentFor is the percentage that lets the heap grow by floor bytes
// before the next collection, and never less than base. Since Go 1.18 the
// growth is the percentage of what a collection scans (the live heap, the
// goroutines' stacks and the globals), and the goal is at least
// minHeapGoal scaled by the percentage: the smaller of the two bounds.
func gcPercentFor(live, scanned, floor uint64, base int) int {
	p := (live + floor) * 100 / minHeapGoal
	if scanned > 0 {
		p = min(p, floor*100/scanned)
	}
	return max(int(p), base)
}
