package ike

import (
	"errors"
	"fmt"
	"io"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// saKeys is the key material of an established (or establishing) IKE SA and
// the ciphers built from it.
type saKeys struct {
	suite Suite
	prf   *ikecrypto.PRF
	keys  ikecrypto.IKEKeys
	// out protects what we send; in opens what we receive.
	out, in *ikecrypto.SKCipher
}

// deriveKeys runs SKEYSEED and prf+ for a new IKE SA (RFC 7296 §2.14).
func deriveKeys(s Suite, skeyseed, ni, nr []byte, spii, spir uint64, initiator bool) (*saKeys, error) {
	prf, err := ikecrypto.NewPRF(s.PRF)
	if err != nil {
		return nil, err
	}
	encLen, err := ikecrypto.EncrKeyLen(s.Encr, s.KeyBits)
	if err != nil {
		return nil, err
	}
	integLen := 0
	if s.Integ != ikecrypto.IntegNone {
		in, err := ikecrypto.NewIntegrity(s.Integ)
		if err != nil {
			return nil, err
		}
		integLen = in.KeyLen()
	}
	k := ikecrypto.DeriveIKEKeys(prf, skeyseed, ni, nr, spii, spir, integLen, encLen)
	ci, err := ikecrypto.NewSKCipher(s.Encr, s.KeyBits, s.Integ, k.SKei, k.SKai)
	if err != nil {
		return nil, err
	}
	cr, err := ikecrypto.NewSKCipher(s.Encr, s.KeyBits, s.Integ, k.SKer, k.SKar)
	if err != nil {
		return nil, err
	}
	sk := &saKeys{suite: s, prf: prf, keys: k}
	if initiator {
		sk.out, sk.in = ci, cr
	} else {
		sk.out, sk.in = cr, ci
	}
	return sk, nil
}

// seal builds an encrypted message: header, then an SK payload holding inner.
func (k *saKeys) seal(h wire.Header, inner []wire.Payload, rand io.Reader) ([]byte, error) {
	first, pt, err := wire.AppendPayloads(nil, inner)
	if err != nil {
		return nil, err
	}
	bodyLen := k.out.BodyLen(len(pt))
	m := wire.Message{Header: h, Payloads: []wire.Payload{&wire.Encrypted{InnerNext: first, Body: make([]byte, bodyLen)}}}
	raw, err := m.Encode()
	if err != nil {
		return nil, err
	}
	split := len(raw) - bodyLen
	if err := k.out.Seal(raw[:split], raw[split:], pt, rand); err != nil {
		return nil, err
	}
	return raw, nil
}

// errNotEncrypted marks a message that should have been protected but was not.
var errNotEncrypted = errors.New("ike: message carries no SK payload")

// open parses and decrypts a protected message, returning its header and
// the inner payloads.
func (k *saKeys) open(raw []byte) (wire.Header, []wire.Payload, error) {
	m, err := wire.Parse(raw)
	if err != nil {
		return wire.Header{}, nil, err
	}
	if len(m.Payloads) == 0 {
		return m.Header, nil, errNotEncrypted
	}
	enc, ok := m.Payloads[len(m.Payloads)-1].(*wire.Encrypted)
	if !ok {
		return m.Header, nil, errNotEncrypted
	}
	split := len(raw) - len(enc.Body)
	body := append([]byte(nil), raw[split:]...)
	pt, err := k.in.Open(raw[:split], body)
	if err != nil {
		return m.Header, nil, err
	}
	ps, err := wire.ParsePayloads(enc.InnerNext, pt)
	if err != nil {
		return m.Header, nil, fmt.Errorf("ike: inside SK payload: %w", err)
	}
	return m.Header, ps, nil
}
