package qcd

import (
	"crypto/subtle"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Default and maximum Limits.
const (
	DefaultPerSource      = 5.0
	DefaultPerSourceBurst = 10
	DefaultGlobal         = 200.0
	DefaultGlobalBurst    = 50
	DefaultTable          = 4096
	// MaxTable caps Limits.Table so a configuration typo cannot ask for
	// gigabytes.
	MaxTable = 1 << 20
)

// Limits are the token-bucket rate limits a Verifier applies before it
// compares tokens (RFC 6290 §8.1: limit the rate of QCD tokens verified
// from one source; §8.2: limit INVALID_SPI processing). Zero, negative or
// NaN fields take their defaults.
type Limits struct {
	// PerSource is verifications per second per source (default 5).
	PerSource float64
	// PerSourceBurst is the per-source bucket size (default 10).
	PerSourceBurst int
	// Global is verifications per second overall (default 200).
	Global float64
	// GlobalBurst is the global bucket size (default 50).
	GlobalBurst int
	// Table is the fixed number of per-source buckets (default 4096, at
	// most MaxTable). Sources hash into it with a per-Verifier keyed hash,
	// so a flood of spoofed sources cannot grow memory and cannot aim at
	// a chosen bucket; sources that collide share a bucket.
	Table int
}

func (l Limits) withDefaults() Limits {
	if !(l.PerSource > 0) {
		l.PerSource = DefaultPerSource
	}
	if l.PerSourceBurst < 1 {
		l.PerSourceBurst = DefaultPerSourceBurst
	}
	if !(l.Global > 0) {
		l.Global = DefaultGlobal
	}
	if l.GlobalBurst < 1 {
		l.GlobalBurst = DefaultGlobalBurst
	}
	if l.Table < 1 {
		l.Table = DefaultTable
	}
	l.Table = min(l.Table, MaxTable)
	return l
}

// Result is the outcome of Verifier.Check.
type Result uint8

// Results of Verifier.Check.
const (
	// Unknown: the message names no SA we hold tokens for; it was
	// rejected before any rate limit or comparison.
	Unknown Result = iota
	// Verified: a presented token matched one stored for the SA. The
	// caller must silently delete the IKE SA and its Child SAs (RFC 6290
	// §4.5) and call Store.Delete.
	Verified
	// Rejected: the SA is known but no token matched. No response may be
	// sent (§4.5); the event may be logged.
	Rejected
	// Limited: a rate limit was hit and nothing was compared.
	Limited
	// NoToken: the SA is known but the message has no valid token — a
	// bare hint that the gateway may have lost the SA (plain RFC 7296).
	NoToken
)

// String returns the result's name.
func (r Result) String() string {
	switch r {
	case Unknown:
		return "unknown"
	case Verified:
		return "verified"
	case Rejected:
		return "rejected"
	case Limited:
		return "limited"
	case NoToken:
		return "no-token"
	}
	return "Result(?)"
}

// Verdict is Check's decision on one message.
type Verdict struct {
	// Result is the outcome.
	Result Result
	// SA is the IKE SA the message was resolved to; for Unknown it is
	// the message header's SPIs.
	SA SAKey
}

// Stats counts Check's results since the Verifier was made.
type Stats struct {
	Unknown, Verified, Rejected, Limited, NoToken uint64
}

// Verifier checks the tokens of unprotected messages against a Store,
// behind per-source and global rate limits. Make one with NewVerifier. It
// is safe for concurrent use and its memory does not grow with the number
// of sources seen.
type Verifier struct {
	store *Store
	lim   Limits
	now   func() time.Time
	base  time.Time // bucket times are nanoseconds since base
	seed  maphash.Seed

	mu     sync.Mutex
	table  []bucket // fixed length lim.Table
	global bucket

	counts [NoToken + 1]atomic.Uint64
}

// bucket is a token bucket; last is nanoseconds since Verifier.base.
type bucket struct {
	tokens float64
	last   int64
}

// NewVerifier returns a Verifier over store with limits lim (defaults for
// zero fields) and clock now (nil: time.Now). All buckets start full.
func NewVerifier(store *Store, lim Limits, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	if store == nil {
		store = NewStore(nil)
	}
	lim = lim.withDefaults()
	v := &Verifier{
		store:  store,
		lim:    lim,
		now:    now,
		base:   now(),
		seed:   maphash.MakeSeed(),
		table:  make([]bucket, lim.Table),
		global: bucket{tokens: float64(lim.GlobalBurst)},
	}
	for i := range v.table {
		v.table[i].tokens = float64(lim.PerSourceBurst)
	}
	return v
}

// Check decides on one parsed unprotected message m received from src.
//
// It first resolves the SA: for KindInvalidIKESPI the header's SPIs; for
// KindInvalidSPI the header's SPIs if held, else the SA ChildSPI is mapped
// to. If none is held the result is Unknown and no rate-limit budget is
// spent (so random SPIs cannot starve real tokens). A message without
// tokens gives NoToken. Then one unit is taken from both the source's
// bucket and the global bucket; if either is empty the result is Limited
// and neither is charged. Finally every presented token is compared with
// every stored token of the SA in constant time, without stopping at a
// match: Verified if any matched, else Rejected.
//
// Check does not allocate. It takes tokens from any source, as RFC 6290
// §3 requires; src only selects the rate-limit bucket.
func (v *Verifier) Check(src netip.Addr, m *Message) Verdict {
	d := v.check(src, m)
	v.counts[d.Result].Add(1)
	return d
}

func (v *Verifier) check(src netip.Addr, m *Message) Verdict {
	if m == nil {
		return Verdict{Result: Unknown}
	}
	st := v.store
	// Hold the read lock through the comparison so the stored tokens
	// cannot change under it; only this Verifier's mutex nests inside.
	st.mu.RLock()
	defer st.mu.RUnlock()
	sa, e := st.resolveLocked(m)
	if e == nil {
		return Verdict{Result: Unknown, SA: sa}
	}
	// NTokens is a plain field: clamp it so a hand-made Message cannot
	// make us index out of range.
	n := min(max(m.NTokens, 0), MaxTokens)
	if n == 0 {
		return Verdict{Result: NoToken, SA: sa}
	}
	if !v.allow(src) {
		return Verdict{Result: Limited, SA: sa}
	}
	match := 0
	for i := range n {
		for j := range e.n {
			match |= subtle.ConstantTimeCompare(m.Tokens[i], e.toks[j])
		}
	}
	if match == 1 {
		return Verdict{Result: Verified, SA: sa}
	}
	return Verdict{Result: Rejected, SA: sa}
}

// allow takes one unit from src's bucket and the global bucket if both
// have one.
func (v *Verifier) allow(src netip.Addr) bool {
	key := sourceKey(src)
	idx := maphash.Bytes(v.seed, key[:]) % uint64(len(v.table))
	t := v.elapsed()

	v.mu.Lock()
	defer v.mu.Unlock()
	b := &v.table[idx]
	b.refill(t, v.lim.PerSource, v.lim.PerSourceBurst)
	v.global.refill(t, v.lim.Global, v.lim.GlobalBurst)
	if b.tokens < 1 || v.global.tokens < 1 {
		return false
	}
	b.tokens--
	v.global.tokens--
	return true
}

// elapsed is the clock in nanoseconds since base; Sub uses the monotonic
// reading of time.Now, so wall-clock steps do not refill buckets.
func (v *Verifier) elapsed() int64 {
	return max(int64(v.now().Sub(v.base)), 0)
}

func (b *bucket) refill(now int64, rate float64, burst int) {
	if now <= b.last {
		// An injected clock may step back; wait for it to catch up.
		return
	}
	b.tokens = min(b.tokens+float64(now-b.last)*rate/1e9, float64(burst))
	b.last = now
}

// sourceKey is what a source is rate-limited by: an IPv4 address (also
// when IPv4-mapped), or an IPv6 /64, since whoever holds one IPv6 address
// usually holds its whole /64. Zones are ignored.
func sourceKey(a netip.Addr) [16]byte {
	a = a.Unmap()
	k := a.As16()
	if a.Is6() {
		clear(k[8:])
	}
	return k
}

// Stats returns how often Check gave each result.
func (v *Verifier) Stats() Stats {
	return Stats{
		Unknown:  v.counts[Unknown].Load(),
		Verified: v.counts[Verified].Load(),
		Rejected: v.counts[Rejected].Load(),
		Limited:  v.counts[Limited].Load(),
		NoToken:  v.counts[NoToken].Load(),
	}
}
