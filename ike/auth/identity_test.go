package auth

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"
)

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		in       string
		typ      uint8
		data     []byte // nil: not checked
		str      string
		strictOK bool
	}{
		{"192.0.2.1", IDIPv4, []byte{192, 0, 2, 1}, "192.0.2.1", true},
		{"2001:db8::1", IDIPv6, []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "2001:db8::1", true},
		{"fe80::1%eth0", IDIPv6, nil, "fe80::1", true},
		{"gw.example", IDFQDN, []byte("gw.example"), "gw.example", true},
		{"@gw.example", IDFQDN, []byte("gw.example"), "gw.example", true},
		{"@192.0.2.1", IDFQDN, []byte("192.0.2.1"), "192.0.2.1", true},
		{"user@example.org", IDRFC822, []byte("user@example.org"), "user@example.org", true},
		{"@@example.org", IDRFC822, []byte("example.org"), "example.org", true},
		{"@#0a1B", IDKeyID, []byte{0x0a, 0x1b}, "@#0a1b", true},
		{"%any", IDAny, nil, "%any", true},
		{"", IDAny, nil, "%any", true},
		{"C=CH, O=strongSwan, CN=moon.strongswan.org", IDDN, nil, "C=CH, O=strongSwan, CN=moon.strongswan.org", true},
		{"c=CH,o=x,cn=gw", IDDN, nil, "C=CH, O=x, CN=gw", true},
		{"CN=a\\,b, E=u@x.org", IDDN, nil, "CN=a\\,b, E=u@x.org", true},
		{"C=CH, X=1", IDKeyID, []byte("C=CH, X=1"), "@#", false}, // unknown attribute
		{"C=CH,,CN=x", IDKeyID, nil, "", false},
		{"CN=", IDKeyID, nil, "", false},
	}
	for _, tc := range tests {
		id := ParseIdentity(tc.in)
		if id.Type != tc.typ {
			t.Errorf("%q: type %d, want %d", tc.in, id.Type, tc.typ)
			continue
		}
		if tc.data != nil && !bytes.Equal(id.Data, tc.data) {
			t.Errorf("%q: data %x, want %x", tc.in, id.Data, tc.data)
		}
		if !strings.HasPrefix(id.String(), tc.str) {
			t.Errorf("%q: String() = %q, want %q", tc.in, id.String(), tc.str)
		}
		_, err := ParseIdentityStrict(tc.in)
		if (err == nil) != tc.strictOK {
			t.Errorf("%q: strict err = %v", tc.in, err)
		}
	}
}

