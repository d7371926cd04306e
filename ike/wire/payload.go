package wire

import (
	"encoding/binary"
	"fmt"
)

// Payload is one IKE payload. The implementations are the pointer types of
// this package (*SA, *KE, *ID, *Cert, *CertReq, *Auth, *Nonce, *Notify,
// *Delete, *VendorID, *TS, *CP, *EAP, *Encrypted, *EncryptedFragment,
// *Unknown).
type Payload interface {
	// Type is the payload type announced for this payload by the
	// previous next-payload field.
	Type() PayloadType
	// appendBody appends the payload body (after the generic header).
	appendBody(b []byte) ([]byte, error)
}

// genericHeaderLen is the size of the generic payload header.
const genericHeaderLen = 4

// orNil returns nil for an empty slice, so decoded payloads compare equal
// whether a field was absent or empty, and caps the capacity so that
// appending to one decoded field never overwrites the next.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[:len(b):len(b)]
}

// where names a payload type in error messages.
func where(t PayloadType) string { return t.String() + " payload" }

// KE is the Key Exchange payload (RFC 7296 §3.4).
type KE struct {
	Group uint16 // Diffie-Hellman / key exchange method
	Data  []byte
}

// Type returns PayloadKE.
func (*KE) Type() PayloadType { return PayloadKE }

func (p *KE) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("KE payload", "nil payload")
	}
	b = binary.BigEndian.AppendUint16(b, p.Group)
	b = append(b, 0, 0)
	return append(b, p.Data...), nil
}

func parseKE(body []byte) (*KE, error) {
	if len(body) < 4 {
		return nil, malformed("KE payload", "body is %d bytes, want at least 4", len(body))
	}
	return &KE{Group: binary.BigEndian.Uint16(body), Data: orNil(body[4:])}, nil
}

// ID is the Identification payload, IDi or IDr (RFC 7296 §3.5).
type ID struct {
	Responder bool  // false: IDi (35), true: IDr (36)
	IDType    uint8 // IDIPv4, IDFQDN, ...
	Data      []byte
}

// Type returns PayloadIDi or PayloadIDr.
func (p *ID) Type() PayloadType {
	if p != nil && p.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

// Body returns the payload body as the AUTH computation uses it (RFC 7296
// §2.15): ID Type, three reserved octets, then the identification data.
func (p *ID) Body() []byte {
	b := make([]byte, 0, 4+len(p.Data))
	return append(append(b, p.IDType, 0, 0, 0), p.Data...)
}

func (p *ID) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("ID payload", "nil payload")
	}
	if reason := checkIDData(p.IDType, p.Data); reason != "" {
		return b, encodeErr(where(p.Type()), "%s", reason)
	}
	return append(append(b, p.IDType, 0, 0, 0), p.Data...), nil
}

// checkIDData checks the data length of address identities.
func checkIDData(idType uint8, data []byte) string {
	switch {
	case idType == IDIPv4 && len(data) != 4:
		return "ID_IPV4_ADDR data must be 4 bytes"
	case idType == IDIPv6 && len(data) != 16:
		return "ID_IPV6_ADDR data must be 16 bytes"
	}
	return ""
}

func parseID(t PayloadType, body []byte) (*ID, error) {
	if len(body) < 4 {
		return nil, malformed(where(t), "body is %d bytes, want at least 4", len(body))
	}
	p := &ID{Responder: t == PayloadIDr, IDType: body[0], Data: orNil(body[4:])}
	if reason := checkIDData(p.IDType, p.Data); reason != "" {
		return nil, malformed(where(t), "%s, got %d", reason, len(p.Data))
	}
	return p, nil
}

// Cert is the Certificate payload (RFC 7296 §3.6).
type Cert struct {
	Encoding uint8 // CertX509Signature, ...
	Data     []byte
}

// Type returns PayloadCERT.
func (*Cert) Type() PayloadType { return PayloadCERT }

func (p *Cert) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("CERT payload", "nil payload")
	}
	return append(append(b, p.Encoding), p.Data...), nil
}

// CertReq is the Certificate Request payload (RFC 7296 §3.7); Data is the
// concatenation of 20-byte SHA-1 hashes of trusted CA public keys for X.509.
type CertReq struct {
	Encoding uint8
	Data     []byte
}

