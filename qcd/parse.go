package qcd

import (
	"encoding/binary"
	"errors"
)

// MaxTokens caps how many N(QCD_TOKEN)s of one message are looked at. RFC
// 6290 §4.5 asks takers to accept at least 4; we take up to 8 and count
// (but ignore) the rest, so a message cannot make us compare without bound.
const MaxTokens = 8

// Token length bounds of RFC 6290 §5.
const (
	MinTokenLen = 16
	MaxTokenLen = 128
)

// IKEv2 numbers used by Parse (RFC 7296 §3, RFC 6290 §10).
const (
	headerLen = 28

	payloadNotify = 41
	payloadSK     = 46
	payloadSKF    = 53
	// Payload types 33..54 are assigned (RFC 7296, 6467, 7383, 8019,
	// 9838); the critical bit is ignored for them.
	payloadFirstKnown = 33
	payloadLastKnown  = 54

	flagResponse = 0x20

	notifyInvalidIKESPI = 4
	notifyInvalidSPI    = 11
	notifyQCDToken      = 16419
)

// Errors returned by Parse. They are returned unwrapped, so error paths do
// not allocate either.
var (
	ErrNilMessage    = errors.New("qcd: nil Message")
	ErrShort         = errors.New("qcd: shorter than an IKE header")
	ErrVersion       = errors.New("qcd: not IKE major version 2")
	ErrLength        = errors.New("qcd: IKE header length does not match the message")
	ErrTruncated     = errors.New("qcd: payload runs past the end of the message")
	ErrPayloadLength = errors.New("qcd: payload length below its 4-octet header")
	ErrNotifyLength  = errors.New("qcd: notify payload too short for its header or SPI")
	ErrEncrypted     = errors.New("qcd: message has an encrypted (SK/SKF) payload")
	ErrCritical      = errors.New("qcd: unknown payload marked critical")
	ErrTrailing      = errors.New("qcd: octets after the last payload")
	ErrNoNotify      = errors.New("qcd: no INVALID_IKE_SPI or INVALID_SPI notify")
)

// Kind is the kind of unprotected notification a Message carries.
type Kind uint8

// Kinds of unprotected notification.
const (
	// KindNone: neither notify was found (only in a zero Message).
	KindNone Kind = iota
	// KindInvalidIKESPI: N(INVALID_IKE_SPI), naming the IKE SA by the
	// header's SPIs.
	KindInvalidIKESPI
	// KindInvalidSPI: N(INVALID_SPI), sent in answer to an ESP or AH
	// packet (RFC 6290 §8.2); it may name a Child SA SPI.
	KindInvalidSPI
)

// String returns the notify's name.
func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindInvalidIKESPI:
		return "INVALID_IKE_SPI"
	case KindInvalidSPI:
		return "INVALID_SPI"
	}
	return "Kind(?)"
}

// Message is an unprotected IKEv2 message carrying N(INVALID_IKE_SPI) or
// N(INVALID_SPI) plus N(QCD_TOKEN)+ (RFC 6290 §4.5). Tokens alias the
// buffer given to Parse; copy them before reusing it.
type Message struct {
	// SPIi and SPIr are the header's IKE SPIs, which the maker copies
	// from the protected request it is answering.
	SPIi, SPIr uint64
	// MessageID is the header's message ID.
	MessageID uint32
	// Exchange is the header's exchange type.
	Exchange uint8
	// Response is the header's Response flag.
	Response bool
	// Kind is the first INVALID_IKE_SPI or INVALID_SPI notify found;
	// later ones are ignored.
	Kind Kind
	// ChildSPI is, for KindInvalidSPI, the 4-octet (ESP or AH) SPI the
	// notify names: from its SPI field or, when that is empty and the
	// notification data is 4 octets, from the data (strongSwan puts it
	// there). It is the SPI of packets we sent, i.e. our outbound SPI.
	ChildSPI uint32
	// HasChildSPI reports whether ChildSPI was found.
	HasChildSPI bool
	// Tokens[:NTokens] are the QCD tokens of 16..128 octets, in order.
	Tokens [MaxTokens][]byte
	// NTokens is how many of Tokens are set.
	NTokens int
	// DroppedTokens counts valid-length QCD_TOKEN notifies beyond MaxTokens.
	DroppedTokens int
	// BadTokens counts QCD_TOKEN notifies outside 16..128 octets (ignored).
	BadTokens int
}