func TestDNEncoding(t *testing.T) {
	// Hand-assembled DER: SEQUENCE { SET { C=CH PrintableString },
	// SET { CN=gw PrintableString } }.
	want := unhex(t, "301a 310b 3009 0603 5504 0613 0243 48 310b 3009 0603 5504 0313 0267 77")
	if got := ParseIdentity("C=CH, CN=gw").Data; !bytes.Equal(got, want) {
		t.Fatalf("DER = %x, want %x", got, want)
	}
	// Cross-check with crypto/x509/pkix for a strongSwan-style DN.
	name := pkix.Name{Country: []string{"CH"}, Organization: []string{"strongSwan"}, CommonName: "moon.strongswan.org"}
	ref, err := asn1.Marshal(name.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	if got := ParseIdentity("C=CH, O=strongSwan, CN=moon.strongswan.org").Data; !bytes.Equal(got, ref) {
		t.Fatalf("DER = %x, want %x", got, ref)
	}
	// String types: e-mail as IA5String, non-printable as UTF8String.
	id := ParseIdentity("E=a@b.c, CN=Zürich")
	var seq pkix.RDNSequence
	if _, err := asn1.Unmarshal(id.Data, &seq); err != nil {
		t.Fatal(err)
	}
	if len(seq) != 2 || seq[0][0].Value != "a@b.c" || seq[1][0].Value != "Zürich" {
		t.Fatalf("decoded %v", seq)
	}
	if !bytes.Contains(id.Data, []byte{0x16, 5, 'a', '@'}) || !bytes.Contains(id.Data, []byte{0x0c, 7, 'Z'}) {
		t.Fatalf("string types wrong: %x", id.Data)
	}
}

func TestDNRoundTrip(t *testing.T) {
	for _, s := range []string{
		"C=CH, O=strongSwan, CN=moon.strongswan.org",
		"C=US, ST=CA, L=San Francisco, O=Example\\, Inc., OU=VPN, CN=gw.example, E=ops@example.com",
		"CN=\\ lead and trail\\ , O=back\\\\slash",
		"DC=org, DC=example, UID=jdoe, serialNumber=1234, 1.2.3.4=custom, title=Dr, G=Ann, surname=Lee, postalCode=8000",
		"CN=ctl\\01x, O=Zürich AG",
	} {
		id, err := ParseIdentityStrict(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		back, err := ParseIdentityStrict(id.String())
		if err != nil {
			t.Fatalf("%q -> %q: %v", s, id.String(), err)
		}
		if !bytes.Equal(back.Data, id.Data) || !back.Equal(id) {
			t.Errorf("%q -> %q does not round-trip", s, id.String())
		}
	}
}

func TestIdentityEqual(t *testing.T) {
	tests := []struct {
		a, b string
		eq   bool
	}{
		{"C=CH, O=x, CN=gw", "c=ch,o=X,  cn=GW", true},
		{"C=CH, O=x, CN=gw", "C=CH, O=x  y, CN=gw", false},
		{"C=CH, O=x y, CN=gw", "C=CH, O=x   y, CN=gw", true},
		{"C=CH, O=x, CN=gw", "O=x, C=CH, CN=gw", false}, // order matters
		{"C=CH, O=x, CN=gw", "C=CH, O=x", false},
		{"gw.example", "GW.Example.", true},
		{"gw.example", "gw.example.org", false},
		{"a@b.c", "A@B.C", true},
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"192.0.2.1", "::ffff:192.0.2.1", false}, // different ID types
		{"gw.example", "@gw.example", true},
		{"gw.example", "gw.example@", false},
	}
	for _, tc := range tests {
		if got := ParseIdentity(tc.a).Equal(ParseIdentity(tc.b)); got != tc.eq {
			t.Errorf("%q == %q: %v, want %v", tc.a, tc.b, got, tc.eq)
		}
	}
	// A UTF8String and a PrintableString of the same text are equal.
	utf8DN, _ := asn1.Marshal([]rdnSET{{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte("gw")}}}})
	if !(Identity{Type: IDDN, Data: utf8DN}).Equal(ParseIdentity("CN=gw")) {
		t.Error("UTF8String vs PrintableString DN not equal")
	}
	// Undecodable DNs fall back to byte comparison.
	if !(Identity{Type: IDDN, Data: []byte{1, 2}}).Equal(Identity{Type: IDDN, Data: []byte{1, 2}}) {
		t.Error("raw DN not equal to itself")
	}
}

func TestIDBody(t *testing.T) {
	id := ParseIdentity("gw.example")
	body := id.Body()
	if !bytes.Equal(body, append([]byte{IDFQDN, 0, 0, 0}, "gw.example"...)) {
		t.Fatalf("body %x", body)
	}
	back, err := ParseIDBody(body)
	if err != nil || !back.Equal(id) {
		t.Fatalf("ParseIDBody = %v, %v", back, err)
	}
	if _, err := ParseIDBody([]byte{2, 0, 0}); err == nil {
		t.Fatal("short body accepted")
	}
	if _, err := ParseIDBody([]byte{0, 0, 0, 0}); err == nil {
		t.Fatal("type 0 accepted")
	}
}

func TestIdentityStringOddData(t *testing.T) {
	for _, id := range []Identity{
		{Type: IDIPv4, Data: []byte{1, 2, 3}},
		{Type: IDFQDN, Data: []byte("a\x00b")},
		{Type: IDDN, Data: []byte{0x30, 0x05}},
		{Type: 77, Data: []byte{1}},
		{Type: IDAny, Data: []byte{1}},
	} {
		s := id.String()
		if s == "" || strings.ContainsRune(s, 0) {
			t.Errorf("%v: String() = %q", id.Data, s)
		}
	}
	// A CN encoded as INTEGER prints as RFC 4514 "#hex".
	intCN := Identity{Type: IDDN, Data: unhex(t, "300d 310b 3009 0603 5504 0302 0200 ff")}
	if s := intCN.String(); s != "CN=#020200ff" {
		t.Errorf("INTEGER CN: %q", s)
	}
}
