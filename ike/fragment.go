package ike

// IKE fragmentation (RFC 7383): splitting a protected message into
// separately encrypted SKF fragments, and reassembling received ones.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// Fragmentation thresholds: the IP datagram sizes RFC 7383 §2.5.1
// recommends when nothing better is known about the path MTU.
const (
	fragmentThresholdIPv6 = 1280 // IPv6 minimum link MTU (RFC 8200 §5)
	fragmentThresholdIPv4 = 576  // safe IPv4 datagram size, as DNS and syslog use
)

// Header sizes subtracted from the threshold (RFC 7383 Appendix B); IP
// options and IPv6 extension headers are not expected on IKE traffic.
const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
)

// Reassembly limits (RFC 7383 §5). 64 KiB is the RFC's suggested ceiling
// for a reassembled message; 64 fragments leave room for a 30 KB message
// even when the peer fragments at the 576-byte IPv4 threshold.
const (
	defaultMaxFragments       = 64
	defaultMaxReassemblyBytes = 64 << 10
)

// skfOverhead is what an SKF message adds besides the encrypted body: the
// IKE header, the generic payload header and Fragment Number/Total Fragments.
const skfOverhead = wire.HeaderLen + 4 + 4

// skOverhead is the same for an unfragmented SK message.
const skOverhead = wire.HeaderLen + 4

// maxDatagramFor is the largest IKE message (IKE header included, non-ESP
// marker excluded) that fits the RFC 7383 §2.5.1 threshold for the address
// family: 1280 bytes for IPv6, 576 for IPv4, minus the IP and UDP headers
// and, when encap (NAT-T port 4500), the 4-byte non-ESP marker.
func maxDatagramFor(ipv6, encap bool) int {
	n := fragmentThresholdIPv4 - ipv4HeaderLen - udpHeaderLen
	if ipv6 {
		n = fragmentThresholdIPv6 - ipv6HeaderLen - udpHeaderLen
	}
	if encap {
		n -= len(nonESPMarker)
	}
	return n
}

// maxFragmentContent is the most plaintext one SKF fragment can carry so
// that the whole fragment message is at most maxDatagram bytes, or -1 if
// not even an empty fragment fits.
func maxFragmentContent(c *ikecrypto.SKCipher, maxDatagram int) int {
	budget := maxDatagram - skfOverhead
	if budget < 0 {
		return -1
	}
	// BodyLen grows with its argument and always exceeds it, so this finds
	// the first length that no longer fits.
	return sort.Search(budget+1, func(n int) bool { return c.BodyLen(n) > budget }) - 1
}

// sealFragmented is like seal, but when the SK message would exceed
// maxDatagram bytes it splits the inner payloads into SKF fragments
// (RFC 7383 §2.5) of at most maxDatagram bytes each (IKE header included,
// non-ESP marker not counted). It returns the single SK message when that
// fits, else fragments 1..Total in order. Every fragment is encrypted on its
// own with a fresh IV and its own ICV, whose associated data is its IKE
// header (Length of that fragment, Next Payload SKF) and the SKF header up to
// Total Fragments; only fragment 1 carries the type of the first inner
// payload. The content is split evenly, so fragments differ by at most one
// byte of plaintext.
func (k *saKeys) sealFragmented(h wire.Header, inner []wire.Payload, maxDatagram int, rand io.Reader) ([][]byte, error) {
	first, pt, err := wire.AppendPayloads(nil, inner)
	if err != nil {
		return nil, err
	}
	if skOverhead+k.out.BodyLen(len(pt)) <= maxDatagram {
		raw, err := k.seal(h, inner, rand)
		if err != nil {
			return nil, err
		}
		return [][]byte{raw}, nil
	}
	chunk := maxFragmentContent(k.out, maxDatagram)
	if chunk < 1 {
		return nil, fmt.Errorf("ike: fragment size %d bytes leaves no room for SKF content", maxDatagram)
	}
	total := (len(pt) + chunk - 1) / chunk
	if total > 0xffff {
		return nil, fmt.Errorf("ike: message of %d bytes needs %d fragments of %d bytes, more than 65535", len(pt), total, chunk)
	}
	frags := make([][]byte, 0, total)
	base, extra := len(pt)/total, len(pt)%total
	lo := 0
	for i := range total {
		hi := lo + base
		if i < extra {
			hi++
		}
		f := &wire.EncryptedFragment{
			Number: uint16(i + 1),
			Total:  uint16(total),
			Body:   make([]byte, k.out.BodyLen(hi-lo)),
		}
		if i == 0 {
			f.InnerNext = first
		}
		m := wire.Message{Header: h, Payloads: []wire.Payload{f}}
		raw, err := m.Encode()
		if err != nil {
			return nil, err
		}
		split := len(raw) - len(f.Body)
		if err := k.out.Seal(raw[:split], raw[split:], pt[lo:hi], rand); err != nil {
			return nil, err
		}
		frags = append(frags, raw)
		lo = hi
	}
	return frags, nil
}

