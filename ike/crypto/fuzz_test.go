package crypto

import (
	"reflect"
	"testing"
)

// FuzzParseProposal: no panics, and whatever parses spells canonically as
// something that parses back to the same proposal.
func FuzzParseProposal(f *testing.F) {
	for _, s := range []string{"aes256gcm16-prfsha256-x25519", "aes256-sha256-modp2048", "aes128gcm16-esn",
		"chacha20poly1305-sha512-ecp384-ke1_x25519", "aes--", "-", "aes256gcm16-sha256-prfsha1", "ke7_modp4096",
		"aes256gcm16-prfsha256-x25519-ke1_mlkem768", "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none",
		"aes256-sha256-ecp256-ke1_mlkem1024-ke2_mlkem768-ke3_none", "x25519-ke1_mlkem512", "aes256gcm16-mlkem768", "ke1_none"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, esp bool) {
		p, err := ParseProposal(s, esp)
		if err != nil {
			return
		}
		again, err := ParseProposal(p.String(), esp)
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", s, p.String(), err)
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("%q -> %q -> %+v, want %+v", s, p.String(), again, p)
		}
		_ = SuiteString(p.Algorithms)
	})
}

// FuzzSKCipherOpen: Open never panics on any body or aad, for every suite,
// and random input does not authenticate.
func FuzzSKCipherOpen(f *testing.F) {
	suites := allSuites()
	f.Add(uint8(0), []byte("aad"), make([]byte, 64))
	f.Add(uint8(13), []byte{}, make([]byte, 25))
	f.Add(uint8(200), []byte{1}, []byte{})
	// A valid body for each suite, so mutations start near valid input.
	for i, s := range suites {
		c := newSuiteCipher(f, s, 1)
		body := make([]byte, c.BodyLen(20))
		_ = c.Seal([]byte("aad"), body, make([]byte, 20), nil)
		f.Add(uint8(i), []byte("aad"), body)
	}
	ciphers := make([]*SKCipher, len(suites))
	for i, s := range suites {
		ciphers[i] = newSuiteCipher(f, s, 1)
	}
	f.Fuzz(func(t *testing.T, which uint8, aad, body []byte) {
		c := ciphers[int(which)%len(ciphers)]
		pt, err := c.Open(aad, body)
		if err == nil && len(pt) > len(body) {
			t.Fatalf("plaintext longer than body")
		}
	})
}

// FuzzKEMPeerValue: a peer's ML-KEM value of any content and length is
// either rejected with an error or gives a secret; never a panic.
func FuzzKEMPeerValue(f *testing.F) {
	f.Add(uint16(GroupMLKEM768), make([]byte, 1184), true)
	f.Add(uint16(GroupMLKEM768), make([]byte, 1088), false)
	f.Add(uint16(GroupMLKEM1024), make([]byte, 1568), true)
	f.Add(uint16(GroupMLKEM512), []byte{1, 2, 3}, true)
	ke768, _ := NewKeyExchange(GroupMLKEM768, nil)
	ke1024, _ := NewKeyExchange(GroupMLKEM1024, nil)
	f.Fuzz(func(t *testing.T, group uint16, peer []byte, responder bool) {
		if responder {
			pub, secret, err := RespondKeyExchange(group, peer, nil)
			if err == nil && (len(pub) == 0 || len(secret) == 0) {
				t.Fatal("empty value without an error")
			}
			return
		}
		for _, ke := range []KeyExchange{ke768, ke1024} {
			if secret, err := ke.SharedSecret(peer); err == nil && len(secret) != 32 {
				t.Fatalf("secret of %d bytes", len(secret))
			}
		}
	})
}
