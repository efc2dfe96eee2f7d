// Package gctune lets the garbage collector run less often while imdsd is
// busy, and as usual when it is idle.
//
// imdsd's reachable heap after start is about 0.8 MiB that lives as long
// as the process: the AWS SDK's endpoint tables and schemas, built when
// their packages initialise, and imdsd's own handlers. Go's heap goal is at
// least 4 MiB (GOGC=100), so a busy endpoint collects after every 3 MiB or
// so of allocation, about a thousand requests, and each collection marks
// that whole heap again: about 1.1 µs of CPU per request more than a bare
// net/http server with an empty heap spends (BENCHMARKS.md, "Cost of an
// answer").
//
// While collections come less than BusyInterval apart, the tuner raises
// the heap goal to BusyGoal (8 MiB): GOGC 200 while the live heap is small,
// falling to 100 as it grows towards half the goal, so a large live heap (a
// flood of connections) still gets twice its size and no more. When
// collections are further apart (idle: Go collects at least every two
// minutes), GOGC is 100 again, so the heap an idle imdsd keeps, and returns
// to the system, is what it was.
//
// It never overrides an operator's GOGC: with GOGC set in the environment
// it does nothing.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

const (
	// BusyGoal is the heap goal while busy.
	BusyGoal = 8 << 20
	// BusyInterval: collections closer than this mean imdsd is busy.
	BusyInterval = time.Second
	// minHeap is Go's smallest heap goal at GOGC=100; it scales with GOGC.
	minHeap = 4 << 20
)

// Percent is the GOGC that gives a heap goal of at least goal, and no more
// than needed, for a live heap of live bytes: Go's goal is the larger of
// minHeap×GOGC/100 and live×(1+GOGC/100). It is never below 100.
func Percent(live, goal uint64) int {
	p := int64(goal * 100 / minHeap)
	if live > 0 {
		if q := int64(goal*100/live) - 100; q < p {
			p = q
		}
	}
	return int(max(p, 100))
}

// Tuner adjusts GOGC after every collection. Stop it with Stop.
type Tuner struct {
	now     func() time.Time
	adjust  func(percent int) // debug.SetGCPercent, or a test's
	mu      sync.Mutex
	last    time.Time // end of the previous collection seen
	percent int
	stopped bool
	sample  []metrics.Sample
}

// Start starts a tuner unless GOGC is set in the environment (then it
// returns nil: the operator's setting stands).
func Start() *Tuner {
	if os.Getenv("GOGC") != "" {
		return nil
	}
	return start(time.Now, func(p int) { debug.SetGCPercent(p) })
}

func start(now func() time.Time, adjust func(int)) *Tuner {
	t := &Tuner{now: now, adjust: adjust, percent: 100, last: now(),
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.arm()
	return t
}

// sentinel is allocated each cycle and dropped at once: its cleanup runs
// after the next collection. The pointer field keeps it out of the tiny
// allocator, whose blocks may outlive their contents.
type sentinel struct {
	_ *int
	_ [8]byte
}

func (t *Tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *Tuner) { t.cycle() }, t)
}

// cycle runs after each collection: it sets GOGC for what the interval
// since the last one says, and arms the next.
func (t *Tuner) cycle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	now := t.now()
	busy := now.Sub(t.last) < BusyInterval
	t.last = now
	percent := 100
	if busy {
		metrics.Read(t.sample)
		var live uint64
		if t.sample[0].Value.Kind() == metrics.KindUint64 {
			live = t.sample[0].Value.Uint64()
		}
		percent = Percent(live, BusyGoal)
	}
	if percent != t.percent {
		t.percent = percent
		t.adjust(percent)
	}
	t.arm()
}

// Stop stops the tuner and sets GOGC back to 100.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped && t.percent != 100 {
		t.adjust(100)
	}
	t.stopped = true
}
