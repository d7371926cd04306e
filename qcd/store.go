package qcd

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync"
)

// Store bounds.
const (
	// MaxSAs is how many IKE SAs a Store holds tokens for; adding one more
	// evicts the SA that was least recently given a token. A client has
	// a handful of SAs, so this only guards against runaway growth.
	MaxSAs = 64
	// MaxHistory is how many tokens are kept per SA: the current one and
	// up to 3 earlier ones (RFC 6290 §5 lets takers keep earlier tokens).
	MaxHistory = 4
	// MaxChildren is how many child SPI to IKE SA mappings are kept.
	MaxChildren = 1024
)

// SAKey names an IKE SA by its SPIs, to which its tokens are bound (RFC
// 6290 §5.3).
type SAKey struct{ SPIi, SPIr uint64 }

// Store keeps the tokens gateways gave us in protected messages, per IKE
// SA: the current token and up to 3 earlier ones (a replacement token,
// RFC 6290 §4.4, becomes the new current one). It also maps Child SA SPIs
// to their IKE SA so that an N(INVALID_SPI) can be resolved (§8.2); the
// SPI a gateway names there is the SPI of the packets we send it, i.e.
// our outbound SPI (the gateway's inbound SPI).
//
// Make a Store with NewStore. It is bounded (MaxSAs, MaxChildren) and
// safe for concurrent use.
// It lives in memory; persist it with Tokens if wanted, but keep such a
// copy as secret as the tokens themselves (§9.1).
type Store struct {
	log *slog.Logger

	mu       sync.RWMutex
	sas      map[SAKey]*entry
	children map[uint32]SAKey
	seq      uint64 // for eviction order
}

type entry struct {
	toks [MaxHistory][]byte // current first; each a private copy
	n    int
	seq  uint64
}

// NewStore returns an empty Store that logs to log (nil: no logging).
func NewStore(log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{
		log:      log,
		sas:      make(map[SAKey]*entry),
		children: make(map[uint32]SAKey),
	}
}

// Add records a token received in a protected message for sa as its
// current token. Tokens outside 16..128 octets are ignored with a log
// line and Add returns false. Re-adding a token sa already has makes it
// current again instead of storing it twice.
func (s *Store) Add(sa SAKey, token []byte) bool {
	if len(token) < MinTokenLen || len(token) > MaxTokenLen {
		// Never log the token: it is a secret. Its length is not.
		s.log.Warn("qcd: ignoring QCD token of invalid length",
			slog.Int("len", len(token)), spiAttr("spi_i", sa.SPIi), spiAttr("spi_r", sa.SPIr))
		return false
	}
	tok := bytes.Clone(token)

	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.sas[sa]
	if e == nil {
		if len(s.sas) >= MaxSAs {
			s.evictOldestLocked()
		}
		e = &entry{}
		s.sas[sa] = e
	}
	for i := 0; i < e.n; i++ {
		if bytes.Equal(e.toks[i], tok) {
			// Drop the old copy; it is re-inserted at the front below.
			copy(e.toks[i:], e.toks[i+1:e.n])
			e.n--
			e.toks[e.n] = nil
			break
		}
	}
	copy(e.toks[1:], e.toks[:MaxHistory-1])
	e.toks[0] = tok
	e.n = min(e.n+1, MaxHistory)
	for i := e.n; i < MaxHistory; i++ {
		e.toks[i] = nil
	}
	s.seq++
	e.seq = s.seq
	s.log.Debug("qcd: token stored", slog.Int("len", len(tok)), slog.Int("held", e.n),
		spiAttr("spi_i", sa.SPIi), spiAttr("spi_r", sa.SPIr))
	return true
}

