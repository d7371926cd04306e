package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Message is a whole IKE message: header and payload chain. Header.NextPayload
// and Header.Length are set by Encode.
type Message struct {
	Header   Header
	Payloads []Payload
}

// criticalBit is the C flag of the generic payload header.
const criticalBit = 0x80

// Parse decodes one IKE datagram: the header (see ParseHeader) and the
// payload chain. An SK or SKF payload must be the last one; its Body is
// kept opaque and holds the last len(Body) bytes of b, so the associated
// data is b[:len(b)-len(Body)]. A payload of an unknown type becomes *Unknown,
// unless its critical bit is set: then the error is *UnsupportedCriticalError.
// Every other error wraps ErrMalformed or ErrUnsupportedVersion. When the
// header itself decoded, the error comes with a Message holding just the
// Header, so that a responder can answer it. The result does not alias b.
func Parse(b []byte) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		if len(b) < HeaderLen {
			return nil, err
		}
		return &Message{Header: h}, err
	}
	// One copy, so that payload fields never alias the caller's buffer.
	buf := bytes.Clone(b[HeaderLen:])
	ps, err := parseChain(h.NextPayload, buf, true)
	if err != nil {
		return &Message{Header: h}, err
	}
	return &Message{Header: h, Payloads: ps}, nil
}

// ParsePayloads decodes the payload chain b starting with a payload of
// type first, as found inside a decrypted SK payload. The rules are those
// of Parse, except that SK and SKF payloads are not allowed. The result
// does not alias b.
func ParsePayloads(first PayloadType, b []byte) ([]Payload, error) {
	return parseChain(first, bytes.Clone(b), false)
}

