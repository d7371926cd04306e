package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// samplePayloads holds at least one value of every payload type, in
// several shapes, keyed by name. SK and SKF are covered separately since
// they must come last.
func samplePayloads() map[string]Payload {
	addr := netip.MustParseAddr
	return map[string]Payload{
		"SA/IKE": &SA{Proposals: []Proposal{
			{Number: 1, Protocol: ProtoIKE, Transforms: []Transform{
				{Type: TransformEncr, ID: 20, KeyLength: 256},
				{Type: TransformPRF, ID: 7},
				{Type: TransformDH, ID: 31},
				{Type: TransformADDKE1, ID: 35},
			}},
			{Number: 2, Protocol: ProtoIKE, Transforms: []Transform{
				{Type: TransformEncr, ID: 12, KeyLength: 128},
				{Type: TransformInteg, ID: 12},
				{Type: TransformPRF, ID: 5},
				{Type: TransformDH, ID: 19},
			}},
		}},
		"SA/ESP+attrs": &SA{Proposals: []Proposal{
			{Number: 3, Protocol: ProtoESP, SPI: []byte{0xc1, 0xc2, 0xc3, 0xc4}, Transforms: []Transform{
				{Type: TransformEncr, ID: 20, KeyLength: 128, Attributes: []Attribute{
					{Type: 17, TV: true, Value: []byte{0, 9}},
					{Type: 200, Value: []byte("tlv value")},
					{Type: 201}, // empty TLV
				}},
				{Type: TransformESN, ID: 0},
			}},
		}},
		"SA/rekey-IKE-SPI": &SA{Proposals: []Proposal{{Number: 1, Protocol: ProtoIKE, SPI: bytes.Repeat([]byte{7}, 8)}}},
		"KE":               &KE{Group: 31, Data: bytes.Repeat([]byte{0x55}, 32)},
		"KE/empty":         &KE{Group: 0},
		"IDi/FQDN":         &ID{IDType: IDFQDN, Data: []byte("client.example")},
		"IDi/IPv4":         &ID{IDType: IDIPv4, Data: []byte{192, 0, 2, 1}},
		"IDr/IPv6":         &ID{Responder: true, IDType: IDIPv6, Data: addr("2001:db8::1").AsSlice()},
		"IDr/DN":           &ID{Responder: true, IDType: IDDERASN1DN, Data: []byte{0x30, 0x00}},
		"CERT":             &Cert{Encoding: CertX509Signature, Data: bytes.Repeat([]byte{0x30}, 900)},
		"CERTREQ":          &CertReq{Encoding: CertX509Signature, Data: bytes.Repeat([]byte{0xfe}, 40)},
		"CERTREQ/empty":    &CertReq{Encoding: CertX509Signature},
		"AUTH":             &Auth{Method: AuthDigitalSignature, Data: bytes.Repeat([]byte{1}, 80)},
		"Nonce/min":        &Nonce{Data: bytes.Repeat([]byte{2}, MinNonceLen)},
		"Nonce/max":        &Nonce{Data: bytes.Repeat([]byte{3}, MaxNonceLen)},
		"Notify/plain":     &Notify{NotifyType: NotifyInitialContact},
		"Notify/QCD":       &Notify{NotifyType: NotifyQCDToken, Data: bytes.Repeat([]byte{9}, 32)},
		"Notify/child-SPI": &Notify{Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, NotifyType: NotifyRekeySA},
		"Notify/unknown":   &Notify{NotifyType: 40000, Data: []byte{1}},
		"Delete/IKE":       &Delete{Protocol: ProtoIKE},
		"Delete/ESP":       &Delete{Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}}},
		"VendorID":         &VendorID{Data: []byte("some vendor")},
		"VendorID/empty":   &VendorID{},
		"TSi": &TS{Selectors: []Selector{
			{Type: TSIPv4AddrRange, StartPort: 0, EndPort: 65535, Start: addr("10.0.0.1"), End: addr("10.0.0.1")},
			{Type: TSIPv6AddrRange, IPProtocol: 6, StartPort: 443, EndPort: 443, Start: addr("2001:db8::"), End: addr("2001:db8::ffff")},
			{Type: TSIPv4AddrRange, IPProtocol: 50, StartPort: 65535, EndPort: 0, Start: addr("0.0.0.0"), End: addr("255.255.255.255")}, // OPAQUE
			{Type: TSIPv6AddrRange, Start: addr("::ffff:192.0.2.1"), End: addr("::ffff:192.0.2.9")},
			{Type: TSSecLabel, Data: []byte("system_u:object_r:ipsec_spd_t:s0")},
		}},
		"TSr": &TS{Responder: true, Selectors: []Selector{
			{Type: TSIPv4AddrRange, StartPort: 0, EndPort: 65535, Start: addr("10.200.0.0"), End: addr("10.200.0.255")},
		}},
		"CP/request": &CP{CfgType: CfgRequest, Attributes: []CPAttribute{
			{Type: CPInternalIP4Address}, {Type: CPInternalIP4DNS}, {Type: CPInternalIP6Address}, {Type: CPInternalDNSDomain},
		}},
		"CP/reply": &CP{CfgType: CfgReply, Attributes: []CPAttribute{
			{Type: CPInternalIP4Address, Value: []byte{10, 100, 0, 2}},
			{Type: CPInternalIP6Address, Value: append(addr("fd00::2").AsSlice(), 64)},
			{Type: CPInternalDNSDomain, Value: []byte("corp.example")},
		}},
		"CP/empty":  &CP{CfgType: CfgAck},
		"EAP":       &EAP{Data: []byte{2, 7, 0, 9, 1, 'u', 's', 'e', 'r'}},
		"EAP/short": &EAP{Data: []byte{3, 7, 0, 4}},
		"Unknown":   &Unknown{PayloadType: 60, Data: []byte("opaque")},
		"Unknown/0": &Unknown{PayloadType: 200},
	}
}

