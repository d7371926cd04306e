package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// Building blocks for malformed inputs.
var (
	goodNotify = raw{t: PayloadNotify, body: []byte{0, 0, 0x40, 0x00}}
	v4sel      = cat([]byte{7, 0}, u16(16), u16(0), u16(65535), []byte{10, 0, 0, 1, 10, 0, 0, 9})
)

// transform builds a transform substructure with a correct length.
func transform(last byte, typ uint8, id uint16, attrs ...byte) []byte {
	return cat([]byte{last, 0}, u16(uint16(8+len(attrs))), []byte{typ, 0}, u16(id), attrs)
}

// proposal builds a proposal substructure with a correct length.
func proposal(last, num, proto, nTransforms byte, spi []byte, transforms ...byte) []byte {
	return cat([]byte{last, 0}, u16(uint16(8+len(spi)+len(transforms))), []byte{num, proto, byte(len(spi)), nTransforms}, spi, transforms)
}

func TestParseRejects(t *testing.T) {
	okT := transform(0, TransformDH, 31)
	okP := proposal(0, 1, ProtoIKE, 1, nil, okT...)
	header := datagram(PayloadNone, nil)
	tests := []struct {
		name string
		in   []byte
		want string // substring of the error
	}{
		// Header.
		{"empty", nil, "IKE header: 0 bytes"},
		{"truncated header", header[:27], "IKE header: 27 bytes, want at least 28"},
		{"length field too big", func() []byte { b := bytes.Clone(header); b[27] = 29; return b }(), "Length field 29 does not match datagram size 28"},
		{"length field too small", func() []byte { b := msgOf(goodNotify); b[27] = 28; return b }(), "Length field 28 does not match datagram size 36"},
		{"trailing datagram bytes", append(msgOf(goodNotify), 0), "does not match datagram size 37"},

		// Generic payload header.
		{"missing first payload", datagram(PayloadNonce, nil), "Nonce payload: generic header truncated: 0 bytes left"},
		{"truncated generic header", datagram(PayloadNotify, []byte{0, 0, 0}), "Notify payload: generic header truncated: 3 bytes left"},
		{"payload length below 4", msgOf(raw{t: PayloadVendorID, length: 3}), "VendorID payload: Payload Length 3 below 4"},
		{"payload length beyond end", msgOf(raw{t: PayloadVendorID, body: []byte{1}, length: 6}), "VendorID payload: Payload Length 6 exceeds the 5 bytes left"},
		{"chain ends early", msgOf(raw{t: PayloadNotify, body: goodNotify.body, next: PayloadNonce, nextSet: true}), "Nonce payload: generic header truncated: 0 bytes left"},
		{"bytes after last payload", datagram(PayloadNotify, cat(chain(goodNotify), []byte{0, 0, 0, 4})), "payload chain: 4 bytes after the last payload"},

		// SK / SKF placement.
		{"SK not last", datagram(PayloadSK, cat(chain(raw{t: PayloadSK, body: rep(1, 16), nextSet: true, next: PayloadIDi}), chain(goodNotify))), "SK payload: not the last payload: 8 bytes follow"},
		{"SKF not last", datagram(PayloadSKF, cat(chain(raw{t: PayloadSKF, body: []byte{0, 1, 0, 1, 9}}), []byte{0})), "SKF payload: not the last payload: 1 bytes follow"},
		{"SK length short of end", msgOf(raw{t: PayloadSK, body: rep(1, 16), length: 10}), "SK payload: not the last payload: 10 bytes follow"},

		// Unknown critical.
		{"critical unknown", msgOf(goodNotify, raw{t: 60, critical: true, body: []byte{1}}), "unsupported critical payload type 60"},

		// SA.
		{"SA empty", msgOf(raw{t: PayloadSA}), "SA payload: no proposals"},
		{"SA proposal truncated", msgOf(raw{t: PayloadSA, body: okP[:7]}), "proposal 1: 7 bytes left, want at least 8"},
		{"SA proposal length short", msgOf(raw{t: PayloadSA, body: func() []byte { b := bytes.Clone(okP); b[3] = 7; return b }()}), "proposal 1: Proposal Length 7 outside 8..16"},
		{"SA proposal length long", msgOf(raw{t: PayloadSA, body: func() []byte { b := bytes.Clone(okP); b[3] = 17; return b }()}), "Proposal Length 17 outside 8..16"},
		{"SA last substruc 0 with more", msgOf(raw{t: PayloadSA, body: cat(okP, proposal(0, 2, 1, 1, nil, okT...))}), "proposal 1: Last Substruc 0 but 16 bytes follow"},
		{"SA last substruc 2 at end", msgOf(raw{t: PayloadSA, body: proposal(2, 1, 1, 1, nil, okT...)}), "proposal 1: Last Substruc 2 but no proposal follows"},
		{"SA last substruc 3", msgOf(raw{t: PayloadSA, body: proposal(3, 1, 1, 1, nil, okT...)}), "proposal 1: Last Substruc 3, want 0 or 2"},
		{"SA proposal number 0", msgOf(raw{t: PayloadSA, body: proposal(0, 0, 1, 1, nil, okT...)}), "proposal 1: Proposal Num 0"},
		{"SA proposal numbers skip", msgOf(raw{t: PayloadSA, body: cat(proposal(2, 1, 1, 1, nil, okT...), proposal(0, 3, 1, 1, nil, okT...))}), "Proposal Num 3 follows 1"},
		{"SA proposal numbers repeat", msgOf(raw{t: PayloadSA, body: cat(proposal(2, 1, 1, 1, nil, okT...), proposal(0, 1, 1, 1, nil, okT...))}), "Proposal Num 1 follows 1"},
		{"SA SPI size too big", msgOf(raw{t: PayloadSA, body: func() []byte { b := proposal(0, 1, 3, 0, nil); b[6] = 4; return b }()}), "proposal 1: SPI size 4 exceeds proposal length"},
		{"SA fewer transforms than count", msgOf(raw{t: PayloadSA, body: proposal(0, 1, 1, 2, nil, transform(3, 1, 12)...)}), "proposal 1 transform 2: 0 bytes left"},
		{"SA more transforms than count", msgOf(raw{t: PayloadSA, body: proposal(0, 1, 1, 1, nil, cat(okT, okT)...)}), "proposal 1: 8 bytes after its 1 transforms"},
		{"SA transform last marker wrong", msgOf(raw{t: PayloadSA, body: proposal(0, 1, 1, 1, nil, transform(3, 4, 31)...)}), "transform 1 of 1: Last Substruc 3, want 0"},
		{"SA transform more marker wrong", msgOf(raw{t: PayloadSA, body: proposal(0, 1, 1, 2, nil, cat(transform(0, 1, 12), okT)...)}), "transform 1 of 2: Last Substruc 0, want 3"},
		{"SA transform length short", msgOf(raw{t: PayloadSA, body: proposal(0, 1, 1, 1, nil, func() []byte { b := bytes.Clone(okT); b[3] = 4; return b }()...)}), "Transform Length 4 outside 8..8"},
		{"SA transform truncated", msgOf(raw{t: PayloadSA, body: proposal(0, 1, 1, 1, nil, okT[:6]...)}), "transform 1: 6 bytes left, want at least 8"},
		{"SA attribute truncated", msgOf(raw{t: PayloadSA, body: proposal(0, 1, 1, 1, nil, transform(0, 1, 12, 0x80, 0x0e)...)}), "attribute truncated: 2 bytes left"},
		{"SA TLV attribute too long", msgOf(raw{t: PayloadSA, body: proposal(0, 1, 1, 1, nil, transform(0, 1, 12, 0x00, 0x20, 0x00, 0x05, 1, 2)...)}), "attribute 32 length 5 exceeds transform length"},
		{"SA duplicate key length", msgOf(raw{t: PayloadSA, body: proposal(0, 1, 1, 1, nil, transform(0, 1, 12, 0x80, 0x0e, 0, 128, 0x80, 0x0e, 1, 0)...)}), "duplicate Key Length attribute"},
		{"SA zero key length", msgOf(raw{t: PayloadSA, body: proposal(0, 1, 1, 1, nil, transform(0, 1, 12, 0x80, 0x0e, 0, 0)...)}), "zero Key Length attribute"},
		{"SA TLV key length", msgOf(raw{t: PayloadSA, body: proposal(0, 1, 1, 1, nil, transform(0, 1, 12, 0x00, 0x0e, 0, 2, 1, 0)...)}), "TLV-format Key Length attribute"},

		// KE, ID, CERT, CERTREQ, AUTH.
		{"KE short", msgOf(raw{t: PayloadKE, body: []byte{0, 31, 0}}), "KE payload: body is 3 bytes, want at least 4"},
		{"IDi short", msgOf(raw{t: PayloadIDi, body: []byte{2, 0, 0}}), "IDi payload: body is 3 bytes"},
		{"IDr IPv4 length", msgOf(raw{t: PayloadIDr, body: []byte{1, 0, 0, 0, 1, 2, 3, 4, 5}}), "IDr payload: ID_IPV4_ADDR data must be 4 bytes, got 5"},
		{"IDi IPv6 length", msgOf(raw{t: PayloadIDi, body: cat([]byte{5, 0, 0, 0}, rep(1, 4))}), "ID_IPV6_ADDR data must be 16 bytes, got 4"},
		{"CERT empty", msgOf(raw{t: PayloadCERT}), "CERT payload: empty body"},
		{"CERTREQ empty", msgOf(raw{t: PayloadCERTREQ}), "CERTREQ payload: empty body"},
		{"AUTH short", msgOf(raw{t: PayloadAUTH, body: []byte{2, 0}}), "AUTH payload: body is 2 bytes"},

		// Nonce.
		{"nonce too short", msgOf(raw{t: PayloadNonce, body: rep(1, 15)}), "Nonce payload: nonce is 15 bytes, want 16..256"},
		{"nonce empty", msgOf(raw{t: PayloadNonce}), "nonce is 0 bytes"},
		{"nonce too long", msgOf(raw{t: PayloadNonce, body: rep(1, 257)}), "nonce is 257 bytes"},

		// Notify, Delete.
		{"Notify short", msgOf(raw{t: PayloadNotify, body: []byte{0, 0, 0x40}}), "Notify payload: body is 3 bytes"},
		{"Notify SPI size", msgOf(raw{t: PayloadNotify, body: []byte{3, 9, 0, 11, 1, 2, 3, 4}}), "wire: Notify payload: SPI size 9 exceeds payload length"},
		{"Delete short", msgOf(raw{t: PayloadDelete, body: []byte{3, 4, 0}}), "Delete payload: body is 3 bytes"},
		{"Delete count too big", msgOf(raw{t: PayloadDelete, body: []byte{3, 4, 0, 2, 1, 2, 3, 4}}), "Delete payload: 2 SPIs of size 4 need 8 bytes, payload has 4"},
		{"Delete count too small", msgOf(raw{t: PayloadDelete, body: []byte{3, 4, 0, 1, 1, 2, 3, 4, 5}}), "1 SPIs of size 4 need 4 bytes, payload has 5"},
		{"Delete size 0 with SPIs", msgOf(raw{t: PayloadDelete, body: []byte{1, 0, 0, 3}}), "Delete payload: 3 SPIs of size 0"},
		{"Delete IKE with data", msgOf(raw{t: PayloadDelete, body: []byte{1, 0, 0, 0, 1}}), "0 SPIs of size 0 need 0 bytes, payload has 1"},

		// TS.
		{"TS short", msgOf(raw{t: PayloadTSi, body: []byte{1, 0, 0}}), "TSi payload: body is 3 bytes"},
		{"TS zero count", msgOf(raw{t: PayloadTSi, body: []byte{0, 0, 0, 0}}), "TSi payload: Number of TSs is 0"},
		{"TS count above selectors", msgOf(raw{t: PayloadTSr, body: cat([]byte{2, 0, 0, 0}, v4sel)}), "TSr payload: selector 2 of 2: 0 bytes left"},
		{"TS count below selectors", msgOf(raw{t: PayloadTSi, body: cat([]byte{1, 0, 0, 0}, v4sel, v4sel)}), "TSi payload: 16 bytes after 1 selectors"},
		{"TS selector length 17", msgOf(raw{t: PayloadTSi, body: cat([]byte{1, 0, 0, 0}, v4sel[:2], u16(17), v4sel[4:], []byte{0})}), "selector 1: Selector Length 17, want 16 for type 7"},
		{"TS IPv6 selector length 16", msgOf(raw{t: PayloadTSi, body: cat([]byte{1, 0, 0, 0}, []byte{8}, v4sel[1:])}), "Selector Length 16, want 40 for type 8"},
		{"TS selector length 3", msgOf(raw{t: PayloadTSi, body: cat([]byte{1, 0, 0, 0}, []byte{10, 0, 0, 3})}), "Selector Length 3 outside 4..4"},
		{"TS selector length beyond payload", msgOf(raw{t: PayloadTSi, body: cat([]byte{1, 0, 0, 0}, v4sel[:2], u16(20), v4sel[4:])}), "Selector Length 20 outside 4..16"},
		{"TS start after end address", msgOf(raw{t: PayloadTSi, body: cat([]byte{1, 0, 0, 0}, v4sel[:8], []byte{10, 0, 0, 9, 10, 0, 0, 1})}), "selector 1: start address 10.0.0.9 after end address 10.0.0.1"},
		{"TS IPv6 start after end", msgOf(raw{t: PayloadTSi, body: cat([]byte{1, 0, 0, 0}, []byte{8, 0}, u16(40), u16(0), u16(0), rep(2, 16), rep(1, 16))}), "start address 202:202:202:202:202:202:202:202 after end address"},
		{"TS start port after end", msgOf(raw{t: PayloadTSi, body: cat([]byte{1, 0, 0, 0}, v4sel[:4], u16(500), u16(499), v4sel[8:])}), "selector 1: start port 500 after end port 499"},
		{"TS almost opaque ports", msgOf(raw{t: PayloadTSi, body: cat([]byte{1, 0, 0, 0}, v4sel[:4], u16(65535), u16(1), v4sel[8:])}), "start port 65535 after end port 1"},

		// CP.
		{"CP short", msgOf(raw{t: PayloadCP, body: []byte{1, 0, 0}}), "CP payload: body is 3 bytes"},
		{"CP attribute truncated", msgOf(raw{t: PayloadCP, body: []byte{1, 0, 0, 0, 0, 1, 0}}), "CP payload: attribute 1: 3 bytes left, want at least 4"},
		{"CP attribute too long", msgOf(raw{t: PayloadCP, body: []byte{2, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3}}), "CP payload: attribute 2: Length 4 exceeds payload length"},

		// EAP.
		{"EAP short", msgOf(raw{t: PayloadEAP, body: []byte{1, 1, 0}}), "EAP payload: EAP packet is 3 bytes, want at least 4"},
		{"EAP length mismatch", msgOf(raw{t: PayloadEAP, body: []byte{1, 1, 0, 6, 1}}), "EAP payload: EAP Length field 6 does not match packet size 5"},

		// SKF numbers.
		{"SKF short", msgOf(raw{t: PayloadSKF, body: []byte{0, 1, 0}}), "SKF payload: body is 3 bytes, want at least 4"},
		{"SKF number 0", msgOf(raw{t: PayloadSKF, body: []byte{0, 0, 0, 2, 1}}), "SKF payload: Fragment Number is 0"},
		{"SKF total 0", msgOf(raw{t: PayloadSKF, body: []byte{0, 1, 0, 0, 1}}), "SKF payload: Total Fragments is 0"},
		{"SKF number above total", msgOf(raw{t: PayloadSKF, body: []byte{0, 3, 0, 2, 1}}), "SKF payload: Fragment Number 3 exceeds Total Fragments 2"},
		{"SKF next on later fragment", msgOf(raw{t: PayloadSKF, nextSet: true, next: PayloadIDi, body: []byte{0, 2, 0, 2, 1}}), "SKF payload: fragment 2 has Next Payload IDi, want NONE after fragment 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse accepted it: %v", m)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
			if !strings.HasPrefix(msg, "wire: ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q is not a one-line wire error", msg)
			}
			var ce *UnsupportedCriticalError
			if !errors.Is(err, ErrMalformed) && !errors.As(err, &ce) {
				t.Errorf("error %q wraps neither ErrMalformed nor UnsupportedCriticalError", msg)
			}
			// A decodable header comes back with the error for the responder.
			if len(tc.in) >= HeaderLen && (m == nil || m.Header.SPIi != 0x1122334455667788) {
				t.Errorf("no header returned with the error: %v", m)
			}
		})
	}
}