// Parse reads an IKEv2 message b, starting at the IKE header (without the
// non-ESP marker of port 4500), into m and reports its unprotected
// notifies. It walks the generic payload chain (RFC 7296 §3.2) and skips
// payloads other than Notify.
//
// It fails on anything malformed: a header length other than len(b), a
// major version other than 2 (the minor version is ignored, RFC 7296
// §3.1), a payload shorter than its header or running past the end,
// octets after the last payload, an SK or SKF payload (an encrypted
// message is not an unprotected notification), an unknown payload marked
// critical, or no INVALID_IKE_SPI / INVALID_SPI notify. On error m is
// zeroed. Parse does not allocate.
func Parse(b []byte, m *Message) error {
	if m == nil {
		return ErrNilMessage
	}
	*m = Message{}
	if err := m.parse(b); err != nil {
		*m = Message{}
		return err
	}
	return nil
}

func (m *Message) parse(b []byte) error {
	if len(b) < headerLen {
		return ErrShort
	}
	if b[17]>>4 != 2 {
		return ErrVersion
	}
	if uint64(binary.BigEndian.Uint32(b[24:28])) != uint64(len(b)) {
		return ErrLength
	}
	m.SPIi = binary.BigEndian.Uint64(b[0:8])
	m.SPIr = binary.BigEndian.Uint64(b[8:16])
	m.Exchange = b[18]
	m.Response = b[19]&flagResponse != 0
	m.MessageID = binary.BigEndian.Uint32(b[20:24])

	// Every payload advances off by at least 4, so the walk ends; a chain
	// cannot loop back.
	next, off := b[16], headerLen
	for next != 0 {
		if len(b)-off < 4 {
			return ErrTruncated
		}
		typ := next
		next = b[off]
		critical := b[off+1]&0x80 != 0
		plen := int(binary.BigEndian.Uint16(b[off+2 : off+4]))
		if plen < 4 {
			return ErrPayloadLength
		}
		if plen > len(b)-off {
			return ErrTruncated
		}
		body := b[off+4 : off+plen]
		off += plen
		switch {
		case typ == payloadSK || typ == payloadSKF:
			return ErrEncrypted
		case typ == payloadNotify:
			if err := m.notify(body); err != nil {
				return err
			}
		case typ >= payloadFirstKnown && typ <= payloadLastKnown:
			// Known payload, not ours: skip.
		case critical:
			return ErrCritical
		}
	}
	if off != len(b) {
		// Next payload 0 must be the end of the message.
		return ErrTrailing
	}
	if m.Kind == KindNone {
		return ErrNoNotify
	}
	return nil
}

// notify reads one Notify payload body (RFC 7296 §3.10).
func (m *Message) notify(p []byte) error {
	if len(p) < 4 {
		return ErrNotifyLength
	}
	spiSize := int(p[1])
	typ := binary.BigEndian.Uint16(p[2:4])
	if len(p)-4 < spiSize {
		return ErrNotifyLength
	}
	spi, data := p[4:4+spiSize], p[4+spiSize:]
	switch typ {
	case notifyInvalidIKESPI:
		if m.Kind == KindNone {
			m.Kind = KindInvalidIKESPI
		}
	case notifyInvalidSPI:
		if m.Kind != KindNone {
			break
		}
		m.Kind = KindInvalidSPI
		switch {
		case len(spi) == 4:
			m.ChildSPI, m.HasChildSPI = binary.BigEndian.Uint32(spi), true
		case len(spi) == 0 && len(data) == 4:
			m.ChildSPI, m.HasChildSPI = binary.BigEndian.Uint32(data), true
		}
	case notifyQCDToken:
		// RFC 6290 §4.1 wants protocol 1 and no SPI; we take the data
		// after whatever SPI there is rather than reject a sloppy maker.
		switch {
		case len(data) < MinTokenLen || len(data) > MaxTokenLen:
			m.BadTokens++
		case m.NTokens < MaxTokens:
			m.Tokens[m.NTokens] = data[:len(data):len(data)]
			m.NTokens++
		default:
			m.DroppedTokens++
		}
	}
	return nil
}
