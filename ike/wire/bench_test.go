package wire

import (
	"bytes"
	"net/netip"
	"testing"
)

// ikeAuthInner is a typical decrypted IKE_AUTH request chain (PSK, config
// request, one ESP proposal, wildcard selectors).
func ikeAuthInner() []Payload {
	any4 := Selector{Type: TSIPv4AddrRange, EndPort: 65535, Start: netip.MustParseAddr("0.0.0.0"), End: netip.MustParseAddr("255.255.255.255")}
	return []Payload{
		&ID{IDType: IDFQDN, Data: []byte("client.example")},
		&Notify{NotifyType: NotifyInitialContact},
		&ID{Responder: true, IDType: IDFQDN, Data: []byte("gw.example")},
		&Auth{Method: AuthPSK, Data: bytes.Repeat([]byte{0xa5}, 32)},
		&CP{CfgType: CfgRequest, Attributes: []CPAttribute{{Type: CPInternalIP4Address}, {Type: CPInternalIP4DNS}, {Type: CPInternalIP6Address}, {Type: CPInternalIP6DNS}}},
		&SA{Proposals: []Proposal{{Number: 1, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{
			{Type: TransformEncr, ID: 20, KeyLength: 256}, {Type: TransformESN, ID: 0}}}}},
		&TS{Selectors: []Selector{any4}},
		&TS{Responder: true, Selectors: []Selector{any4}},
		&Notify{NotifyType: NotifyMOBIKESupported},
		&Notify{NotifyType: NotifyTicketRequest},
		&Notify{NotifyType: NotifyQCDToken},
	}
}

// ikeAuthMessage is an IKE_AUTH request of typical size as received: header
// and an SK payload whose body stands in for IV | ciphertext | ICV.
func ikeAuthMessage(b testing.TB) []byte {
	_, inner, err := AppendPayloads(nil, ikeAuthInner())
	if err != nil {
		b.Fatal(err)
	}
	m := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MessageID: 1},
		Payloads: []Payload{&Encrypted{InnerNext: PayloadIDi, Body: make([]byte, 8+len(inner)+16)}}}
	raw, err := m.Encode()
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func BenchmarkParse(b *testing.B) {
	raw := ikeAuthMessage(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePayloads(b *testing.B) {
	first, inner, err := AppendPayloads(nil, ikeAuthInner())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(inner)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePayloads(first, inner); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	m := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: ExchangeIKEAuth}, Payloads: ikeAuthInner()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}