func TestUnsupportedCritical(t *testing.T) {
	_, err := Parse(msgOf(goodNotify, raw{t: 60, critical: true, body: []byte{1}}))
	var ce *UnsupportedCriticalError
	if !errors.As(err, &ce) || ce.Type != 60 || errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want *UnsupportedCriticalError{60}", err)
	}
	// Inside an SK payload too.
	_, err = ParsePayloads(PayloadNotify, chain(goodNotify, raw{t: 200, critical: true}))
	if !errors.As(err, &ce) || ce.Type != 200 {
		t.Fatalf("ParsePayloads err = %v", err)
	}
	// Non-critical unknown payloads are kept.
	m, err := Parse(msgOf(goodNotify, raw{t: 60, body: []byte{1}}))
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := m.Payloads[1].(*Unknown); !ok || u.PayloadType != 60 || u.Critical || !bytes.Equal(u.Data, []byte{1}) {
		t.Fatalf("payload 1 = %#v", m.Payloads[1])
	}
}

func TestParsePayloadsRejectsSK(t *testing.T) {
	for _, typ := range []PayloadType{PayloadSK, PayloadSKF} {
		_, err := ParsePayloads(typ, chain(raw{t: typ, body: []byte{0, 1, 0, 1, 5}}))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "not allowed inside an SK payload") {
			t.Errorf("%v inside SK: err = %v", typ, err)
		}
	}
}

