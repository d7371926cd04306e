package dataplane

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestCrewCoversEveryIndexOnce: whatever the workers take, every index of
// the batch is handled exactly once and Do returns only after all are.
func TestCrewCoversEveryIndexOnce(t *testing.T) {
	for _, workers := range []int{0, 1, 3} {
		c := NewCrew(workers)
		var wg sync.WaitGroup
		for _, n := range []int{0, 1, 31, 32, 33, 64, 128, 1000} {
			hits := make([]atomic.Int32, n)
			c.Do(n, &wg, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					hits[i].Add(1)
				}
			})
			for i := range hits {
				if h := hits[i].Load(); h != 1 {
					t.Fatalf("workers %d, n %d: index %d handled %d times", workers, n, i, h)
				}
			}
		}
		c.Stop()
		c.Stop()
		hits := 0
		c.Do(100, &wg, func(lo, hi int) { hits += hi - lo }) // after Stop: on the caller
		if hits != 100 {
			t.Errorf("after Stop: %d of 100 handled", hits)
		}
	}
	var nilCrew *Crew
	var wg sync.WaitGroup
	n := 0
	nilCrew.Do(50, &wg, func(lo, hi int) { n += hi - lo })
	if n != 50 {
		t.Errorf("nil crew handled %d of 50", n)
	}
}

// TestCrewTwoCallers: both directions share one crew at once.
func TestCrewTwoCallers(t *testing.T) {
	c := NewCrew(2)
	defer c.Stop()
	var done sync.WaitGroup
	for range 2 {
		done.Add(1)
		go func() {
			defer done.Done()
			var wg sync.WaitGroup
			for range 200 {
				var sum atomic.Int64
				c.Do(128, &wg, func(lo, hi int) { sum.Add(int64(hi - lo)) })
				if sum.Load() != 128 {
					t.Errorf("sum %d, want 128", sum.Load())
					return
				}
			}
		}()
	}
	done.Wait()
}
