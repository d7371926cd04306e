package wire

import "encoding/binary"

// CP is the Configuration payload (RFC 7296 §3.15).
type CP struct {
	CfgType    uint8 // CfgRequest, CfgReply, CfgSet, CfgAck
	Attributes []CPAttribute
}

// CPAttribute is one configuration attribute; Value may be empty (a request
// for the attribute).
type CPAttribute struct {
	Type  uint16 // CPInternalIP4Address, ... (15 bits)
	Value []byte
}

// Type returns PayloadCP.
func (*CP) Type() PayloadType { return PayloadCP }

func (p *CP) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("CP payload", "nil payload")
	}
	b = append(b, p.CfgType, 0, 0, 0)
	for i, a := range p.Attributes {
		if a.Type > 0x7fff {
			return b, encodeErr("CP payload", "attribute %d: type %d exceeds 15 bits", i+1, a.Type)
		}
		if len(a.Value) > 0xffff {
			return b, encodeErr("CP payload", "attribute %d: value of %d bytes", i+1, len(a.Value))
		}
		b = binary.BigEndian.AppendUint16(b, a.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b, nil
}

func parseCP(body []byte) (*CP, error) {
	if len(body) < 4 {
		return nil, malformed("CP payload", "body is %d bytes, want at least 4", len(body))
	}
	p := &CP{CfgType: body[0]}
	rest := body[4:]
	for len(rest) > 0 {
		i := len(p.Attributes) + 1
		if len(rest) < 4 {
			return nil, malformed("CP payload", "attribute %d: %d bytes left, want at least 4", i, len(rest))
		}
		// The top bit is reserved: ignored on receipt.
		typ := binary.BigEndian.Uint16(rest) & 0x7fff
		n := int(binary.BigEndian.Uint16(rest[2:4]))
		if 4+n > len(rest) {
			return nil, malformed("CP payload", "attribute %d: Length %d exceeds payload length", i, n)
		}
		p.Attributes = append(p.Attributes, CPAttribute{Type: typ, Value: orNil(rest[4 : 4+n])})
		rest = rest[4+n:]
	}
	return p, nil
}