func TestVersionError(t *testing.T) {
	for _, v := range []byte{0x10, 0x30, 0x00, 0xf2} {
		b := msgOf(goodNotify)
		b[17] = v
		h, err := ParseHeader(b)
		var ve *VersionError
		if !errors.As(err, &ve) || ve.Version != v || !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("version %#x: err = %v", v, err)
		}
		if h.SPIi != 0x1122334455667788 || h.Exchange != ExchangeIKESAInit {
			t.Errorf("version %#x: header not filled: %+v", v, h)
		}
		m, err := Parse(b)
		if !errors.As(err, &ve) || m == nil || m.Header.SPIi != h.SPIi {
			t.Errorf("Parse version %#x: %v, %v", v, m, err)
		}
	}
	// Minor versions are accepted and kept.
	b := msgOf(goodNotify)
	b[17] = 0x2f
	if h, err := ParseHeader(b); err != nil || h.Version != 0x2f {
		t.Errorf("minor version 15: %+v %v", h, err)
	}
	if msg := (&VersionError{Version: 0x31}).Error(); msg != "wire: unsupported IKE version 3.1 (want major version 2)" {
		t.Errorf("VersionError text %q", msg)
	}
}

func TestEncodeRejects(t *testing.T) {
	addr := netip.MustParseAddr
	v4 := func(s Selector) Payload { return &TS{Selectors: []Selector{s}} }
	tests := []struct {
		name string
		ps   []Payload
		want string
	}{
		{"nil payload", []Payload{nil}, "nil payload"},
		{"nil next payload", []Payload{&Nonce{Data: rep(1, 16)}, nil}, "nil payload"},
		{"typed nil", []Payload{(*KE)(nil)}, "KE payload: nil payload"},
		{"typed nil SK", []Payload{(*Encrypted)(nil)}, "SK payload: nil payload"},
		{"SK not last", []Payload{&Encrypted{}, &Nonce{Data: rep(1, 16)}}, "SK payload: must be the last payload, 1 follow"},
		{"SKF not last", []Payload{&EncryptedFragment{Number: 1, Total: 1}, &Notify{}}, "SKF payload: must be the last payload"},
		{"short nonce", []Payload{&Nonce{Data: rep(1, 15)}}, "nonce is 15 bytes, want 16..256"},
		{"long nonce", []Payload{&Nonce{Data: rep(1, 257)}}, "nonce is 257 bytes"},
		{"empty SA", []Payload{&SA{}}, "SA payload: no proposals"},
		{"proposal 0", []Payload{&SA{Proposals: []Proposal{{Number: 0}}}}, "proposal 1: number 0"},
		{"proposal gap", []Payload{&SA{Proposals: []Proposal{{Number: 1}, {Number: 3}}}}, "proposal number 3 follows 1"},
		{"TV attribute size", []Payload{&SA{Proposals: []Proposal{{Number: 1, Transforms: []Transform{{Attributes: []Attribute{{Type: 5, TV: true, Value: []byte{1}}}}}}}}}, "TV attribute 5 has a 1-byte value, want 2"},
		{"attribute type 16 bits", []Payload{&SA{Proposals: []Proposal{{Number: 1, Transforms: []Transform{{Attributes: []Attribute{{Type: 0x8001}}}}}}}}, "attribute type 32769 exceeds 15 bits"},
		{"key length in attributes", []Payload{&SA{Proposals: []Proposal{{Number: 1, Transforms: []Transform{{Attributes: []Attribute{{Type: 14, TV: true, Value: []byte{1, 0}}}}}}}}}, "belongs in Transform.KeyLength"},
		{"ID IPv4 size", []Payload{&ID{IDType: IDIPv4, Data: []byte{1, 2, 3}}}, "IDi payload: ID_IPV4_ADDR data must be 4 bytes"},
		{"Delete SPI size", []Payload{&Delete{Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3}}}}, "Delete payload: SPI 1 is 3 bytes, SPI size is 4"},
		{"Delete zero size", []Payload{&Delete{Protocol: ProtoESP, SPIs: [][]byte{nil}}}, "1 SPIs of size 0"},
		{"TS empty", []Payload{&TS{Responder: true}}, "TSr payload: 0 selectors, want 1..255"},
		{"TS family", []Payload{v4(Selector{Type: TSIPv4AddrRange, EndPort: 1, Start: addr("::1"), End: addr("::1")})}, "selector 1: TS_IPV4_ADDR_RANGE with addresses ::1-::1"},
		{"TS missing address", []Payload{v4(Selector{Type: TSIPv6AddrRange})}, "TS_IPV6_ADDR_RANGE with addresses invalid IP-invalid IP"},
		{"TS zone", []Payload{v4(Selector{Type: TSIPv6AddrRange, Start: addr("fe80::1%eth0"), End: addr("fe80::2")})}, "TS_IPV6_ADDR_RANGE"},
		{"TS addresses reversed", []Payload{v4(Selector{Type: TSIPv4AddrRange, Start: addr("10.0.0.2"), End: addr("10.0.0.1")})}, "start address 10.0.0.2 after end address 10.0.0.1"},
		{"TS ports reversed", []Payload{v4(Selector{Type: TSIPv4AddrRange, StartPort: 2, EndPort: 1, Start: addr("10.0.0.1"), End: addr("10.0.0.1")})}, "start port 2 after end port 1"},
		{"TS data on range", []Payload{v4(Selector{Type: TSIPv4AddrRange, Start: addr("10.0.0.1"), End: addr("10.0.0.1"), Data: []byte{1}})}, "Data set on an address-range selector"},
		{"CP type", []Payload{&CP{Attributes: []CPAttribute{{Type: 0x8000}}}}, "CP payload: attribute 1: type 32768 exceeds 15 bits"},
		{"EAP length", []Payload{&EAP{Data: []byte{1, 1, 0, 5}}}, "EAP Length field 5 does not match packet size 4"},
		{"SKF number 0", []Payload{&EncryptedFragment{Total: 1}}, "Fragment Number is 0"},
		{"SKF total 0", []Payload{&EncryptedFragment{Number: 1}}, "Total Fragments is 0"},
		{"SKF number above total", []Payload{&EncryptedFragment{Number: 2, Total: 1}}, "Fragment Number 2 exceeds Total Fragments 1"},
		{"SKF next on fragment 2", []Payload{&EncryptedFragment{InnerNext: PayloadIDi, Number: 2, Total: 2}}, "fragment 2 has Next Payload IDi"},
		{"Unknown known type", []Payload{&Unknown{PayloadType: PayloadNonce}}, "type Nonce is not an unknown type"},
		{"Unknown none", []Payload{&Unknown{}}, "type NONE is not an unknown type"},
		{"payload too long", []Payload{&VendorID{Data: make([]byte, 0xffff-3)}}, "65536 bytes exceed the 65535-byte payload limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("keep")
			first, out, err := AppendPayloads(prefix, tc.ps)
			if err == nil {
				t.Fatalf("AppendPayloads accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "wire: ") {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if first != PayloadNone || string(out) != "keep" {
				t.Errorf("on error got first %v, out %q", first, out)
			}
			m := &Message{Payloads: tc.ps}
			if b, err := m.Encode(); err == nil || b != nil || m.Header.Length != 0 {
				t.Errorf("Encode: %x, %v, header %+v", b, err, m.Header)
			}
		})
	}
}
