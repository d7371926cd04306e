package wire

import "encoding/binary"

// HeaderLen is the size of the fixed IKE header.
const HeaderLen = 28

// Header flags (RFC 7296 §3.1).
const (
	FlagInitiator uint8 = 0x08 // sent by the original initiator of the IKE SA
	FlagVersion   uint8 = 0x10 // sender can speak a higher major version
	FlagResponse  uint8 = 0x20 // message is a response
)

// Version2 is the version octet this package sends: major 2, minor 0.
const Version2 uint8 = 0x20

// Header is the fixed IKE header.
type Header struct {
	SPIi, SPIr  uint64
	NextPayload PayloadType
	Version     uint8 // major version in the high nibble: 0x20
	Exchange    ExchangeType
	Flags       uint8
	MessageID   uint32
	Length      uint32 // whole message, header included
}

// ParseHeader decodes the IKE header of the datagram b. It checks that b
// holds a full header, that the major version is 2 (else a *VersionError,
// with the rest of the Header filled in so a responder can answer
// INVALID_MAJOR_VERSION) and that the Length field equals len(b). Reserved
// flag bits and the minor version are kept as received.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, malformed("IKE header", "%d bytes, want at least %d", len(b), HeaderLen)
	}
	h := Header{
		SPIi:        binary.BigEndian.Uint64(b[0:8]),
		SPIr:        binary.BigEndian.Uint64(b[8:16]),
		NextPayload: PayloadType(b[16]),
		Version:     b[17],
		Exchange:    ExchangeType(b[18]),
		Flags:       b[19],
		MessageID:   binary.BigEndian.Uint32(b[20:24]),
		Length:      binary.BigEndian.Uint32(b[24:28]),
	}
	if h.Version>>4 != 2 {
		return h, &VersionError{Version: h.Version}
	}
	if uint64(h.Length) != uint64(len(b)) {
		return h, malformed("IKE header", "Length field %d does not match datagram size %d", h.Length, len(b))
	}
	return h, nil
}

// IsResponse reports whether the Response flag is set.
func (h Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// IsInitiator reports whether the Initiator flag is set (the sender is the
// original initiator of the IKE SA).
func (h Header) IsInitiator() bool { return h.Flags&FlagInitiator != 0 }

// Append appends the 28-byte header, every field as is, to b.
func (h Header) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, h.SPIi)
	b = binary.BigEndian.AppendUint64(b, h.SPIr)
	b = append(b, byte(h.NextPayload), h.Version, byte(h.Exchange), h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}