// Type returns PayloadCERTREQ.
func (*CertReq) Type() PayloadType { return PayloadCERTREQ }

func (p *CertReq) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("CERTREQ payload", "nil payload")
	}
	return append(append(b, p.Encoding), p.Data...), nil
}

// Auth is the Authentication payload (RFC 7296 §3.8).
type Auth struct {
	Method uint8 // AuthPSK, AuthDigitalSignature, ...
	Data   []byte
}

// Type returns PayloadAUTH.
func (*Auth) Type() PayloadType { return PayloadAUTH }

func (p *Auth) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("AUTH payload", "nil payload")
	}
	return append(append(b, p.Method, 0, 0, 0), p.Data...), nil
}

// Nonce is the Nonce payload (RFC 7296 §3.9); its data is 16 to 256 bytes.
type Nonce struct {
	Data []byte
}

// Nonce size bounds (RFC 7296 §3.9).
const (
	MinNonceLen = 16
	MaxNonceLen = 256
)

// Type returns PayloadNonce.
func (*Nonce) Type() PayloadType { return PayloadNonce }

func (p *Nonce) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("Nonce payload", "nil payload")
	}
	if len(p.Data) < MinNonceLen || len(p.Data) > MaxNonceLen {
		return b, encodeErr("Nonce payload", "nonce is %d bytes, want %d..%d", len(p.Data), MinNonceLen, MaxNonceLen)
	}
	return append(b, p.Data...), nil
}

func parseNonce(body []byte) (*Nonce, error) {
	if len(body) < MinNonceLen || len(body) > MaxNonceLen {
		return nil, malformed("Nonce payload", "nonce is %d bytes, want %d..%d", len(body), MinNonceLen, MaxNonceLen)
	}
	return &Nonce{Data: orNil(body)}, nil
}

// VendorID is the Vendor ID payload (RFC 7296 §3.12).
type VendorID struct {
	Data []byte
}

// Type returns PayloadVendorID.
func (*VendorID) Type() PayloadType { return PayloadVendorID }

func (p *VendorID) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("VendorID payload", "nil payload")
	}
	return append(b, p.Data...), nil
}

// EAP is the EAP payload (RFC 7296 §3.16): one raw EAP packet whose own
// Length field must match the payload.
type EAP struct {
	Data []byte // Code | Identifier | Length | Type | Type-Data
}

// Type returns PayloadEAP.
func (*EAP) Type() PayloadType { return PayloadEAP }

// checkEAP checks the EAP packet header against the packet size.
func checkEAP(data []byte) string {
	if len(data) < 4 {
		return fmt.Sprintf("EAP packet is %d bytes, want at least 4", len(data))
	}
	if n := int(binary.BigEndian.Uint16(data[2:4])); n != len(data) {
		return fmt.Sprintf("EAP Length field %d does not match packet size %d", n, len(data))
	}
	return ""
}

func (p *EAP) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("EAP payload", "nil payload")
	}
	if reason := checkEAP(p.Data); reason != "" {
		return b, encodeErr("EAP payload", "%s", reason)
	}
	return append(b, p.Data...), nil
}

func parseEAP(body []byte) (*EAP, error) {
	if reason := checkEAP(body); reason != "" {
		return nil, malformed("EAP payload", "%s", reason)
	}
	return &EAP{Data: orNil(body)}, nil
}

// Unknown is a payload of a type this package does not decode. Parse keeps
// non-critical ones so that a re-encode round-trips; set Critical only to
// send a critical payload on purpose (tests of a peer).
type Unknown struct {
	PayloadType PayloadType
	Critical    bool
	Data        []byte
}

// Type returns the payload's own type.
func (p *Unknown) Type() PayloadType {
	if p == nil {
		return PayloadNone
	}
	return p.PayloadType
}

func (p *Unknown) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("Unknown payload", "nil payload")
	}
	if p.PayloadType == PayloadNone || p.PayloadType.known() {
		return b, encodeErr("Unknown payload", "type %s is not an unknown type; use its own payload struct", p.PayloadType)
	}
	return append(b, p.Data...), nil
}
