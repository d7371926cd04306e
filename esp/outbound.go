package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Outbound is the sending half of a Child SA. Seal is safe for concurrent
// use by many goroutines: sequence numbers come from one atomic counter.
type Outbound struct {
	spi  uint32
	x    *xform
	seq  atomic.Uint64 // last sequence number handed out
	max  uint64        // highest sequence number allowed
	life life
	ctrs counters

	// CBC IV generator: IV = AES-ECB(ivKey, ivPrefix|seq). The counter is
	// unique per SA, so the IVs are unique, and they are unpredictable to
	// anyone without the random per-SA ivKey, as CBC requires
	// (NIST SP 800-38A, Appendix C). No randomness on the hot path.
	ivBlock  cipher.Block
	ivPrefix [8]byte

	ivHook func(seq uint64, iv []byte) // tests only: overwrite the IV
}

// NewOutbound returns the outbound SA with the given SPI (the peer's
// inbound SPI). encKey is the encryption key (with the 4-byte salt appended
// for AEAD suites); integKey is empty for AEAD suites. now starts the
// Lifetime limit. The keys are copied.
func NewOutbound(spi uint32, s Suite, encKey, integKey []byte, lim Limits, now time.Time) (*Outbound, error) {
	x, err := newXform(s, encKey, integKey)
	if err != nil {
		return nil, err
	}
	o := &Outbound{spi: spi, x: x, max: math.MaxUint32}
	o.life.init(lim, now)
	if s.ESN {
		// Unreachable by traffic; it keeps the atomic counter, which failing
		// Seals and SetSeq also advance, far from wrapping to reused values.
		o.max = math.MaxInt64
	}
	if !x.isAEAD {
		var k [16]byte
		if _, err := rand.Read(k[:]); err != nil {
			return nil, fmt.Errorf("esp: IV key: %w", err)
		}
		if _, err := rand.Read(o.ivPrefix[:]); err != nil {
			return nil, fmt.Errorf("esp: IV prefix: %w", err)
		}
		b, err := aes.NewCipher(k[:])
		if err != nil {
			return nil, fmt.Errorf("esp: IV key: %w", err)
		}
		o.ivBlock = b
	}
	return o, nil
}

// SPI returns the SPI written into every packet.
func (o *Outbound) SPI() uint32 { return o.spi }

// Headroom is how many bytes Seal needs before the inner packet: the ESP
// header (8) and the IV.
func (o *Outbound) Headroom() int { return o.x.headroom() }

// Tailroom is the most bytes Seal appends after the inner packet: padding
// (up to the cipher's alignment minus 1), pad length, next header and ICV.
func (o *Outbound) Tailroom() int { return o.x.tailroom() }

// Seal encrypts the inner packet buf[off:off+n] in place and returns the ESP
// packet buf[off-Headroom() : off+n+k] with k <= Tailroom(). It requires
// off >= Headroom() and cap(buf) >= off+n+Tailroom(); bytes of buf outside
// the returned packet are not touched. nextHeader is 4 for IPv4, 41 for
// IPv6 (59 sends a dummy packet).
//
// Errors: ErrBuffer, ErrLifetime, ErrSeqOverflow. On error buf is unchanged
// and no sequence number is spent except on ErrSeqOverflow.
func (o *Outbound) Seal(buf []byte, off, n int, nextHeader byte) ([]byte, error) {
	x := o.x
	if off < x.headroom() || n < 0 || off > cap(buf) || cap(buf)-off < n || cap(buf)-off-n < x.tailroom() {
		return nil, ErrBuffer
	}
	if !o.life.alive() || !o.life.use(n) {
		return nil, ErrLifetime
	}
	seq := o.seq.Add(1)
	if seq > o.max {
		o.life.packets.Add(^uint64(0)) // refused: not counted
		o.life.bytes.Add(-uint64(n))
		return nil, ErrSeqOverflow
	}
	return o.seal(buf, off, n, nextHeader, seq), nil
}

