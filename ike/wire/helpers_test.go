package wire

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

// unhex decodes hex with spaces, newlines and "#" comments to end of line.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	var sb strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatalf("bad hex in test vector: %v", err)
	}
	return b
}

// raw is one hand-built payload for negative tests: the generic header is
// generated with the correct length unless length is set.
type raw struct {
	t        PayloadType
	body     []byte
	critical bool
	length   int         // override of the Payload Length field when non-zero
	next     PayloadType // override of the Next Payload field when nextSet
	nextSet  bool
}

// chain encodes payloads with linked next-payload fields.
func chain(ps ...raw) []byte {
	var b []byte
	for i, p := range ps {
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].t
		}
		if p.nextSet {
			next = p.next
		}
		flags := byte(0)
		if p.critical {
			flags = 0x80
		}
		n := 4 + len(p.body)
		if p.length != 0 {
			n = p.length
		}
		b = append(b, byte(next), flags)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = append(b, p.body...)
	}
	return b
}

// datagram wraps a payload chain in an IKE_SA_INIT request header with a
// correct Length field.
func datagram(first PayloadType, payloads []byte) []byte {
	h := Header{SPIi: 0x1122334455667788, NextPayload: first, Version: Version2,
		Exchange: ExchangeIKESAInit, Flags: FlagInitiator, Length: uint32(HeaderLen + len(payloads))}
	return append(h.Append(nil), payloads...)
}

// msgOf builds a datagram from raw payloads, first type taken from ps[0].
func msgOf(ps ...raw) []byte {
	first := PayloadNone
	if len(ps) > 0 {
		first = ps[0].t
	}
	return datagram(first, chain(ps...))
}

// rep returns n copies of byte v.
func rep(v byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = v
	}
	return b
}

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// u16 encodes v big-endian.
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