// parseChain walks the next-payload chain over b. outer allows SK/SKF.
func parseChain(next PayloadType, b []byte, outer bool) ([]Payload, error) {
	var ps []Payload
	for next != PayloadNone {
		t := next
		if len(b) < genericHeaderLen {
			return nil, malformed(where(t), "generic header truncated: %d bytes left", len(b))
		}
		next = PayloadType(b[0])
		critical := b[1]&criticalBit != 0
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if n < genericHeaderLen {
			return nil, malformed(where(t), "Payload Length %d below %d", n, genericHeaderLen)
		}
		if n > len(b) {
			return nil, malformed(where(t), "Payload Length %d exceeds the %d bytes left", n, len(b))
		}
		body := b[genericHeaderLen:n:n]
		b = b[n:]
		if t == PayloadSK || t == PayloadSKF {
			if !outer {
				return nil, malformed(where(t), "not allowed inside an SK payload")
			}
			if len(b) != 0 {
				return nil, malformed(where(t), "not the last payload: %d bytes follow", len(b))
			}
			if t == PayloadSK {
				return append(ps, &Encrypted{InnerNext: next, Body: orNil(body)}), nil
			}
			f, err := parseSKF(next, body)
			if err != nil {
				return nil, err
			}
			return append(ps, f), nil
		}
		p, err := parseBody(t, critical, body)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	if len(b) != 0 {
		return nil, malformed("payload chain", "%d bytes after the last payload", len(b))
	}
	return ps, nil
}

// parseBody decodes the body of a payload of type t (not SK or SKF).
func parseBody(t PayloadType, critical bool, body []byte) (Payload, error) {
	switch t {
	case PayloadSA:
		return parseSA(body)
	case PayloadKE:
		return parseKE(body)
	case PayloadIDi, PayloadIDr:
		return parseID(t, body)
	case PayloadCERT, PayloadCERTREQ:
		if len(body) < 1 {
			return nil, malformed(where(t), "empty body, want an encoding octet")
		}
		if t == PayloadCERT {
			return &Cert{Encoding: body[0], Data: orNil(body[1:])}, nil
		}
		return &CertReq{Encoding: body[0], Data: orNil(body[1:])}, nil
	case PayloadAUTH:
		if len(body) < 4 {
			return nil, malformed(where(t), "body is %d bytes, want at least 4", len(body))
		}
		return &Auth{Method: body[0], Data: orNil(body[4:])}, nil
	case PayloadNonce:
		return parseNonce(body)
	case PayloadNotify:
		return parseNotify(body)
	case PayloadDelete:
		return parseDelete(body)
	case PayloadVendorID:
		return &VendorID{Data: orNil(body)}, nil
	case PayloadTSi, PayloadTSr:
		return parseTS(t, body)
	case PayloadCP:
		return parseCP(body)
	case PayloadEAP:
		return parseEAP(body)
	}
	if critical {
		return nil, &UnsupportedCriticalError{Type: t}
	}
	return &Unknown{PayloadType: t, Data: orNil(body)}, nil
}

// AppendPayloads encodes the chain ps onto dst, linking the next-payload
// fields, and returns the type of the first payload (PayloadNone if ps is
// empty). An *Encrypted or *EncryptedFragment must be last; its own
// next-payload field carries its InnerNext. The critical bit is set only
// for an *Unknown with Critical. On error dst is returned unchanged.
func AppendPayloads(dst []byte, ps []Payload) (first PayloadType, out []byte, err error) {
	orig := len(dst)
	fail := func(err error) (PayloadType, []byte, error) { return PayloadNone, dst[:orig], err }
	for i, p := range ps {
		if p == nil || (i+1 < len(ps) && ps[i+1] == nil) {
			return fail(fmt.Errorf("wire: encode payload chain: nil payload"))
		}
		var next PayloadType
		var flags byte
		switch v := p.(type) {
		case *Encrypted:
			if v != nil {
				next = v.InnerNext
			}
		case *EncryptedFragment:
			if v != nil {
				next = v.InnerNext
			}
		case *Unknown:
			if v != nil && v.Critical {
				flags = criticalBit
			}
		}
		if t := p.Type(); t == PayloadSK || t == PayloadSKF {
			if i != len(ps)-1 {
				return fail(encodeErr(where(t), "must be the last payload, %d follow", len(ps)-1-i))
			}
		} else if i+1 < len(ps) {
			next = ps[i+1].Type()
		}
		start := len(dst)
		dst = append(dst, byte(next), flags, 0, 0)
		if dst, err = p.appendBody(dst); err != nil {
			return fail(err)
		}
		n := len(dst) - start
		if n > 0xffff {
			return fail(encodeErr(where(p.Type()), "%d bytes exceed the 65535-byte payload limit", n))
		}
		binary.BigEndian.PutUint16(dst[start+2:], uint16(n))
	}
	if len(ps) == 0 {
		return PayloadNone, dst, nil
	}
	return ps[0].Type(), dst, nil
}

// Encode encodes the message. It sets Header.NextPayload and Header.Length,
// and Header.Version to Version2 if it is zero; the other header fields are
// written as they are.
func (m *Message) Encode() ([]byte, error) {
	b := make([]byte, HeaderLen, 512)
	first, b, err := AppendPayloads(b, m.Payloads)
	if err != nil {
		return nil, err
	}
	if uint64(len(b)) > math.MaxUint32 {
		return nil, encodeErr("IKE header", "message of %d bytes", len(b))
	}
	if m.Header.Version == 0 {
		m.Header.Version = Version2
	}
	m.Header.NextPayload = first
	m.Header.Length = uint32(len(b))
	m.Header.Append(b[:0]) // overwrite the 28 reserved bytes in place
	return b, nil
}

// Notifies returns every Notify payload of the message, in order.
func (m *Message) Notifies() []*Notify { return FindAll[*Notify](m.Payloads) }

// Notify returns the first Notify payload of type t, or nil.
func (m *Message) Notify(t NotifyType) *Notify { return FindNotify(m.Payloads, t) }

// FindNotify returns the first Notify payload of type t in ps, or nil.
func FindNotify(ps []Payload, t NotifyType) *Notify {
	for _, p := range ps {
		if n, ok := p.(*Notify); ok && n != nil && n.NotifyType == t {
			return n
		}
	}
	return nil
}

// Find returns the first payload of concrete type T in ps (for example
// Find[*SA](ps)), or the zero T (nil) if there is none.
func Find[T Payload](ps []Payload) T {
	for _, p := range ps {
		if v, ok := p.(T); ok {
			return v
		}
	}
	var zero T
	return zero
}

// FindAll returns every payload of concrete type T in ps, in order.
func FindAll[T Payload](ps []Payload) []T {
	var out []T
	for _, p := range ps {
		if v, ok := p.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// String summarises the message for logs, e.g.
// "IKE_SA_INIT request #0 [SA KE Nonce N(NAT_DETECTION_SOURCE_IP)]".
func (m *Message) String() string {
	kind := "request"
	if m.Header.IsResponse() {
		kind = "response"
	}
	return fmt.Sprintf("%s %s #%d %s", m.Header.Exchange, kind, m.Header.MessageID, Summary(m.Payloads))
}

// Summary lists payload types for logs, notifications by name:
// "[IDi AUTH N(INITIAL_CONTACT) SA TSi TSr]".
func Summary(ps []Payload) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, p := range ps {
		if i > 0 {
			sb.WriteByte(' ')
		}
		switch v := p.(type) {
		case nil:
			sb.WriteString("nil")
		case *Notify:
			if v == nil {
				sb.WriteString("N(nil)")
			} else {
				sb.WriteString("N(" + v.NotifyType.String() + ")")
			}
		case *EncryptedFragment:
			if v == nil {
				sb.WriteString("SKF(nil)")
			} else {
				fmt.Fprintf(&sb, "SKF(%d/%d)", v.Number, v.Total)
			}
		default:
			sb.WriteString(p.Type().String())
		}
	}
	sb.WriteByte(']')
	return sb.String()
}
