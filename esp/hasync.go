package esp

// SkipReplay moves the anti-replay window so that every sequence number up
// to and including top counts as received, and only later ones are
// accepted: a hot-standby gateway that took the SA over knows the top the
// active member had at its last export, plus what it asked the peer to
// skip (RFC 6311 §5.2, the strict policy of §8.2). It never moves the
// window back.
func (i *Inbound) SkipReplay(top uint64) {
	w := &i.win
	w.mu.Lock()
	defer w.mu.Unlock()
	if top <= w.top.Load() {
		return
	}
	for b := range w.ring {
		w.ring[b].Store(^uint64(0))
	}
	// In top's own block only the numbers up to top are marked, so that
	// the next ones (same block, no slide) are still accepted.
	w.ring[(top>>blockShift)&blockMask].Store(uint64(2)<<(top&bitIndexMsk) - 1)
	w.top.Store(top)
}
