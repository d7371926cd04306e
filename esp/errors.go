package esp

import "errors"

// Errors returned by Seal and Open. Callers drop the packet on any of them;
// ErrLifetime and ErrSeqOverflow mean the SA needs rekeying.
var (
	// ErrReplay: the sequence number was already seen, is left of the
	// anti-replay window, or is 0 (never valid).
	ErrReplay = errors.New("esp: replayed or too old sequence number")
	// ErrAuth: the ICV / AEAD tag did not verify, or the SPI is not this SA's.
	ErrAuth = errors.New("esp: authentication failed")
	// ErrMalformed: the packet is too short, misaligned, or its padding or
	// pad length is invalid.
	ErrMalformed = errors.New("esp: malformed packet")
	// ErrSeqOverflow: the outbound sequence number space is exhausted
	// (2^32-1 without ESN); the counter never wraps (RFC 4303 §3.3.3).
	ErrSeqOverflow = errors.New("esp: sequence number exhausted, SA must be rekeyed")
	// ErrLifetime: a byte, packet or time limit of the SA was reached.
	ErrLifetime = errors.New("esp: SA lifetime exceeded")
	// ErrDummy: the packet authenticated but is a dummy packet (next header
	// 59, RFC 4303 §2.6); drop it silently.
	ErrDummy = errors.New("esp: dummy packet")
	// ErrBuffer: Seal was given a buffer without the required headroom or
	// tailroom, or an offset/length outside it.
	ErrBuffer = errors.New("esp: buffer lacks headroom or tailroom")
)
