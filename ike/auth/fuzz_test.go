package auth

import (
	"bytes"
	"testing"
)

// FuzzVerify feeds random methods and AUTH data to Verify with every key
// type: nothing may panic, and random data must not verify.
func FuzzVerify(f *testing.F) {
	keys := testKeys()
	for _, name := range []string{"RSA-2048", "P-256", "P-384", "Ed25519"} {
		for _, peer := range [][]uint16{nil, {HashSHA256, HashSHA384, HashSHA512, HashIdentity}} {
			if m, d, err := Sign(keys[name], peer, octets, nil); err == nil {
				f.Add(m, d, octets)
			}
		}
	}
	f.Add(uint8(14), []byte{0x0f, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x00, 1}, []byte("x"))
	f.Add(uint8(14), []byte{0xff}, []byte{})
	f.Add(uint8(2), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, method uint8, data, msg []byte) {
		for name, k := range keys {
			err := VerifyWithOptions(k.Public(), method, data, msg, VerifyOptions{AllowSHA1: method&1 == 1})
			if err == nil && !bytes.Equal(msg, octets) {
				t.Fatalf("%s: random data verified: method %d data %x", name, method, data)
			}
		}
		_ = Verify(nil, method, data, msg)
	})
}

// FuzzParseIdentity checks that parsing never panics, that String and
// Equal work on the result, and that DNs survive String/parse.
func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1", "2001:db8::1", "@gw", "gw.example", "u@h", "@@x", "@#abcd", "%any",
		"C=CH, O=x, CN=gw", "CN=a\\,b\\5c", "1.2.3=x", "CN= \\ x\\  ", "E=a@b, DC=c", "=", ",", "CN=\\",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id := ParseIdentity(s)
		str := id.String()
		if !id.Equal(id) {
			t.Fatalf("%q: not equal to itself", s)
		}
		strict, err := ParseIdentityStrict(s)
		if err != nil || strict.Type != IDDN {
			return
		}
		back, err := ParseIdentityStrict(str)
		if err != nil {
			t.Fatalf("%q -> %q: %v", s, str, err)
		}
		if !back.Equal(strict) {
			t.Fatalf("%q -> %q: DN does not round-trip", s, str)
		}
	})
}

// FuzzIdentityWire checks String, Equal and the certificate match on
// identities straight from the wire.
func FuzzIdentityWire(f *testing.F) {
	f.Add([]byte{9, 0, 0, 0, 0x30, 0x00})
	f.Add(append([]byte{9, 0, 0, 0}, ParseIdentity("C=CH, CN=gw").Data...))
	f.Add([]byte{1, 0, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, body []byte) {
		id, err := ParseIDBody(body)
		if err != nil {
			return
		}
		_ = id.String()
		_ = id.Equal(ParseIdentity("C=CH, CN=gw"))
		if !id.Equal(id) {
			t.Fatal("not equal to itself")
		}
		if !bytes.Equal(id.Body(), append([]byte{body[0], 0, 0, 0}, body[4:]...)) {
			t.Fatal("Body does not round-trip")
		}
	})
}

// FuzzParseHashAlgorithms checks decoding against re-encoding.
func FuzzParseHashAlgorithms(f *testing.F) {
	f.Add([]byte{0, 2, 0, 3, 0, 4})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHashAlgorithms(b)
		if err != nil {
			if len(b)%2 == 0 {
				t.Fatalf("even length rejected: %v", err)
			}
			return
		}
		if !bytes.Equal(EncodeHashAlgorithms(h), b) {
			t.Fatal("round-trip mismatch")
		}
	})
}
