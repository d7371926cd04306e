package dataplane

import "github.com/qcdvpn/qcdvpn/esp"

// SkipOutbound adds delta to the sequence numbers of the outbound SAs in
// use and prepared: a gateway that took the SA over from a failed cluster
// member asked for it (RFC 6311 §5.2), so that our packets are not taken
// for replays of what we sent before it missed.
func (e *Engine) SkipOutbound(delta uint64) {
	cur := e.cur.Load()
	if cur == nil || delta == 0 {
		return
	}
	for _, o := range []*esp.Outbound{cur.out, cur.next} {
		if o != nil {
			last := o.LastSeq()
			next := last + 1 + delta
			if next <= last {
				next = ^uint64(0) // wrapped: the SA is used up, a rekey follows
			}
			o.SetSeq(next)
		}
	}
}
