package gctune

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 200},
		{800 << 10, 200}, // imdsd at rest: goal max(8, 2.4) MiB
		{2 * mib, 200},   // max(8, 6)
		{3 * mib, 166},   // max(6.6, 7.98)
		{4 * mib, 100},   // 2 × live = 8 MiB
		{43 * mib, 100},  // a flood of connections: twice its size, no more
	} {
		if got := Percent(tc.live, BusyGoal); got != tc.want {
			t.Errorf("Percent(%d KiB) = %d, want %d", tc.live>>10, got, tc.want)
		}
		// The goal Go derives from it is at least BusyGoal (less than
		// 1% short, from integer percents).
		p := uint64(Percent(tc.live, BusyGoal))
		if goal := max(minHeap*p/100, tc.live*(100+p)/100); goal < BusyGoal*99/100 {
			t.Errorf("live %d KiB: goal %d KiB < %d KiB", tc.live>>10, goal>>10, BusyGoal>>10)
		}
	}
}

// fakeClock is advanced by the test between collections.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestTuner: collections close together raise GOGC, far apart set it back
// to 100; Stop restores 100. Collections are forced; the clock is the
// test's.
func TestTuner(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	set := make(chan int, 16)
	tu := start(clock.now, func(p int) { set <- p })
	defer tu.Stop()
	// collect forces collections until the tuner has seen one (its
	// cleanup runs on another goroutine after the collection).
	seen := func() int {
		tu.mu.Lock()
		defer tu.mu.Unlock()
		return tu.percent
	}
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // a failure bound
		for seen() != want {
			if time.Now().After(deadline) {
				t.Fatalf("GOGC stayed %d, want %d", seen(), want)
			}
			runtime.GC()
			runtime.Gosched()
		}
	}
	clock.add(100 * time.Millisecond) // busy: the clock barely moves
	waitFor(200)
	if p := <-set; p != 200 {
		t.Errorf("set %d, want 200", p)
	}
	clock.add(time.Minute) // idle: the next collection is a minute later
	waitFor(100)
	if p := <-set; p != 100 {
		t.Errorf("set %d, want 100", p)
	}
}
