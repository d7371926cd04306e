package wire

import (
	"encoding/binary"
	"fmt"
)

// Encrypted is the Encrypted and Authenticated payload SK (RFC 7296 §3.14).
// It must be the last payload of a message. Its next-payload field holds
// InnerNext, the type of the first payload inside; the associated data for
// its integrity check is the message up to Body: raw[:len(raw)-len(Body)].
type Encrypted struct {
	InnerNext PayloadType
	Body      []byte // IV | ciphertext | ICV, opaque here
}

// Type returns PayloadSK.
func (*Encrypted) Type() PayloadType { return PayloadSK }

func (p *Encrypted) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("SK payload", "nil payload")
	}
	return append(b, p.Body...), nil
}

// EncryptedFragment is the Encrypted and Authenticated Fragment payload SKF
// (RFC 7383 §2.5). Number runs from 1 to Total; only fragment 1 carries
// InnerNext, the others have 0 there. As for SK, the associated data is the
// message up to Body, Fragment Number and Total Fragments included.
type EncryptedFragment struct {
	InnerNext     PayloadType
	Number, Total uint16
	Body          []byte // IV | ciphertext | ICV, opaque here
}

// Type returns PayloadSKF.
func (*EncryptedFragment) Type() PayloadType { return PayloadSKF }

// check validates the fragment numbering; it returns "" when valid.
func (p *EncryptedFragment) check() string {
	switch {
	case p.Total == 0:
		return "Total Fragments is 0"
	case p.Number == 0:
		return "Fragment Number is 0"
	case p.Number > p.Total:
		return fmt.Sprintf("Fragment Number %d exceeds Total Fragments %d", p.Number, p.Total)
	case p.Number != 1 && p.InnerNext != PayloadNone:
		return fmt.Sprintf("fragment %d has Next Payload %s, want NONE after fragment 1", p.Number, p.InnerNext)
	}
	return ""
}

func (p *EncryptedFragment) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("SKF payload", "nil payload")
	}
	if reason := p.check(); reason != "" {
		return b, encodeErr("SKF payload", "%s", reason)
	}
	b = binary.BigEndian.AppendUint16(b, p.Number)
	b = binary.BigEndian.AppendUint16(b, p.Total)
	return append(b, p.Body...), nil
}

func parseSKF(next PayloadType, body []byte) (*EncryptedFragment, error) {
	if len(body) < 4 {
		return nil, malformed("SKF payload", "body is %d bytes, want at least 4", len(body))
	}
	p := &EncryptedFragment{
		InnerNext: next,
		Number:    binary.BigEndian.Uint16(body[0:2]),
		Total:     binary.BigEndian.Uint16(body[2:4]),
		Body:      orNil(body[4:]),
	}
	if reason := p.check(); reason != "" {
		return nil, malformed("SKF payload", "%s", reason)
	}
	return p, nil
}
