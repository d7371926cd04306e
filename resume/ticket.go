package resume

import (
	"bytes"
	"container/heap"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

const (
	// MaxKeyIDLen is the longest [TicketKey.ID] (bytes).
	MaxKeyIDLen = 16
	// MaxLifetime is the longest ticket lifetime an [Authority] accepts.
	// RFC 5723 §6.2 wants a finite lifetime no longer than the IKE SA's;
	// a day bounds the used-ticket cache too.
	MaxLifetime = 24 * time.Hour
	// MaxTicketLen is the longest ticket that fits a TICKET_LT_OPAQUE
	// notification: 65535 minus the generic payload header (4), the
	// notify fields (4) and the lifetime (4).
	MaxTicketLen = 65535 - 12
	// DefaultUsedCacheSize bounds the used-ticket cache of an [Authority].
	DefaultUsedCacheSize = 1 << 16

	ticketVersion = 1
	gcmNonceLen   = 12
	gcmTagLen     = 16
	// minTicketLen: version, id length, a 1-byte id, expiry, nonce, tag.
	minTicketLen = 1 + 1 + 1 + 8 + gcmNonceLen + gcmTagLen
	// maxClockSkew is how far the clocks of two gateways of a domain may
	// disagree. A ticket whose expiry lies further ahead than
	// MaxLifetime+maxClockSkew cannot have been issued by us: it is refused
	// as forged before any decryption, and Consume never keeps a cache
	// entry longer than that.
	maxClockSkew = 5 * time.Minute

	ticketKDFInfo = "qcdvpn resume ticket key v1"
)

// Errors returned by [Authority.Open]. Test them with errors.Is.
var (
	// ErrTicketExpired: the ticket's authenticated-in-clear expiry has passed.
	ErrTicketExpired = errors.New("resume: ticket expired")
	// ErrTicketForged: bad MAC, truncated, malformed or unknown version.
	ErrTicketForged = errors.New("resume: ticket forged or malformed")
	// ErrTicketUnknownKey: the key ID is not one of the Authority's keys
	// (retired key, or another domain's ticket).
	ErrTicketUnknownKey = errors.New("resume: ticket key unknown")
	// ErrTicketReused: the ticket was already consumed (RFC 5723 §4.3.1).
	ErrTicketReused = errors.New("resume: ticket already used")
	// ErrReplayCacheFull is returned instead of accepting a ticket when
	// the used-ticket cache is full. It wraps [ErrTicketReused], so a
	// gateway that refuses reused tickets refuses these too: the cache
	// never forgets an unexpired entry, because forgetting would let that
	// ticket be replayed.
	ErrReplayCacheFull = fmt.Errorf("%w (used-ticket cache full)", ErrTicketReused)
)

// TicketKey is one ticket protection key shared by all gateways of a
// domain (taken from their configurations), so that a ticket issued by one
// gateway can be resumed on another.
type TicketKey struct {
	// ID names the key in every ticket, in the clear: 1..16 bytes.
	ID string
	// Key is the secret; generate it randomly (RFC 5723 §9.5) and use it
	// for nothing else.
	Key [32]byte
}

// Authority seals and opens tickets by value with AES-256-GCM.
//
// The first key seals; every key opens, which allows key rollover: deploy
// [new, old] everywhere, and drop old once the last ticket it sealed has
// expired. Because nonces are random, a key should seal far fewer than 2^32
// tickets; rotate keys regularly (RFC 5723 §9.5).
//
// The Authority keeps a used-ticket cache (SHA-256 of the ticket to its
// expiry) so that a ticket is accepted at most once (RFC 5723 §4.3.1,
// §9.10). Entries are dropped when their ticket expires. The cache holds
// at most DefaultUsedCacheSize entries; when it is full, [Authority.Open]
// fails with [ErrReplayCacheFull] and [Authority.Consume] returns false
// until entries expire: resumption is refused (clients fall back to a full
// IKE exchange) rather than an entry being forgotten. The cache lives in
// memory: it is per gateway process, so a domain whose gateways share keys
// should make clients stick to one gateway or keep lifetimes short
// (RFC 5723 §9.8).
//
// An Authority is safe for concurrent use.
type Authority struct {
	sealID   string
	sealAEAD cipher.AEAD
	keys     map[string]cipher.AEAD
	lifetime uint32 // seconds
	now      func() time.Time

	mu      sync.Mutex
	used    map[[sha256.Size]byte]int64 // ticket hash -> expiry (Unix s)
	expiry  usedHeap                    // same entries, soonest expiry first
	maxUsed int
}

// NewAuthority returns an Authority sealing with keys[0] and opening with
// any of keys, issuing tickets valid for lifetime (whole seconds, at least
// one, at most MaxLifetime). now is the clock; nil means time.Now.
func NewAuthority(keys []TicketKey, lifetime time.Duration, now func() time.Time) (*Authority, error) {
	if len(keys) == 0 {
		return nil, errors.New("resume: no ticket key")
	}
	if lifetime < time.Second || lifetime > MaxLifetime {
		return nil, fmt.Errorf("resume: ticket lifetime %v out of range [1s, %v]", lifetime, MaxLifetime)
	}
	if now == nil {
		now = time.Now
	}
	a := &Authority{
		keys:     make(map[string]cipher.AEAD, len(keys)),
		lifetime: uint32(lifetime / time.Second),
		now:      now,
		used:     make(map[[sha256.Size]byte]int64),
		maxUsed:  DefaultUsedCacheSize,
	}
	var zero [32]byte
	for i, k := range keys {
		if len(k.ID) == 0 || len(k.ID) > MaxKeyIDLen {
			return nil, fmt.Errorf("resume: ticket key %d: ID must be 1..%d bytes, got %d", i, MaxKeyIDLen, len(k.ID))
		}
		if _, dup := a.keys[k.ID]; dup {
			return nil, fmt.Errorf("resume: ticket key %d: duplicate ID %q", i, k.ID)
		}
		// An all-zero key is almost surely a missing config value.
		if k.Key == zero {
			return nil, fmt.Errorf("resume: ticket key %q is all zeros", k.ID)
		}
		aead, err := newAEAD(k.Key[:], ticketKDFInfo)
		if err != nil {
			return nil, err
		}
		a.keys[k.ID] = aead
	}
	a.sealID = keys[0].ID
	a.sealAEAD = a.keys[a.sealID]
	return a, nil
}

// newAEAD derives an AES-256-GCM instance from secret for one purpose.
func newAEAD(secret []byte, info string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, info, 32)
	if err != nil {
		return nil, fmt.Errorf("resume: derive key: %w", err)
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("resume: aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("resume: gcm: %w", err)
	}
	return aead, nil
}

// Issue seals state (opaque bytes from the IKE layer) into a ticket valid
// for the Authority's lifetime. It returns the ticket and the lifetime in
// seconds for the TICKET_LT_OPAQUE notification. The format is described in
// the package documentation.
func (a *Authority) Issue(state []byte) (ticket []byte, lifetime uint32, err error) {
	hdrLen := 2 + len(a.sealID) + 8 + gcmNonceLen
	total := hdrLen + len(state) + gcmTagLen
	if total > MaxTicketLen {
		return nil, 0, fmt.Errorf("resume: state of %d bytes does not fit a ticket", len(state))
	}
	expiry := a.now().Unix() + int64(a.lifetime)
	out := make([]byte, hdrLen, total)
	out[0] = ticketVersion
	out[1] = byte(len(a.sealID))
	copy(out[2:], a.sealID)
	binary.BigEndian.PutUint64(out[2+len(a.sealID):], uint64(expiry))
	nonce := out[hdrLen-gcmNonceLen : hdrLen]
	if _, err := rand.Read(nonce); err != nil {
		return nil, 0, fmt.Errorf("resume: nonce: %w", err)
	}
	// AEAD forbids dst overlapping the additional data: seal against a copy.
	aad := bytes.Clone(out)
	out = a.sealAEAD.Seal(out, aad[hdrLen-gcmNonceLen:], state, aad)
	return out, a.lifetime, nil
}

// ticketHeader is the parsed clear part of a ticket.
type ticketHeader struct {
	keyID  string
	expiry int64 // Unix seconds
	hdrLen int   // bytes up to and including the nonce
}

// parseTicket splits a ticket without checking its MAC.
func parseTicket(t []byte) (ticketHeader, error) {
	if len(t) < minTicketLen || len(t) > MaxTicketLen {
		return ticketHeader{}, ErrTicketForged
	}
	if t[0] != ticketVersion {
		return ticketHeader{}, ErrTicketForged
	}
	idLen := int(t[1])
	if idLen == 0 || idLen > MaxKeyIDLen {
		return ticketHeader{}, ErrTicketForged
	}
	hdrLen := 2 + idLen + 8 + gcmNonceLen
	if len(t) < hdrLen+gcmTagLen {
		return ticketHeader{}, ErrTicketForged
	}
	exp := binary.BigEndian.Uint64(t[2+idLen:])
	if exp > 1<<62 { // far beyond any plausible clock; keeps int64 math sane
		return ticketHeader{}, ErrTicketForged
	}
	return ticketHeader{keyID: string(t[2 : 2+idLen]), expiry: int64(exp), hdrLen: hdrLen}, nil
}

// Open checks and decrypts a ticket without consuming it. It returns the
// sealed state and the ticket's expiry. Errors: [ErrTicketForged],
// [ErrTicketUnknownKey], [ErrTicketExpired], [ErrTicketReused] and
// [ErrReplayCacheFull]. The checks that need no decryption come first
// (RFC 5723 §9.3).
func (a *Authority) Open(ticket []byte) (state []byte, expiry time.Time, err error) {
	h, err := parseTicket(ticket)
	if err != nil {
		return nil, time.Time{}, err
	}
	aead, ok := a.keys[h.keyID]
	if !ok {
		return nil, time.Time{}, ErrTicketUnknownKey
	}
	now := a.now().Unix()
	if now >= h.expiry {
		return nil, time.Time{}, ErrTicketExpired
	}
	if h.expiry > now+int64((MaxLifetime+maxClockSkew)/time.Second) {
		return nil, time.Time{}, ErrTicketForged
	}
	sum := sha256.Sum256(ticket)
	a.mu.Lock()
	a.dropExpiredLocked(now)
	_, used := a.used[sum]
	full := len(a.used) >= a.maxUsed
	a.mu.Unlock()
	if used {
		return nil, time.Time{}, ErrTicketReused
	}
	if full {
		return nil, time.Time{}, ErrReplayCacheFull
	}
	state, err = aead.Open(nil, ticket[h.hdrLen-gcmNonceLen:h.hdrLen], ticket[h.hdrLen:], ticket[:h.hdrLen])
	if err != nil {
		return nil, time.Time{}, ErrTicketForged
	}
	if state == nil {
		state = []byte{} // opened fine: tell an empty state from a failure
	}
	return state, time.Unix(h.expiry, 0), nil
}

// Consume marks a ticket used. Call it once an IKE SA was established with
// the ticket (RFC 5723 §4.3.1: only then is a ticket used), passing the
// expiry [Authority.Open] returned. It returns false if the ticket was
// already used, or if the used-ticket cache is full; either way the new
// IKE SA must not be kept. A ticket that has already expired is not
// recorded (Open refuses it anyway) and Consume returns true.
func (a *Authority) Consume(ticket []byte, expiry time.Time) bool {
	exp := expiry.Unix()
	// The authenticated header is the truth when the ticket parses: a
	// caller passing too early an expiry must not shorten the entry.
	if h, err := parseTicket(ticket); err == nil && h.expiry > exp {
		exp = h.expiry
	}
	now := a.now().Unix()
	// Never keep an entry longer than any ticket of ours can live.
	if limit := now + int64((MaxLifetime+maxClockSkew)/time.Second); exp > limit {
		exp = limit
	}
	sum := sha256.Sum256(ticket)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dropExpiredLocked(now)
	if _, used := a.used[sum]; used {
		return false
	}
	if now >= exp {
		return true
	}
	if len(a.used) >= a.maxUsed {
		return false
	}
	a.used[sum] = exp
	heap.Push(&a.expiry, usedEntry{sum: sum, expiry: exp})
	return true
}

// Used reports whether the ticket was consumed (and has not expired since,
// after which it no longer matters).
func (a *Authority) Used(ticket []byte) bool {
	sum := sha256.Sum256(ticket)
	now := a.now().Unix()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dropExpiredLocked(now)
	_, used := a.used[sum]
	return used
}

// usedLen is the number of cache entries (tests).
func (a *Authority) usedLen() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.used)
}

// dropExpiredLocked forgets tickets that have expired: Open refuses them
// on their expiry alone.
func (a *Authority) dropExpiredLocked(now int64) {
	for a.expiry.Len() > 0 && a.expiry[0].expiry <= now {
		e := heap.Pop(&a.expiry).(usedEntry)
		delete(a.used, e.sum)
	}
}

// usedEntry is one consumed ticket in the expiry heap.
type usedEntry struct {
	sum    [sha256.Size]byte
	expiry int64
}

// usedHeap is a min-heap on expiry (container/heap).
type usedHeap []usedEntry

func (h usedHeap) Len() int           { return len(h) }
func (h usedHeap) Less(i, j int) bool { return h[i].expiry < h[j].expiry }
func (h usedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *usedHeap) Push(x any)        { *h = append(*h, x.(usedEntry)) }
func (h *usedHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
