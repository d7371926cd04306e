package ike

import (
	"errors"
	"sync/atomic"
)

// Drops counts the inbound IKE messages a session discarded without any
// change of state (RFC 7296 §2.21: a message that fails its checks is
// dropped, never answered). They tell an operator, and the adversarial
// tests, that attacks were seen and turned away.
type Drops struct {
	// Malformed: shorter than a header, or the header does not parse.
	Malformed uint64
	// UnknownSA: the SPIs name neither the current nor the rekeyed IKE SA.
	UnknownSA uint64
	// Forged: the SK or SKF payload failed integrity (forged, tampered,
	// or keyed for another SA), or its contents did not parse.
	Forged uint64
	// Oversized: IKE fragments beyond the reassembler's limits (RFC 7383
	// §5: more fragments or bytes than any message of ours needs).
	Oversized uint64
	// Unprotected: carries no SK payload where one is required (e.g. a
	// forged INFORMATIONAL with INVALID_SPI or REDIRECT) and the
	// Unprotected hook, if any, did not end the SA.
	Unprotected uint64
	// Replayed: a request with an old message ID (other than the last,
	// which is a retransmission and gets the cached response again).
	Replayed uint64
	// Unexpected: a response to no request outstanding.
	Unexpected uint64
}

// dropCounters are the live counters behind Drops.
type dropCounters struct {
	malformed, unknownSA, forged, oversized, unprotected, replayed, unexpected atomic.Uint64
}

// Drops returns the session's counts of discarded inbound messages.
func (s *Session) Drops() Drops {
	d := &s.drops
	return Drops{
		Malformed:   d.malformed.Load(),
		UnknownSA:   d.unknownSA.Load(),
		Forged:      d.forged.Load(),
		Oversized:   d.oversized.Load(),
		Unprotected: d.unprotected.Load(),
		Replayed:    d.replayed.Load(),
		Unexpected:  d.unexpected.Load(),
	}
}

// count files a failure to open a protected message or fragment.
func (d *dropCounters) count(err error) {
	switch {
	case errors.Is(err, errFragmentLimit):
		d.oversized.Add(1)
	case errors.Is(err, errRetransmittedFragment):
		d.replayed.Add(1)
	default:
		d.forged.Add(1)
	}
}

// QueueFull counts the IKE datagrams for a known SA that the transport
// dropped because the SA's goroutine had not taken the earlier ones yet (a
// flood; RFC 7296 §2.21 lets them go).
func (t *Transport) QueueFull() uint64 { return t.queueFull.Load() }