// roundTrip encodes ps in a message, parses it back and checks equality.
func roundTrip(t *testing.T, ps ...Payload) *Message {
	t.Helper()
	m := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: ExchangeInformational, Flags: FlagResponse, MessageID: 7}, Payloads: ps}
	enc, err := m.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got, err := Parse(enc)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip mismatch:\n got %#v\nwant %#v", got.Payloads, m.Payloads)
	}
	enc2, err := got.Encode()
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("re-encode differs: %v", err)
	}
	return got
}

func TestRoundTripEachPayload(t *testing.T) {
	for name, p := range samplePayloads() {
		t.Run(name, func(t *testing.T) { roundTrip(t, p) })
	}
}

func TestRoundTripAllTogether(t *testing.T) {
	var ps []Payload
	for _, p := range samplePayloads() {
		ps = append(ps, p)
	}
	for _, tail := range []Payload{
		&Encrypted{InnerNext: PayloadIDi, Body: bytes.Repeat([]byte{0xee}, 100)},
		&EncryptedFragment{InnerNext: PayloadIDi, Number: 1, Total: 2, Body: bytes.Repeat([]byte{0xef}, 50)},
		&EncryptedFragment{Number: 2, Total: 2, Body: []byte{1}},
	} {
		roundTrip(t, append(ps[:len(ps):len(ps)], tail)...)
	}
	// The inner chain (no SK) also round-trips through AppendPayloads/ParsePayloads.
	first, b, err := AppendPayloads([]byte("prefix"), ps)
	if err != nil {
		t.Fatal(err)
	}
	if first != ps[0].Type() || string(b[:6]) != "prefix" {
		t.Fatalf("AppendPayloads: first %v, prefix %q", first, b[:6])
	}
	got, err := ParsePayloads(first, b[6:])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ps) {
		t.Fatalf("inner chain mismatch")
	}
}

func TestEncryptedLayout(t *testing.T) {
	body := []byte("IV-ciphertext-ICV")
	m := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: ExchangeIKEAuth},
		Payloads: []Payload{&Notify{NotifyType: NotifyInitialContact}, &Encrypted{InnerNext: PayloadIDi, Body: body}}}
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.NextPayload != PayloadNotify || m.Header.Length != uint32(len(enc)) {
		t.Errorf("header after Encode: %+v", m.Header)
	}
	// Notify (8 bytes) points at SK; SK's own next field carries the inner type.
	n := enc[HeaderLen:]
	if PayloadType(n[0]) != PayloadSK || PayloadType(n[8]) != PayloadIDi {
		t.Errorf("next-payload fields: notify->%d, SK->%d", n[0], n[8])
	}
	if !bytes.HasSuffix(enc, body) {
		t.Errorf("SK body is not the tail of the message")
	}
	got := roundTrip(t, m.Payloads...)
	sk := Find[*Encrypted](got.Payloads)
	if sk == nil || sk.InnerNext != PayloadIDi || !bytes.Equal(sk.Body, body) {
		t.Errorf("SK = %+v", sk)
	}
}