// evictOldestLocked drops the SA least recently given a token. A linear
// scan is fine for MaxSAs entries.
func (s *Store) evictOldestLocked() {
	var (
		oldest SAKey
		seq    uint64
		found  bool
	)
	for k, e := range s.sas {
		if !found || e.seq < seq {
			oldest, seq, found = k, e.seq, true
		}
	}
	if found {
		s.deleteLocked(oldest)
		s.log.Info("qcd: token store full, evicted oldest SA",
			spiAttr("spi_i", oldest.SPIi), spiAttr("spi_r", oldest.SPIr))
	}
}

// Rekeyed records that IKE SA old was rekeyed into new. Tokens are bound
// to the SPIs (a RFC 6290 §5.1 maker hashes them), so old's tokens can
// never verify for new: they are dropped, and new gets its own token from
// the CREATE_CHILD_SA response or a following INFORMATIONAL (§4.3), which
// the caller Adds. Child SPI mappings of old move to new, as the Child
// SAs now belong to it.
func (s *Store) Rekeyed(old, new SAKey) {
	if old == new {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sas, old)
	for spi, sa := range s.children {
		if sa == old {
			s.children[spi] = new
		}
	}
}

// Delete forgets sa's tokens and child SPI mappings (the SA was deleted
// or expired, §5.3, or a token for it verified).
func (s *Store) Delete(sa SAKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteLocked(sa)
}

func (s *Store) deleteLocked(sa SAKey) {
	delete(s.sas, sa)
	for spi, k := range s.children {
		if k == sa {
			delete(s.children, spi)
		}
	}
}

// AddChild maps the Child SA SPI spi (our outbound SPI, the one the
// gateway would name in N(INVALID_SPI)) to its IKE SA, replacing any
// earlier mapping of spi. When MaxChildren mappings are held, mappings to
// SAs without tokens are dropped first; if that frees nothing the new
// mapping is not recorded (logged).
func (s *Store) AddChild(spi uint32, sa SAKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.children[spi]; !ok && len(s.children) >= MaxChildren {
		for c, k := range s.children {
			if _, held := s.sas[k]; !held {
				delete(s.children, c)
			}
		}
		if len(s.children) >= MaxChildren {
			s.log.Warn("qcd: child SPI map full, not mapping child SA",
				childAttr("child_spi", spi), spiAttr("spi_i", sa.SPIi), spiAttr("spi_r", sa.SPIr))
			return
		}
	}
	s.children[spi] = sa
}

// RemoveChild forgets the mapping of Child SA SPI spi.
func (s *Store) RemoveChild(spi uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.children, spi)
}

// Tokens returns copies of sa's tokens, current first, or nil when sa has
// none.
func (s *Store) Tokens(sa SAKey) [][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.sas[sa]
	if e == nil {
		return nil
	}
	out := make([][]byte, e.n)
	for i := range e.n {
		out[i] = bytes.Clone(e.toks[i])
	}
	return out
}

// Has reports whether the Store holds tokens for sa.
func (s *Store) Has(sa SAKey) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sas[sa] != nil
}

// resolveLocked finds the SA an unprotected message names (see
// Verifier.Check). The caller holds s.mu for reading.
func (s *Store) resolveLocked(m *Message) (SAKey, *entry) {
	hdr := SAKey{m.SPIi, m.SPIr}
	switch m.Kind {
	case KindInvalidIKESPI:
		return hdr, s.sas[hdr]
	case KindInvalidSPI:
		if e := s.sas[hdr]; e != nil {
			return hdr, e
		}
		if m.HasChildSPI {
			if sa, ok := s.children[m.ChildSPI]; ok {
				if e := s.sas[sa]; e != nil {
					return sa, e
				}
			}
		}
	}
	return hdr, nil
}

// spiAttr logs an IKE SPI in the usual fixed-width hex.
func spiAttr(key string, spi uint64) slog.Attr {
	return slog.String(key, fmt.Sprintf("%016x", spi))
}

// childAttr logs a Child SA SPI in the usual fixed-width hex.
func childAttr(key string, spi uint32) slog.Attr {
	return slog.String(key, fmt.Sprintf("%08x", spi))
}
