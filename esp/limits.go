package esp

import (
	"sync/atomic"
	"time"
)

// Limits bounds the use of one SA direction; a zero field is unlimited.
// Limits are enforced: once one is reached the SA refuses every further
// packet with ErrLifetime. Rekeying before that is the caller's job: poll
// Expired, UsedBytes and UsedPackets (soft limits belong to the caller).
type Limits struct {
	Bytes    uint64        // inner-packet bytes (before padding and framing)
	Packets  uint64        // packets
	Lifetime time.Duration // from the SA's creation time
}

// life tracks usage against Limits with atomics only.
type life struct {
	lim      Limits
	deadline time.Time // zero when Lifetime is 0
	packets  atomic.Uint64
	bytes    atomic.Uint64
	dead     atomic.Bool
	clock    func() time.Time // time.Now; replaced by tests
}

func (l *life) init(lim Limits, now time.Time) {
	l.lim, l.clock = lim, time.Now
	if lim.Lifetime > 0 {
		l.deadline = now.Add(lim.Lifetime)
	}
}

// alive is the cheap check made before any work on a packet.
func (l *life) alive() bool {
	if l.dead.Load() {
		return false
	}
	if !l.deadline.IsZero() && !l.clock().Before(l.deadline) {
		l.dead.Store(true)
		return false
	}
	return true
}

// use accounts one packet of n inner bytes. A packet that would cross a
// limit is refused (and not counted), and the SA stays dead from then on.
func (l *life) use(n int) bool {
	p := l.packets.Add(1)
	b := l.bytes.Add(uint64(n))
	if (l.lim.Packets != 0 && p > l.lim.Packets) || (l.lim.Bytes != 0 && b > l.lim.Bytes) {
		l.dead.Store(true)
		l.packets.Add(^uint64(0))
		l.bytes.Add(-uint64(n))
		return false
	}
	return true
}

// expired reports whether a limit has been reached as of now.
func (l *life) expired(now time.Time) bool {
	if l.dead.Load() {
		return true
	}
	if !l.deadline.IsZero() && !now.Before(l.deadline) {
		return true
	}
	return (l.lim.Packets != 0 && l.packets.Load() >= l.lim.Packets) ||
		(l.lim.Bytes != 0 && l.bytes.Load() >= l.lim.Bytes)
}

// counters are the Stats of one SA direction, updated with atomics.
type counters struct {
	authFailed, replayed, malformed atomic.Uint64
}

// Stats is a snapshot of an SA direction's counters. Packets and Bytes count
// packets processed successfully and their inner bytes; the others count
// inbound drops by reason.
type Stats struct {
	Packets, Bytes, AuthFailed, Replayed, Malformed uint64
}

func (l *life) stats(c *counters) Stats {
	return Stats{
		Packets:    l.packets.Load(),
		Bytes:      l.bytes.Load(),
		AuthFailed: c.authFailed.Load(),
		Replayed:   c.replayed.Load(),
		Malformed:  c.malformed.Load(),
	}
}
