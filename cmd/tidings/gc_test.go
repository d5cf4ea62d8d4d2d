package main

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

// churn allocates 128 MiB in small pieces, keeping nothing, and returns
// how many collections ran meanwhile.
func churn() uint64 {
	before := gcCycles()
	var keep []byte
	for range 128 << 10 {
		keep = make([]byte, 1024)
	}
	runtime.KeepAlive(keep)
	return gcCycles() - before
}

// metric reads one of the runtime's uint64 metrics.
func metric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func gcCycles() uint64  { return metric("/gc/cycles/total:gc-cycles") }
func heapGoal() uint64  { return metric("/gc/heap/goal:bytes") }
func heapLive() uint64  { return metric("/gc/heap/live:bytes") }
func gcPercent() uint64 { return metric("/gc/gogc:percent") }

func TestHeapFloorSpacesCollections(t *testing.T) {
	runtime.GC()
	plain := churn()

	stop := keepHeapFloor(64 << 20)
	runtime.GC()
	// The collection's finalizers set the percentage for what is live now.
	waitFor(t, "the heap to be let grow by about 64 MiB", func() bool {
		grow := heapGoal() - heapLive()
		return grow > 60<<20 && grow < 72<<20
	})
	floored := churn()

	// A live heap above the floor is collected as by default.
	live := make([]byte, 256<<20)
	runtime.GC()
	waitFor(t, "the percentage to fall back", func() bool { return gcPercent() == 100 })
	runtime.KeepAlive(live)

	stop()
	if p := gcPercent(); p != 100 {
		t.Errorf("after stop the percentage is %d, want 100", p)
	}
	t.Logf("collections while 128 MiB of garbage was made: %d by default, %d with a 64 MiB floor", plain, floored)
	if plain < 8 || floored*4 > plain {
		t.Errorf("collections: %d by default, %d with the floor; want at most a quarter", plain, floored)
	}
}

func TestGCPercentFor(t *testing.T) {
	const MiB = 1 << 20
	for _, c := range []struct {
		live, scanned, floor uint64
		want                 int
	}{
		{4 * MiB, 4 * MiB, 32 * MiB, 800},     // grows by 32 MiB
		{3 * MiB, 4 * MiB, 32 * MiB, 800},     // stacks and globals count
		{32 * MiB, 33 * MiB, 32 * MiB, 100},   // the default already waits as long
		{256 * MiB, 260 * MiB, 32 * MiB, 100}, // the default
		{0, 1 * MiB, 32 * MiB, 800},           // the least goal, 4 MiB × 8, is the floor
		{0, 0, 32 * MiB, 800},
	} {
		if got := gcPercentFor(c.live, c.scanned, c.floor, 100); got != c.want {
			t.Errorf("gcPercentFor(%d, %d, %d) = %d, want %d", c.live, c.scanned, c.floor, got, c.want)
		}
	}
}
