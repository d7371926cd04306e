package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// ikeSAInitRequest is an IKE_SA_INIT request assembled by hand from the
// RFC 7296 §3 diagrams (and RFC 7383 §2.3 for the fragmentation notify).
const ikeSAInitRequest = `
# IKE header (§3.1)
0102030405060708   # Initiator's SPI
0000000000000000   # Responder's SPI (zero in IKE_SA_INIT)
21                 # Next Payload: SA (33)
20                 # MjVer 2, MnVer 0
22                 # Exchange Type: IKE_SA_INIT (34)
08                 # Flags: Initiator
00000000           # Message ID 0
000000f2           # Length 242

# SA payload (§3.3)
22 00 0028         # next KE (34), C=0, length 40
  00 00 0024       # proposal: last (0), reserved, length 36
  01 01 00 03      # Proposal Num 1, Protocol IKE, SPI size 0, 3 transforms
    03 00 000c 01 00 0014  800e 0100   # more (3), len 12, ENCR, ENCR_AES_GCM_16 (20), Key Length (TV 14) = 256
    03 00 0008 02 00 0005              # more (3), len 8, PRF, PRF_HMAC_SHA2_256 (5)
    00 00 0008 04 00 001f              # last (0), len 8, KE, Curve25519 (31)

# KE payload (§3.4)
28 00 0028         # next Nonce (40), length 40
001f 0000          # DH Group 31, reserved
000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f

# Nonce payload (§3.9)
29 00 0024         # next Notify (41), length 36
404142434445464748494a4b4c4d4e4f 505152535455565758595a5b5c5d5e5f

# Notify NAT_DETECTION_SOURCE_IP (§3.10)
29 00 001c         # next Notify, length 28
00 00 4004         # Protocol 0, SPI size 0, type 16388
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa

# Notify NAT_DETECTION_DESTINATION_IP
29 00 001c
00 00 4005         # type 16389
bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb

# Notify IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383), no data
29 00 0008
00 00 402e         # type 16430

# Notify SIGNATURE_HASH_ALGORITHMS (RFC 7427)
2b 00 000e         # next Vendor ID (43), length 14
00 00 402f         # type 16431
0002 0003 0004     # SHA2-256, SHA2-384, SHA2-512

# Vendor ID payload (§3.12)
00 00 0014         # last, length 20
7163647670 6e 20 77697265 20 74657374   # "qcdvpn wire test"
`