// Errors of reassembler.add.
var (
	// errNotFragment: the datagram is no SKF message; open it with saKeys.open.
	errNotFragment = errors.New("ike: message carries no SKF payload")
	// errFragmentLimit: the peer sent more fragments or bytes than the
	// reassembler accepts; RFC 7383 §5 suggests dropping the IKE SA.
	errFragmentLimit = errors.New("ike: IKE fragment limit exceeded")
	// errRetransmittedFragment: an authentic fragment 1 of a message other
	// than the expected one, typically a retransmitted request that was
	// already answered; RFC 7383 §2.6.1 lets only fragment 1 trigger a
	// retransmission of the response. The returned header is valid.
	errRetransmittedFragment = errors.New("ike: fragment 1 of a message other than the expected one")
)

// reassembler collects the SKF fragments of received messages (RFC 7383
// §2.6): at most one message per direction (requests, responses) at a
// time, limited to maxFragments fragments per message and maxBytes of
// decrypted content across both directions. Only authenticated fragments
// are stored. It is safe for concurrent use.
type reassembler struct {
	maxFragments, maxBytes int

	mu       sync.Mutex
	buffered int                // decrypted bytes held, both directions
	dirs     [2]reassemblyState // [0] requests, [1] responses
}

// reassemblyState is the reassembly of one direction.
type reassemblyState struct {
	p           *partial // message being reassembled, or nil
	expected    uint32
	hasExpected bool
}

// partial is one message being reassembled.
type partial struct {
	header    wire.Header // of the first fragment stored
	total     uint16
	innerNext wire.PayloadType // from fragment 1
	chunks    [][]byte         // decrypted content by Fragment Number - 1
	got       []bool
	have      int
	bytes     int
}

// newReassembler returns a reassembler with the given limits; values below
// 1 select defaultMaxFragments and defaultMaxReassemblyBytes, and
// maxFragments is capped at 65535, the largest Total Fragments.
func newReassembler(maxFragments, maxBytes int) *reassembler {
	if maxFragments < 1 {
		maxFragments = defaultMaxFragments
	}
	maxFragments = min(maxFragments, 0xffff)
	if maxBytes < 1 {
		maxBytes = defaultMaxReassemblyBytes
	}
	return &reassembler{maxFragments: maxFragments, maxBytes: maxBytes}
}

// direction indexes dirs by the Response flag.
func direction(h wire.Header) int {
	if h.IsResponse() {
		return 1
	}
	return 0
}

// expect sets the message ID the next message in one direction must carry:
// for responses the ID of our outstanding request, for requests the next ID
// the peer may use. Fragments of other IDs are then not reassembled, and a
// partial message with another ID is discarded now. Until expect is called
// for a direction, the first message whose fragment arrives is reassembled
// and fragments of other IDs are ignored until it completes.
func (r *reassembler) expect(response bool, msgID uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	if response {
		i = 1
	}
	d := &r.dirs[i]
	d.expected, d.hasExpected = msgID, true
	if d.p != nil && d.p.header.MessageID != msgID {
		r.drop(d)
	}
}

