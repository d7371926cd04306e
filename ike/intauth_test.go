package ike

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// TestIntAuthKAT checks the IntAuth chain of RFC 9242 §3.3.2 against
// octets laid out by hand and HMAC-SHA-256 from crypto/hmac: for each
// IKE_INTERMEDIATE message, the IKE header and the Encrypted payload's
// generic header with their lengths counting only the plaintext inner
// payloads, then those payloads; then IntAuth_iN | IntAuth_rN |
// IKE_AUTH_MID.
func TestIntAuthKAT(t *testing.T) {
	prf, _ := ikecrypto.NewPRF(ikecrypto.PRFHMACSHA2_256)
	spii, spir := uint64(0x1111111122222222), uint64(0x3333333344444444)
	data := bytes.Repeat([]byte{0xab}, 1184)
	skp1, skp2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)

	byHand := func(mid uint32, flags byte) []byte {
		ke := []byte{0, 0}                                          // no next payload, not critical
		ke = binary.BigEndian.AppendUint16(ke, uint16(8+len(data))) // KE payload length
		ke = binary.BigEndian.AppendUint16(ke, 36)                  // ML-KEM-768
		ke = append(ke, 0, 0)
		ke = append(ke, data...)
		var a []byte
		a = binary.BigEndian.AppendUint64(a, spii)
		a = binary.BigEndian.AppendUint64(a, spir)
		a = append(a, 46, 0x20, 43, flags) // SK, IKEv2, IKE_INTERMEDIATE
		a = binary.BigEndian.AppendUint32(a, mid)
		a = binary.BigEndian.AppendUint32(a, uint32(28+4+len(ke)))
		a = append(a, 34, 0) // first inner payload KE
		a = binary.BigEndian.AppendUint16(a, uint16(4+len(ke)))
		return append(a, ke...)
	}
	mac := func(key []byte, parts ...[]byte) []byte {
		m := hmac.New(sha256.New, key)
		for _, p := range parts {
			m.Write(p)
		}
		return m.Sum(nil)
	}
	ps := []wire.Payload{&wire.KE{Group: ikecrypto.GroupMLKEM768, Data: data}}
	h1 := wire.Header{SPIi: spii, SPIr: spir, Version: wire.Version2, Exchange: wire.ExchangeIKEIntermediate, Flags: wire.FlagInitiator, MessageID: 1,
		NextPayload: wire.PayloadSKF, Length: 555} // as a fragment arrives: both are replaced
	i1, err := chainIntAuth(prf, skp1, nil, h1, ps)
	if err != nil {
		t.Fatal(err)
	}
	if want := mac(skp1, byHand(1, 0x08)); !bytes.Equal(i1, want) {
		t.Fatalf("IntAuth_i1 = %x, want %x", i1, want)
	}
	h2 := h1
	h2.MessageID = 2
	i2, _ := chainIntAuth(prf, skp2, i1, h2, ps)
	if want := mac(skp2, i1, byHand(2, 0x08)); !bytes.Equal(i2, want) {
		t.Fatalf("IntAuth_i2 = %x, want %x", i2, want)
	}
	r1, _ := chainIntAuth(prf, skp1, nil, wire.Header{SPIi: spii, SPIr: spir, Version: wire.Version2, Exchange: wire.ExchangeIKEIntermediate, Flags: wire.FlagResponse, MessageID: 1}, ps)
	if want := mac(skp1, byHand(1, 0x20)); !bytes.Equal(r1, want) {
		t.Fatalf("IntAuth_r1 = %x, want %x", r1, want)
	}
	x := intermediateState{intAuthI: i2, intAuthR: r1, lastMID: 2}
	want := append(append(append([]byte(nil), i2...), r1...), 0, 0, 0, 3)
	if got := x.intAuth(); !bytes.Equal(got, want) || x.authMID() != 3 {
		t.Errorf("IntAuth = %x, want %x", got, want)
	}
	if (&intermediateState{}).intAuth() != nil {
		t.Error("IntAuth without IKE_INTERMEDIATE is not empty")
	}
}

// TestAddKEWireEncoding checks the SA payload of a hybrid proposal
// against octets typed from RFC 7296 §3.3 and RFC 9370 §2.2.1: ADDKE1 is
// transform type 6, ML-KEM-768 ID 36, NONE ID 0.
func TestAddKEWireEncoding(t *testing.T) {
	p, err := ikecrypto.ParseProposal("aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none", false)
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := wire.AppendPayloads(nil, []wire.Payload{&wire.SA{Proposals: wireProposals([]ikecrypto.Proposal{p}, wire.ProtoIKE, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0, 0, 0, 0x38, // SA payload: last, 56 bytes
		0, 0, 0, 0x34, 1, 1, 0, 5, // proposal 1, IKE, no SPI, 5 transforms
		3, 0, 0, 0x0c, 1, 0, 0, 20, 0x80, 0x0e, 0x01, 0x00, // ENCR AES-GCM-16, key length 256
		3, 0, 0, 8, 2, 0, 0, 5, // PRF HMAC-SHA2-256
		3, 0, 0, 8, 4, 0, 0, 31, // KE Curve25519
		3, 0, 0, 8, 6, 0, 0, 36, // ADDKE1 ML-KEM-768
		0, 0, 0, 8, 6, 0, 0, 0, // ADDKE1 NONE, last transform
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("SA payload\n got %x\nwant %x", got, want)
	}
	back, err := wire.ParsePayloads(wire.PayloadSA, got)
	if err != nil {
		t.Fatal(err)
	}
	suite, _, err := checkChosen(back[0].(*wire.SA), wireProposals([]ikecrypto.Proposal{p}, wire.ProtoIKE, nil), wire.ProtoIKE)
	if err == nil {
		t.Fatalf("two ADDKE1 transforms accepted as a choice: %v", suite)
	}
}
