package qcd

import (
	"bytes"
	"encoding/binary"
)

// payload is one generic payload for buildMsg.
type payload struct {
	typ      byte
	critical bool
	body     []byte // after the 4-octet generic header
}

// buildMsg assembles an IKEv2 message by hand, independently of Parse.
func buildMsg(spii, spir uint64, exch, flags byte, mid uint32, pls ...payload) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint64(b[0:], spii)
	binary.BigEndian.PutUint64(b[8:], spir)
	if len(pls) > 0 {
		b[16] = pls[0].typ
	}
	b[17] = 0x20
	b[18] = exch
	b[19] = flags
	binary.BigEndian.PutUint32(b[20:], mid)
	for i, p := range pls {
		var next byte
		if i+1 < len(pls) {
			next = pls[i+1].typ
		}
		var c byte
		if p.critical {
			c = 0x80
		}
		b = append(b, next, c, 0, 0)
		binary.BigEndian.PutUint16(b[len(b)-2:], uint16(4+len(p.body)))
		b = append(b, p.body...)
	}
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	return b
}

// notify builds a Notify payload (RFC 7296 §3.10).
func notify(proto byte, typ uint16, spi, data []byte) payload {
	body := []byte{proto, byte(len(spi)), byte(typ >> 8), byte(typ)}
	body = append(body, spi...)
	body = append(body, data...)
	return payload{typ: 41, body: body}
}

func nInvalidIKESPI() payload { return notify(1, 4, nil, nil) }
func nQCD(tok []byte) payload { return notify(1, 16419, nil, tok) }

// tok returns a test token of length n filled with v.
func tok(n int, v byte) []byte { return bytes.Repeat([]byte{v}, n) }

// unprotected builds the RFC 6290 §4.5 reply N(INVALID_IKE_SPI), N(QCD_TOKEN)+.
func unprotected(spii, spir uint64, toks ...[]byte) []byte {
	pls := []payload{nInvalidIKESPI()}
	for _, t := range toks {
		pls = append(pls, nQCD(t))
	}
	return buildMsg(spii, spir, 37, 0x20, 7, pls...)
}