func TestIKESAInitVector(t *testing.T) {
	b := unhex(t, ikeSAInitRequest)
	if len(b) != 242 {
		t.Fatalf("vector is %d bytes, want 242", len(b))
	}
	m, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	h := m.Header
	if h.SPIi != 0x0102030405060708 || h.SPIr != 0 {
		t.Errorf("SPIs = %#x, %#x", h.SPIi, h.SPIr)
	}
	if h.NextPayload != PayloadSA || h.Version != 0x20 || h.Exchange != ExchangeIKESAInit || h.Flags != FlagInitiator || h.MessageID != 0 || h.Length != 242 {
		t.Errorf("header = %+v", h)
	}
	if !h.IsInitiator() || h.IsResponse() {
		t.Errorf("IsInitiator=%v IsResponse=%v", h.IsInitiator(), h.IsResponse())
	}
	if len(m.Payloads) != 8 {
		t.Fatalf("%d payloads, want 8: %v", len(m.Payloads), m)
	}

	sa, ok := m.Payloads[0].(*SA)
	if !ok || len(sa.Proposals) != 1 {
		t.Fatalf("payload 0 = %#v, want SA with one proposal", m.Payloads[0])
	}
	pr := sa.Proposals[0]
	if pr.Number != 1 || pr.Protocol != ProtoIKE || pr.SPI != nil || len(pr.Transforms) != 3 {
		t.Fatalf("proposal = %+v", pr)
	}
	wantT := []Transform{
		{Type: TransformEncr, ID: 20, KeyLength: 256},
		{Type: TransformPRF, ID: 5},
		{Type: TransformDH, ID: 31},
	}
	if !reflect.DeepEqual(pr.Transforms, wantT) {
		t.Errorf("transforms = %+v, want %+v", pr.Transforms, wantT)
	}

	ke, ok := m.Payloads[1].(*KE)
	if !ok || ke.Group != 31 || len(ke.Data) != 32 || ke.Data[0] != 0x00 || ke.Data[31] != 0x1f {
		t.Errorf("payload 1 = %#v, want KE group 31 with 32 bytes 00..1f", m.Payloads[1])
	}
	nonce, ok := m.Payloads[2].(*Nonce)
	if !ok || len(nonce.Data) != 32 || nonce.Data[0] != 0x40 || nonce.Data[31] != 0x5f {
		t.Errorf("payload 2 = %#v, want 32-byte nonce 40..5f", m.Payloads[2])
	}
	wantN := []struct {
		typ  NotifyType
		data []byte
	}{
		{NotifyNATDetectionSourceIP, rep(0xaa, 20)},
		{NotifyNATDetectionDestinationIP, rep(0xbb, 20)},
		{NotifyIKEv2FragmentationSupported, nil},
		{NotifySignatureHashAlgorithms, []byte{0, 2, 0, 3, 0, 4}},
	}
	for i, w := range wantN {
		n, ok := m.Payloads[3+i].(*Notify)
		if !ok || n.NotifyType != w.typ || n.Protocol != 0 || n.SPI != nil || !bytes.Equal(n.Data, w.data) {
			t.Errorf("payload %d = %#v, want N(%s)", 3+i, m.Payloads[3+i], w.typ)
		}
	}
	if vid, ok := m.Payloads[7].(*VendorID); !ok || string(vid.Data) != "qcdvpn wire test" {
		t.Errorf("payload 7 = %#v, want Vendor ID", m.Payloads[7])
	}
	if got := m.Notify(NotifyNATDetectionDestinationIP); got != m.Payloads[4] {
		t.Errorf("Notify(NAT_DETECTION_DESTINATION_IP) = %v", got)
	}
	if got := len(m.Notifies()); got != 4 {
		t.Errorf("Notifies: %d, want 4", got)
	}
	if m.Notify(NotifyCookie) != nil {
		t.Errorf("Notify(COOKIE) found in a message without one")
	}
	if Find[*KE](m.Payloads) != ke || Find[*Cert](m.Payloads) != nil {
		t.Errorf("Find misbehaves")
	}
	const wantStr = "IKE_SA_INIT request #0 [SA KE Nonce N(NAT_DETECTION_SOURCE_IP) N(NAT_DETECTION_DESTINATION_IP) N(IKEV2_FRAGMENTATION_SUPPORTED) N(SIGNATURE_HASH_ALGORITHMS) VendorID]"
	if s := m.String(); s != wantStr {
		t.Errorf("String() = %q, want %q", s, wantStr)
	}

	// The same message built from structs must encode to the exact bytes.
	built := &Message{
		Header: Header{SPIi: 0x0102030405060708, Exchange: ExchangeIKESAInit, Flags: FlagInitiator},
		Payloads: []Payload{
			&SA{Proposals: []Proposal{{Number: 1, Protocol: ProtoIKE, Transforms: wantT}}},
			&KE{Group: 31, Data: ke.Data},
			&Nonce{Data: nonce.Data},
			&Notify{NotifyType: NotifyNATDetectionSourceIP, Data: rep(0xaa, 20)},
			&Notify{NotifyType: NotifyNATDetectionDestinationIP, Data: rep(0xbb, 20)},
			&Notify{NotifyType: NotifyIKEv2FragmentationSupported},
			&Notify{NotifyType: NotifySignatureHashAlgorithms, Data: []byte{0, 2, 0, 3, 0, 4}},
			&VendorID{Data: []byte("qcdvpn wire test")},
		},
	}
	enc, err := built.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if !bytes.Equal(enc, b) {
		t.Errorf("Encode:\n got %x\nwant %x", enc, b)
	}
	if built.Header != h {
		t.Errorf("Encode set header %+v, want %+v", built.Header, h)
	}
	// Parsed payloads must not alias the input buffer.
	b[HeaderLen+48] ^= 0xff
	if ke.Data[0] != 0x00 {
		t.Errorf("KE data aliases the input buffer")
	}
}

