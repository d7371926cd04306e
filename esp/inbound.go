package esp

import (
	"encoding/binary"
	"time"
)

// Inbound is the receiving half of a Child SA. Open is safe for concurrent
// use by many goroutines; the only lock is the anti-replay window's, taken
// briefly after a packet authenticated.
type Inbound struct {
	spi  uint32
	x    *xform
	win  window
	life life
	ctrs counters
}

// NewInbound returns the inbound SA with the given SPI (ours, chosen in the
// Child SA exchange). Keys, limits and now are as for NewOutbound.
func NewInbound(spi uint32, s Suite, encKey, integKey []byte, lim Limits, now time.Time) (*Inbound, error) {
	x, err := newXform(s, encKey, integKey)
	if err != nil {
		return nil, err
	}
	in := &Inbound{spi: spi, x: x}
	in.life.init(lim, now)
	return in, nil
}

// SPI returns the SPI this SA accepts.
func (i *Inbound) SPI() uint32 { return i.spi }

// Open authenticates and decrypts the ESP packet pkt (SPI|Seq|IV|ct|ICV, the
// UDP payload) in place and returns the inner packet, a subslice of pkt, and
// its next header. In order: length checks (ErrMalformed), SPI and lifetime
// checks (ErrAuth, ErrLifetime), a lock-free replay pre-check (ErrReplay)
// before any crypto, ICV/tag verification (ErrAuth), the window update only
// after that (RFC 4303 §3.4.3; ErrReplay if a concurrent copy won), the
// padding check (ErrMalformed), usage limits (ErrLifetime), then next header
// 59 gives ErrDummy. On any error the packet must be dropped; pkt's contents
// are then unspecified.
func (i *Inbound) Open(pkt []byte) (inner []byte, nextHeader byte, err error) {
	x := i.x
	if len(pkt) < x.minLen() || (!x.isAEAD && (len(pkt)-8-x.ivLen-x.icvLen)%x.align != 0) {
		i.ctrs.malformed.Add(1)
		return nil, 0, ErrMalformed
	}
	// Another SA's packet cannot authenticate under our keys; say so
	// without spending the crypto.
	if binary.BigEndian.Uint32(pkt[0:4]) != i.spi {
		i.ctrs.authFailed.Add(1)
		return nil, 0, ErrAuth
	}
	if !i.life.alive() {
		return nil, 0, ErrLifetime
	}
	seql := binary.BigEndian.Uint32(pkt[4:8])
	seq := uint64(seql)
	if x.esn {
		seq = inferSeq(i.win.top.Load(), seql)
	}
	if !i.win.check(seq) {
		i.ctrs.replayed.Add(1)
		return nil, 0, ErrReplay
	}
	pt, ok := x.open(pkt, seq)
	if !ok {
		i.ctrs.authFailed.Add(1)
		return nil, 0, ErrAuth
	}
	if !i.win.update(seq) {
		i.ctrs.replayed.Add(1)
		return nil, 0, ErrReplay
	}
	n, ok := checkPadding(pt)
	if !ok {
		i.ctrs.malformed.Add(1)
		return nil, 0, ErrMalformed
	}
	if !i.life.use(n) {
		return nil, 0, ErrLifetime
	}
	nh := pt[len(pt)-1]
	if nh == NextHeaderDummy {
		return nil, nh, ErrDummy
	}
	return pt[:n:n], nh, nil
}

// checkPadding validates the trailer of a decrypted payload: the pad length
// fits and the padding is 1, 2, 3, ... (RFC 4303 §2.4: the receiver should
// check the default padding). It returns the inner packet length.
func checkPadding(pt []byte) (int, bool) {
	if len(pt) < 2 {
		return 0, false
	}
	padLen := int(pt[len(pt)-2])
	n := len(pt) - 2 - padLen
	if n < 0 {
		return 0, false
	}
	for j, b := range pt[n : len(pt)-2] {
		if b != byte(j+1) {
			return 0, false
		}
	}
	return n, true
}

// PayloadOffset is where the inner packet Open returns starts within the
// ESP packet: after the ESP header and the IV.
func (i *Inbound) PayloadOffset() int { return i.x.headroom() }

// HighestSeq returns the highest authenticated sequence number (the anti-
// replay window's top, 64 bits with ESN; 0 before the first packet).
func (i *Inbound) HighestSeq() uint64 { return i.win.top.Load() }

// Stats returns a snapshot of the counters.
func (i *Inbound) Stats() Stats { return i.life.stats(&i.ctrs) }

// UsedBytes returns the inner-packet bytes opened so far.
func (i *Inbound) UsedBytes() uint64 { return i.life.bytes.Load() }

// UsedPackets returns the packets opened so far.
func (i *Inbound) UsedPackets() uint64 { return i.life.packets.Load() }

// Expired reports whether a limit has been reached as of now.
func (i *Inbound) Expired(now time.Time) bool { return i.life.expired(now) }

// SPIOf returns the SPI of a UDP-encapsulated ESP packet. ok is false for
// anything that cannot be ESP: shorter than the ESP header (e.g. the 1-byte
// NAT keepalive, RFC 3948 §2.3) or SPI 0, the non-ESP marker that prefixes
// IKE messages on port 4500 (RFC 3948 §2.2).
func SPIOf(pkt []byte) (spi uint32, ok bool) {
	if len(pkt) < 8 {
		return 0, false
	}
	spi = binary.BigEndian.Uint32(pkt)
	return spi, spi != 0
}
