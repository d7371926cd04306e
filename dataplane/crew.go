package dataplane

import (
	"runtime"
	"sync"
)

// MinChunk is the fewest packets worth handing to another core: below it
// waking a worker costs more than the crypto it takes over.
const MinChunk = 16

// Crew spreads the crypto of one batch over the cores: the batch is cut
// into contiguous chunks, idle workers take some, the caller does the
// rest, and Do returns when all are done. The caller then sends or writes
// the batch in its original order, so packets of one SA stay in order
// (as wireguard-go's parallel queues with in-order delivery do, but
// without a queue per peer). A chunk no worker is free for runs on the
// caller, so a crew shared by both directions never waits on itself. The
// zero Crew (or one worker) runs everything on the caller.
type Crew struct {
	jobs chan crewJob
	stop chan struct{}
	once sync.Once
}

type crewJob struct {
	lo, hi int
	f      func(lo, hi int)
	wg     *sync.WaitGroup
}

// MinParallelCPUs is the fewest CPUs on which NewCrew(-1) starts workers.
// With two, the other core is already busy with the kernel's half of the
// work (TUN, UDP, and on a test box the peer): iperf3 through veth on a
// 2-core machine ran about 10% slower with a worker than without.
const MinParallelCPUs = 4

// NewCrew starts workers goroutines; workers < 0 means one per CPU beyond
// the first (GOMAXPROCS-1) on machines with at least MinParallelCPUs, else
// none. Stop them with Stop.
func NewCrew(workers int) *Crew {
	if workers < 0 {
		workers = 0
		if p := runtime.GOMAXPROCS(0); p >= MinParallelCPUs {
			workers = p - 1
		}
	}
	c := &Crew{jobs: make(chan crewJob), stop: make(chan struct{})}
	for range workers {
		go c.work()
	}
	return c
}

func (c *Crew) work() {
	for {
		select {
		case j := <-c.jobs:
			j.f(j.lo, j.hi)
			j.wg.Done()
		case <-c.stop:
			return
		}
	}
}

// Stop ends the workers; Do keeps working, on the caller alone.
func (c *Crew) Stop() {
	if c != nil && c.stop != nil {
		c.once.Do(func() { close(c.stop) })
	}
}

// Do calls f over [0, n) in contiguous chunks, some on idle workers, and
// returns when all calls returned. wg is the caller's own (one per
// goroutine calling Do), so Do allocates nothing.
func (c *Crew) Do(n int, wg *sync.WaitGroup, f func(lo, hi int)) {
	if c == nil || c.jobs == nil || n < 2*MinChunk {
		f(0, n)
		return
	}
	parts := min(n/MinChunk, runtime.GOMAXPROCS(0))
	size := (n + parts - 1) / parts
	lo := size // the caller keeps [0, size)
hand:
	for ; lo < n; lo += size {
		hi := min(lo+size, n)
		wg.Add(1)
		select {
		case c.jobs <- crewJob{lo: lo, hi: hi, f: f, wg: wg}:
		default: // every worker is busy: do it here, after our own part
			wg.Done()
			break hand
		}
	}
	f(0, min(size, n))
	if lo < n {
		f(lo, n)
	}
	wg.Wait()
}

// Results returns res resized to n slots, one per packet of a batch the
// crew will fill (nil: dropped).
func Results(res [][]byte, n int) [][]byte {
	if cap(res) < n {
		return make([][]byte, n, max(n, 2*cap(res)))
	}
	return res[:n]
}

// Gather appends the packets a crew left in res to w in batch order,
// clears res, and returns them with the bytes of their inner packets
// (each buffer holds WriteOffset bytes of headroom first).
func Gather(res, w [][]byte) ([][]byte, uint64) {
	var bytes uint64
	for k, r := range res {
		if r != nil {
			w = append(w, r)
			bytes += uint64(len(r) - WriteOffset)
			res[k] = nil
		}
	}
	return w, bytes
}