// ikeAuthFragment is the first of three IKE_AUTH request fragments (RFC 7383 §2.5).
const ikeAuthFragment = `
0102030405060708 a1a2a3a4a5a6a7a8   # SPIs
35 20 23 08 00000001 00000034       # next SKF (53), 2.0, IKE_AUTH, I, msg 1, length 52
23 00 0018                          # SKF: inner next IDi (35), length 24
0001 0003                           # Fragment Number 1, Total Fragments 3
c0c1c2c3c4c5c6c7 c8c9cacbcccdcecf   # IV | ciphertext | ICV (opaque)
`

func TestSKFVector(t *testing.T) {
	b := unhex(t, ikeAuthFragment)
	m, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if m.Header.Exchange != ExchangeIKEAuth || m.Header.MessageID != 1 || m.Header.SPIr != 0xa1a2a3a4a5a6a7a8 {
		t.Errorf("header = %+v", m.Header)
	}
	f, ok := m.Payloads[0].(*EncryptedFragment)
	if len(m.Payloads) != 1 || !ok {
		t.Fatalf("payloads = %v, want one SKF", Summary(m.Payloads))
	}
	if f.InnerNext != PayloadIDi || f.Number != 1 || f.Total != 3 || len(f.Body) != 16 || f.Body[0] != 0xc0 {
		t.Errorf("SKF = %+v", f)
	}
	// The associated data ends right before the body: it includes the
	// fragment number and total.
	aad := b[:len(b)-len(f.Body)]
	if len(aad) != HeaderLen+8 || !bytes.Equal(aad[HeaderLen+4:], []byte{0, 1, 0, 3}) {
		t.Errorf("AAD = %x", aad)
	}
	enc, err := m.Encode()
	if err != nil || !bytes.Equal(enc, b) {
		t.Errorf("Encode = %x, %v; want %x", enc, err, b)
	}
}

func TestIKEAuthInnerVector(t *testing.T) {
	// A decrypted SK body: IDi (FQDN), AUTH (PSK), TSi (IPv4 any), all by hand.
	b := unhex(t, `
27 00 0016  02 000000  636c69656e742e6578616d706c65   # IDi: next AUTH, FQDN "client.example"
2c 00 0010  02 000000  0102030405060708               # AUTH: next TSi, PSK, 8 bytes
00 00 0018  01 000000                                 # TSi: last, 1 selector
  07 00 0010 0000 ffff 00000000 ffffffff              # IPv4 range, any proto, ports 0-65535, 0.0.0.0-255.255.255.255
`)
	ps, err := ParsePayloads(PayloadIDi, b)
	if err != nil {
		t.Fatalf("ParsePayloads: %v", err)
	}
	want := []Payload{
		&ID{IDType: IDFQDN, Data: []byte("client.example")},
		&Auth{Method: AuthPSK, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		&TS{Selectors: []Selector{{Type: TSIPv4AddrRange, StartPort: 0, EndPort: 65535,
			Start: netip.MustParseAddr("0.0.0.0"), End: netip.MustParseAddr("255.255.255.255")}}},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Errorf("got %#v\nwant %#v", ps, want)
	}
	if body := ps[0].(*ID).Body(); !bytes.Equal(body, b[4:0x16]) {
		t.Errorf("ID.Body() = %x, want %x", body, b[4:0x16])
	}
	first, enc, err := AppendPayloads(nil, want)
	if err != nil || first != PayloadIDi || !bytes.Equal(enc, b) {
		t.Errorf("AppendPayloads = %v, %x, %v; want IDi, %x", first, enc, err, b)
	}
	if _, err := ParsePayloads(PayloadIDi, b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated inner chain: err = %v", err)
	}
}