func TestEmptyMessage(t *testing.T) {
	m := &Message{}
	enc, err := m.Encode()
	if err != nil || len(enc) != HeaderLen || m.Header.Version != Version2 || m.Header.NextPayload != PayloadNone {
		t.Fatalf("Encode empty: %x %+v %v", enc, m.Header, err)
	}
	got, err := Parse(enc)
	if err != nil || len(got.Payloads) != 0 {
		t.Fatalf("Parse empty: %v %v", got, err)
	}
	first, b, err := AppendPayloads(nil, nil)
	if first != PayloadNone || len(b) != 0 || err != nil {
		t.Fatalf("AppendPayloads(nil) = %v %x %v", first, b, err)
	}
}

func TestCriticalBit(t *testing.T) {
	// Known payloads with the critical bit set are accepted.
	b := msgOf(raw{t: PayloadNotify, critical: true, body: []byte{0, 0, 0x40, 0}})
	m, err := Parse(b)
	if err != nil || m.Notify(NotifyInitialContact) == nil {
		t.Fatalf("critical known payload: %v", err)
	}
	// We never set it on known payloads.
	enc, _ := m.Encode()
	if enc[HeaderLen+1] != 0 {
		t.Errorf("critical bit re-encoded on a known payload")
	}
	// Unknown.Critical is sent as asked and refused by Parse.
	m = &Message{Payloads: []Payload{&Unknown{PayloadType: 99, Critical: true, Data: []byte{1}}}}
	enc, err = m.Encode()
	if err != nil || enc[HeaderLen+1] != 0x80 {
		t.Fatalf("Encode critical unknown: %x %v", enc, err)
	}
	_, err = Parse(enc)
	var ce *UnsupportedCriticalError
	if !errors.As(err, &ce) || ce.Type != 99 {
		t.Fatalf("Parse critical unknown: %v", err)
	}
}

func TestIDBody(t *testing.T) {
	id := &ID{IDType: IDKeyID, Data: []byte{0xab, 0xcd}}
	if got, want := id.Body(), []byte{IDKeyID, 0, 0, 0, 0xab, 0xcd}; !bytes.Equal(got, want) {
		t.Errorf("Body() = %x, want %x", got, want)
	}
	if id.Type() != PayloadIDi || (&ID{Responder: true}).Type() != PayloadIDr {
		t.Errorf("ID.Type wrong")
	}
	if (&TS{}).Type() != PayloadTSi || (&TS{Responder: true}).Type() != PayloadTSr {
		t.Errorf("TS.Type wrong")
	}
}

func TestFindHelpers(t *testing.T) {
	a := &Notify{NotifyType: NotifyCookie, Data: []byte{1}}
	b := &Notify{NotifyType: NotifyCookie, Data: []byte{2}}
	ps := []Payload{&Nonce{}, a, &Notify{NotifyType: NotifyInitialContact}, b}
	if FindNotify(ps, NotifyCookie) != a || FindNotify(ps, NotifyRedirect) != nil {
		t.Errorf("FindNotify")
	}
	if got := FindAll[*Notify](ps); len(got) != 3 || got[2] != b {
		t.Errorf("FindAll = %v", got)
	}
	if Find[*SA](ps) != nil || Find[*Nonce](ps) != ps[0] {
		t.Errorf("Find")
	}
	if Find[*SA](nil) != nil {
		t.Errorf("Find on nil")
	}
}

func TestDecodedFieldsDoNotOverlap(t *testing.T) {
	b := msgOf(raw{t: PayloadNotify, body: []byte{3, 4, 0x40, 0x09, 1, 2, 3, 4, 9, 9}},
		raw{t: PayloadSA, body: proposal(0, 1, ProtoESP, 1, []byte{5, 6, 7, 8}, transform(0, 1, 12, 0x80, 0x11, 0, 1, 0x80, 0x0e, 0, 128)...)})
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	n := m.Payloads[0].(*Notify)
	_ = append(n.SPI, 0xff, 0xff)
	if !bytes.Equal(n.Data, []byte{9, 9}) {
		t.Errorf("appending to Notify.SPI overwrote Data: %x", n.Data)
	}
	tr := m.Payloads[1].(*SA).Proposals[0].Transforms[0]
	_ = append(tr.Attributes[0].Value, 0xff, 0xff)
	if tr.KeyLength != 128 {
		t.Fatalf("KeyLength = %d", tr.KeyLength)
	}
	enc, _ := m.Encode()
	if !bytes.Equal(enc[len(enc)-4:], []byte{0x80, 0x11, 0, 1}) {
		t.Errorf("appending to an attribute value changed the message: %x", enc)
	}
}
