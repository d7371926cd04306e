package esp

import (
	"sync"
	"sync/atomic"
)

// Anti-replay window (RFC 4303 §3.4.3), a bitmap ring as in RFC 6479.
//
// Why not golang.zx2c4.com/wireguard/replay: its Filter.ValidateCounter
// checks and marks a counter in one step, but ESP must check before the
// (costly) integrity check and mark only after it succeeded, or forged
// packets could advance or poison the window. So this is the same
// algorithm and geometry (128 blocks of 64 bits, window 8128) split into a
// lock-free check and a mutex-guarded update; the tests run both against
// each other on random counter sequences.
const (
	blockBits   = 64
	ringBlocks  = 128 // power of two
	windowSize  = (ringBlocks - 1) * blockBits
	blockMask   = ringBlocks - 1
	blockShift  = 6
	bitIndexMsk = blockBits - 1
)

// window is the receive window. top is the highest authenticated sequence
// number (0 before the first packet; 0 is never a valid ESP sequence
// number). All fields are read with atomics so check can run without the
// lock concurrently with update; mu serialises updates only.
type window struct {
	mu   sync.Mutex
	top  atomic.Uint64
	ring [ringBlocks]atomic.Uint64
}

// check is the pre-crypto test: false if seq is 0, left of the window or
// already marked. It may race with update; a stale answer is harmless
// because update decides again under the lock, and a block is only reused
// once its counters are left of the window anyway.
func (w *window) check(seq uint64) bool {
	if seq == 0 {
		return false
	}
	top := w.top.Load()
	if seq > top {
		return true
	}
	if top-seq > windowSize {
		return false
	}
	return w.ring[(seq>>blockShift)&blockMask].Load()&(1<<(seq&bitIndexMsk)) == 0
}

// update marks seq as received after it authenticated; false if it is (by
// now) a replay or too old.
func (w *window) update(seq uint64) bool {
	if seq == 0 {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	top := w.top.Load()
	if seq > top {
		// Slide forward, clearing the blocks entered (at most the whole ring).
		cur := top >> blockShift
		diff := (seq >> blockShift) - cur
		if diff > ringBlocks {
			diff = ringBlocks
		}
		for i := cur + 1; i <= cur+diff; i++ {
			w.ring[i&blockMask].Store(0)
		}
		w.top.Store(seq)
	} else if top-seq > windowSize {
		return false
	}
	b := &w.ring[(seq>>blockShift)&blockMask]
	old := b.Load()
	bit := uint64(1) << (seq & bitIndexMsk)
	if old&bit != 0 {
		return false
	}
	b.Store(old | bit)
	return true
}

// inferSeq returns the full 64-bit sequence number of a packet carrying the
// low 32 bits seql, guessing the high half from the window top as in
// RFC 4303 Appendix A2.2. W counts every number check accepts below and
// including the top, so Bl = Tl - W + 1 is the oldest number in the window.
func inferSeq(top uint64, seql uint32) uint64 {
	th, tl := uint32(top>>32), uint32(top)
	const w = windowSize + 1
	var sh uint32
	if tl >= w-1 { // Case A: window within one sequence-number subspace
		if seql >= tl-w+1 {
			sh = th
		} else {
			sh = th + 1
		}
	} else { // Case B: window spans two subspaces
		if seql >= tl-w+1 { // uint32 arithmetic: wraps as the RFC's mod 2^32
			if th == 0 {
				// Nothing below subspace 0: the packet is far ahead.
				sh = 0
			} else {
				sh = th - 1
			}
		} else {
			sh = th
		}
	}
	return uint64(sh)<<32 | uint64(seql)
}
