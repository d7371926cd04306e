package wire

import (
	"encoding/binary"
	"fmt"
)

// SA is the Security Association payload (RFC 7296 §3.3).
type SA struct {
	Proposals []Proposal
}

// Proposal is one proposal substructure. Numbers start at 1 and each
// following proposal's number is one more than the previous one's; a
// response carries the single chosen proposal with its original number.
type Proposal struct {
	Number     uint8
	Protocol   uint8 // ProtoIKE, ProtoAH, ProtoESP
	SPI        []byte
	Transforms []Transform
}

// Transform is one transform substructure.
type Transform struct {
	Type       uint8 // TransformEncr, TransformPRF, ...
	ID         uint16
	KeyLength  uint16      // in bits; 0 = no Key Length attribute (encoded as TV attribute 14)
	Attributes []Attribute // other attributes, in received order
}

// Attribute is a transform attribute other than Key Length.
type Attribute struct {
	Type  uint16 // without the AF bit
	TV    bool   // Type/Value format (AF=1): Value is exactly 2 bytes
	Value []byte
}

// Substructure header markers (RFC 7296 §3.3.1, §3.3.2).
const (
	lastSubstruc      = 0
	moreProposals     = 2
	moreTransforms    = 3
	proposalHeaderLen = 8
	transformHdrLen   = 8
	attrFormatTV      = 0x8000
)

// Type returns PayloadSA.
func (*SA) Type() PayloadType { return PayloadSA }

func (p *SA) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("SA payload", "nil payload")
	}
	if len(p.Proposals) == 0 {
		return b, encodeErr("SA payload", "no proposals")
	}
	for i := range p.Proposals {
		pr := &p.Proposals[i]
		if pr.Number == 0 {
			return b, encodeErr("SA payload", "proposal %d: number 0", i+1)
		}
		if i > 0 && pr.Number != p.Proposals[i-1].Number+1 {
			return b, encodeErr("SA payload", "proposal number %d follows %d, want consecutive numbers", pr.Number, p.Proposals[i-1].Number)
		}
		if len(pr.SPI) > 0xff {
			return b, encodeErr("SA payload", "proposal %d: SPI of %d bytes", pr.Number, len(pr.SPI))
		}
		if len(pr.Transforms) > 0xff {
			return b, encodeErr("SA payload", "proposal %d: %d transforms, at most 255", pr.Number, len(pr.Transforms))
		}
		start := len(b)
		last := byte(moreProposals)
		if i == len(p.Proposals)-1 {
			last = lastSubstruc
		}
		b = append(b, last, 0, 0, 0, pr.Number, pr.Protocol, byte(len(pr.SPI)), byte(len(pr.Transforms)))
		b = append(b, pr.SPI...)
		for j := range pr.Transforms {
			var err error
			if b, err = appendTransform(b, &pr.Transforms[j], j == len(pr.Transforms)-1); err != nil {
				return b, encodeErr("SA payload", "proposal %d transform %d: %v", pr.Number, j+1, err)
			}
		}
		n := len(b) - start
		if n > 0xffff {
			return b, encodeErr("SA payload", "proposal %d is %d bytes, too long", pr.Number, n)
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	}
	return b, nil
}