// reset discards every partial message, as when a reassembly times out
// (RFC 7383 §2.6). Expected message IDs are kept.
func (r *reassembler) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.dirs {
		r.drop(&r.dirs[i])
	}
}

// drop discards the partial message of d.
func (r *reassembler) drop(d *reassemblyState) {
	if d.p != nil {
		r.buffered -= d.p.bytes
		d.p = nil
	}
}

// add takes one received datagram (without non-ESP marker). If it is no
// SKF message (or does not parse as one) it returns errNotFragment and the
// caller falls back to k.open. Otherwise it applies RFC 7383 §2.6:
//
//   - fragments of a message ID other than the one being reassembled or
//     expected are ignored (nil error, complete false), except that an
//     authentic fragment 1 yields errRetransmittedFragment when an ID is
//     expected;
//   - a fragment with a lower Total Fragments than those stored, or one
//     already stored, is ignored without being decrypted;
//   - every other fragment is authenticated and decrypted with k.in before
//     anything is stored; failures are returned and leave the state as it
//     was;
//   - an authentic fragment with a higher Total Fragments starts the
//     reassembly over with just that fragment (the sender refragmented it
//     with a smaller threshold, §2.5.2);
//   - an authentic fragment announcing more than maxFragments fragments, or
//     one that would take the content held past maxBytes, gives
//     errFragmentLimit (the latter also discards the partial message), so
//     the caller may drop the IKE SA as RFC 7383 §5 suggests.
//
// Once fragments 1..Total are all present, the content is joined, parsed as
// the inner payload chain and returned with complete true. The header is
// then that of the stored fragments with Next Payload SK and the Length an
// unfragmented message with minimal padding would have. Otherwise h is the
// header of this datagram. Unprotected payloads before the SKF payload in
// fragment 1 (§2.5.3) are ignored, as saKeys.open ignores them.
func (r *reassembler) add(raw []byte, k *saKeys) (h wire.Header, inner []wire.Payload, complete bool, err error) {
	m, perr := wire.Parse(raw)
	if perr != nil {
		if m != nil && m.Header.NextPayload == wire.PayloadSKF {
			return m.Header, nil, false, fmt.Errorf("ike: malformed IKE fragment: %w", perr)
		}
		return wire.Header{}, nil, false, errNotFragment
	}
	if len(m.Payloads) == 0 {
		return wire.Header{}, nil, false, errNotFragment
	}
	f, ok := m.Payloads[len(m.Payloads)-1].(*wire.EncryptedFragment)
	if !ok {
		return wire.Header{}, nil, false, errNotFragment
	}
	h = m.Header
	if f.Number != 1 && len(m.Payloads) > 1 {
		return h, nil, false, fmt.Errorf("ike: fragment %d of message %d carries unprotected payloads, allowed only in fragment 1", f.Number, h.MessageID)
	}
	if k == nil || k.in == nil {
		return h, nil, false, fmt.Errorf("ike: fragment of message %d arrived before the IKE SA has keys", h.MessageID)
	}
	if int(f.Total) > r.maxFragments {
		// Authenticate first: a forged fragment must not make the caller
		// drop the IKE SA over errFragmentLimit.
		if _, err := openFragment(raw, f, k); err != nil {
			return h, nil, false, err
		}
		return h, nil, false, fmt.Errorf("%w: message %d has %d fragments, at most %d accepted", errFragmentLimit, h.MessageID, f.Total, r.maxFragments)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	d := &r.dirs[direction(h)]
	p := d.p
	switch {
	case p != nil && p.header.MessageID == h.MessageID:
		if f.Total < p.total || (f.Total == p.total && p.got[f.Number-1]) {
			return h, nil, false, nil // older set, or a replay (§2.6)
		}
	case d.hasExpected && h.MessageID == d.expected, !d.hasExpected && p == nil:
		// A new message; it replaces p once the fragment is authentic.
	default:
		if f.Number == 1 && d.hasExpected {
			if _, err := openFragment(raw, f, k); err != nil {
				return h, nil, false, err
			}
			return h, nil, false, errRetransmittedFragment
		}
		return h, nil, false, nil
	}

	pt, err := openFragment(raw, f, k)
	if err != nil {
		return h, nil, false, err
	}
	// Authentic from here on.
	if p == nil || p.header.MessageID != h.MessageID || f.Total > p.total {
		r.drop(d)
		p = &partial{header: h, total: f.Total, chunks: make([][]byte, f.Total), got: make([]bool, f.Total)}
		d.p = p
	} else if reason := headerMismatch(p.header, h); reason != "" {
		return h, nil, false, fmt.Errorf("ike: fragment %d/%d of message %d: %s", f.Number, f.Total, h.MessageID, reason)
	}
	if r.buffered+len(pt) > r.maxBytes {
		r.drop(d)
		return h, nil, false, fmt.Errorf("%w: more than %d bytes of fragment content", errFragmentLimit, r.maxBytes)
	}
	i := int(f.Number) - 1
	p.chunks[i], p.got[i] = pt, true
	p.have++
	p.bytes += len(pt)
	r.buffered += len(pt)
	if f.Number == 1 {
		p.innerNext = f.InnerNext
	}
	if p.have < int(p.total) {
		return h, nil, false, nil
	}

	r.drop(d)
	body := bytes.Join(p.chunks, nil)
	ps, err := wire.ParsePayloads(p.innerNext, body)
	if err != nil {
		return h, nil, false, fmt.Errorf("ike: inside reassembled SKF payloads of message %d: %w", h.MessageID, err)
	}
	out := p.header
	out.NextPayload = wire.PayloadSK
	out.Length = uint32(skOverhead + k.in.BodyLen(len(body)))
	return out, ps, true, nil
}

// openFragment authenticates and decrypts one SKF fragment of raw,
// returning a copy of its content.
func openFragment(raw []byte, f *wire.EncryptedFragment, k *saKeys) ([]byte, error) {
	split := len(raw) - len(f.Body)
	// f.Body belongs to wire.Parse's private copy, so it may be decrypted
	// in place.
	pt, err := k.in.Open(raw[:split], f.Body)
	if err != nil {
		return nil, fmt.Errorf("ike: fragment %d/%d: %w", f.Number, f.Total, err)
	}
	// Copy, so the stored chunk does not pin the whole datagram.
	return bytes.Clone(pt), nil
}

// headerMismatch reports how h differs from the header of the fragments
// already stored, ignoring Next Payload and Length (RFC 7383 §2.5), or "".
func headerMismatch(want, h wire.Header) string {
	switch {
	case h.SPIi != want.SPIi || h.SPIr != want.SPIr:
		return "IKE SPIs differ from the other fragments"
	case h.Exchange != want.Exchange:
		return fmt.Sprintf("exchange %s differs from %s of the other fragments", h.Exchange, want.Exchange)
	case h.Flags != want.Flags || h.Version != want.Version:
		return "header flags or version differ from the other fragments"
	}
	return ""
}

// sealFor protects a message of an established session: in IKE fragments
// when the peer supports them and it would exceed the RFC 7383 threshold
// (an ML-KEM key in CREATE_CHILD_SA or IKE_FOLLOWUP_KE), else whole.
func (s *Session) sealFor(st *ikeState, h wire.Header, ps []wire.Payload) ([][]byte, error) {
	if s.fragment {
		return st.keys.sealFragmented(h, ps, maxDatagramFor(s.remote.Addr().Is6(), s.encap), s.rand)
	}
	raw, err := st.keys.seal(h, ps, s.rand)
	return [][]byte{raw}, err
}