// Reserve hands out the next sequence number for SealSeq. A data plane that
// seals a batch on several cores reserves the numbers in the order it will
// send the packets, so that the peer sees them in order (a narrow replay
// window, as strongSwan's default of 32, would drop the stragglers).
// Errors: ErrSeqOverflow (the number is spent), ErrLifetime.
func (o *Outbound) Reserve() (uint64, error) {
	if !o.life.alive() {
		return 0, ErrLifetime
	}
	seq := o.seq.Add(1)
	if seq > o.max {
		return 0, ErrSeqOverflow
	}
	return seq, nil
}

// SealSeq is Seal with a sequence number from Reserve; it is safe for
// concurrent use. Each reserved number must be sealed at most once (a
// number reserved but never sealed is only a gap the peer's window
// skips). Errors: ErrBuffer, ErrLifetime (buf unchanged, seq spent).
func (o *Outbound) SealSeq(buf []byte, off, n int, nextHeader byte, seq uint64) ([]byte, error) {
	x := o.x
	if off < x.headroom() || n < 0 || off > cap(buf) || cap(buf)-off < n || cap(buf)-off-n < x.tailroom() {
		return nil, ErrBuffer
	}
	if seq == 0 || seq > o.max {
		return nil, ErrSeqOverflow
	}
	if !o.life.use(n) {
		return nil, ErrLifetime
	}
	return o.seal(buf, off, n, nextHeader, seq), nil
}

// seal frames and encrypts with seq; the checks are done.
func (o *Outbound) seal(buf []byte, off, n int, nextHeader byte, seq uint64) []byte {
	x := o.x
	hr := x.headroom()
	pad := (x.align - (n+2)%x.align) % x.align
	ptLen := n + pad + 2
	pkt := buf[off-hr : off+ptLen+x.icvLen]
	binary.BigEndian.PutUint32(pkt[0:4], o.spi)
	binary.BigEndian.PutUint32(pkt[4:8], uint32(seq))
	iv := pkt[8:hr]
	if x.isAEAD {
		// RFC 4106 §3.1: the IV only has to be unique per key; the 64-bit
		// sequence number is, without spending randomness.
		binary.BigEndian.PutUint64(iv, seq)
	} else {
		copy(iv[:8], o.ivPrefix[:])
		binary.BigEndian.PutUint64(iv[8:], seq)
		o.ivBlock.Encrypt(iv, iv)
	}
	if o.ivHook != nil {
		o.ivHook(seq, iv)
	}
	// Self-describing padding 1, 2, 3, ... (RFC 4303 §2.4), then the trailer.
	tr := pkt[hr+n : hr+ptLen]
	for i := 0; i < pad; i++ {
		tr[i] = byte(i + 1)
	}
	tr[pad] = byte(pad)
	tr[pad+1] = nextHeader
	x.seal(pkt, ptLen, seq)
	return pkt
}

// SetSeq makes next the sequence number of the next packet, if that skips
// forward (RFC 6311 counter synchronisation); it never moves backwards.
func (o *Outbound) SetSeq(next uint64) {
	if next == 0 {
		return
	}
	last := min(next-1, o.max)
	for {
		cur := o.seq.Load()
		if last <= cur || o.seq.CompareAndSwap(cur, last) {
			return
		}
	}
}

// LastSeq returns the highest sequence number handed out so far (0 before
// the first packet). After ErrSeqOverflow it may exceed the allowed range.
func (o *Outbound) LastSeq() uint64 { return o.seq.Load() }

// Stats returns a snapshot of the counters.
func (o *Outbound) Stats() Stats { return o.life.stats(&o.ctrs) }

// UsedBytes returns the inner-packet bytes sealed so far.
func (o *Outbound) UsedBytes() uint64 { return o.life.bytes.Load() }

// UsedPackets returns the packets sealed so far.
func (o *Outbound) UsedPackets() uint64 { return o.life.packets.Load() }

// Expired reports whether a limit has been reached as of now, or the
// sequence numbers are exhausted.
func (o *Outbound) Expired(now time.Time) bool {
	return o.life.expired(now) || o.seq.Load() >= o.max
}