// appendTransform appends one transform substructure.
func appendTransform(b []byte, t *Transform, last bool) ([]byte, error) {
	start := len(b)
	marker := byte(moreTransforms)
	if last {
		marker = lastSubstruc
	}
	b = append(b, marker, 0, 0, 0, t.Type, 0)
	b = binary.BigEndian.AppendUint16(b, t.ID)
	if t.KeyLength != 0 {
		b = binary.BigEndian.AppendUint16(b, attrFormatTV|AttrKeyLength)
		b = binary.BigEndian.AppendUint16(b, t.KeyLength)
	}
	for _, a := range t.Attributes {
		if a.Type >= attrFormatTV {
			return b, fmt.Errorf("attribute type %d exceeds 15 bits", a.Type)
		}
		if a.Type == AttrKeyLength {
			return b, fmt.Errorf("attribute 14 (Key Length) belongs in Transform.KeyLength")
		}
		if a.TV {
			if len(a.Value) != 2 {
				return b, fmt.Errorf("TV attribute %d has a %d-byte value, want 2", a.Type, len(a.Value))
			}
			b = binary.BigEndian.AppendUint16(b, attrFormatTV|a.Type)
			b = append(b, a.Value...)
			continue
		}
		if len(a.Value) > 0xffff {
			return b, fmt.Errorf("TLV attribute %d value of %d bytes", a.Type, len(a.Value))
		}
		b = binary.BigEndian.AppendUint16(b, a.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
		b = append(b, a.Value...)
	}
	n := len(b) - start
	if n > 0xffff {
		return b, fmt.Errorf("%d bytes, too long", n)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	return b, nil
}

func parseSA(body []byte) (*SA, error) {
	if len(body) == 0 {
		return nil, malformed("SA payload", "no proposals")
	}
	sa := &SA{}
	for len(body) > 0 {
		idx := len(sa.Proposals) + 1
		if len(body) < proposalHeaderLen {
			return nil, malformed("SA payload", "proposal %d: %d bytes left, want at least %d", idx, len(body), proposalHeaderLen)
		}
		last := body[0]
		plen := int(binary.BigEndian.Uint16(body[2:4]))
		if plen < proposalHeaderLen || plen > len(body) {
			return nil, malformed("SA payload", "proposal %d: Proposal Length %d outside %d..%d", idx, plen, proposalHeaderLen, len(body))
		}
		switch {
		case last != lastSubstruc && last != moreProposals:
			return nil, malformed("SA payload", "proposal %d: Last Substruc %d, want 0 or 2", idx, last)
		case last == lastSubstruc && plen != len(body):
			return nil, malformed("SA payload", "proposal %d: Last Substruc 0 but %d bytes follow", idx, len(body)-plen)
		case last == moreProposals && plen == len(body):
			return nil, malformed("SA payload", "proposal %d: Last Substruc 2 but no proposal follows", idx)
		}
		pr, err := parseProposal(idx, body[:plen])
		if err != nil {
			return nil, err
		}
		if pr.Number == 0 {
			return nil, malformed("SA payload", "proposal %d: Proposal Num 0", idx)
		}
		if n := len(sa.Proposals); n > 0 && pr.Number != sa.Proposals[n-1].Number+1 {
			return nil, malformed("SA payload", "Proposal Num %d follows %d, want consecutive numbers", pr.Number, sa.Proposals[n-1].Number)
		}
		sa.Proposals = append(sa.Proposals, pr)
		body = body[plen:]
	}
	return sa, nil
}

// parseProposal decodes one proposal substructure of exactly len(b) bytes.
func parseProposal(idx int, b []byte) (Proposal, error) {
	pr := Proposal{Number: b[4], Protocol: b[5]}
	spiSize, count := int(b[6]), int(b[7])
	rest := b[proposalHeaderLen:]
	if spiSize > len(rest) {
		return pr, malformed("SA payload", "proposal %d: SPI size %d exceeds proposal length", idx, spiSize)
	}
	pr.SPI = orNil(rest[:spiSize])
	rest = rest[spiSize:]
	if count > 0 {
		pr.Transforms = make([]Transform, 0, min(count, len(rest)/transformHdrLen))
	}
	for i := 1; i <= count; i++ {
		if len(rest) < transformHdrLen {
			return pr, malformed("SA payload", "proposal %d transform %d: %d bytes left, want at least %d", idx, i, len(rest), transformHdrLen)
		}
		last := rest[0]
		tlen := int(binary.BigEndian.Uint16(rest[2:4]))
		if tlen < transformHdrLen || tlen > len(rest) {
			return pr, malformed("SA payload", "proposal %d transform %d: Transform Length %d outside %d..%d", idx, i, tlen, transformHdrLen, len(rest))
		}
		want := byte(moreTransforms)
		if i == count {
			want = lastSubstruc
		}
		if last != want {
			return pr, malformed("SA payload", "proposal %d transform %d of %d: Last Substruc %d, want %d", idx, i, count, last, want)
		}
		t, err := parseTransform(rest[:tlen])
		if err != nil {
			return pr, malformed("SA payload", "proposal %d transform %d: %v", idx, i, err)
		}
		pr.Transforms = append(pr.Transforms, t)
		rest = rest[tlen:]
	}
	if len(rest) != 0 {
		return pr, malformed("SA payload", "proposal %d: %d bytes after its %d transforms", idx, len(rest), count)
	}
	return pr, nil
}

// parseTransform decodes one transform substructure of exactly len(b) bytes.
func parseTransform(b []byte) (Transform, error) {
	t := Transform{Type: b[4], ID: binary.BigEndian.Uint16(b[6:8])}
	rest := b[transformHdrLen:]
	for len(rest) > 0 {
		if len(rest) < 4 {
			return t, fmt.Errorf("attribute truncated: %d bytes left", len(rest))
		}
		raw := binary.BigEndian.Uint16(rest)
		typ := raw &^ attrFormatTV
		if raw&attrFormatTV != 0 {
			val := rest[2:4:4]
			rest = rest[4:]
			if typ == AttrKeyLength {
				if t.KeyLength != 0 {
					return t, fmt.Errorf("duplicate Key Length attribute")
				}
				if t.KeyLength = binary.BigEndian.Uint16(val); t.KeyLength == 0 {
					return t, fmt.Errorf("zero Key Length attribute")
				}
				continue
			}
			t.Attributes = append(t.Attributes, Attribute{Type: typ, TV: true, Value: val})
			continue
		}
		if typ == AttrKeyLength {
			return t, fmt.Errorf("TLV-format Key Length attribute, want TV")
		}
		vlen := int(binary.BigEndian.Uint16(rest[2:4]))
		if 4+vlen > len(rest) {
			return t, fmt.Errorf("attribute %d length %d exceeds transform length", typ, vlen)
		}
		t.Attributes = append(t.Attributes, Attribute{Type: typ, Value: orNil(rest[4 : 4+vlen])})
		rest = rest[4+vlen:]
	}
	return t, nil
}
