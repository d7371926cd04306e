package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func TestSignedOctets(t *testing.T) {
	msg := []byte("IKE_SA_INIT message")
	nonce := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	skp := bytes.Repeat([]byte{0x42}, 32)
	idBody := []byte{IDFQDN, 0, 0, 0, 'g', 'w'}

	got := SignedOctets(hmacSHA256, msg, nonce, skp, idBody)

	// Hand computation of RFC 7296 §2.15.
	m := hmac.New(sha256.New, skp)
	m.Write(idBody)
	want := append(append(append([]byte{}, msg...), nonce...), m.Sum(nil)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("SignedOctets = %x, want %x", got, want)
	}
	if SignedOctets(nil, msg, nonce, skp, idBody) != nil {
		t.Fatal("nil prf must give nil")
	}
}

func TestPSKAuth(t *testing.T) {
	psk := []byte("correct horse battery staple")
	octets := []byte("some signed octets")

	// Independent computation: prf(prf(PSK, "Key Pad for IKEv2"), octets)
	// with HMAC-SHA-256 written out by hand.
	inner := hmac.New(sha256.New, psk)
	inner.Write([]byte{'K', 'e', 'y', ' ', 'P', 'a', 'd', ' ', 'f', 'o', 'r', ' ', 'I', 'K', 'E', 'v', '2'})
	outer := hmac.New(sha256.New, inner.Sum(nil))
	outer.Write(octets)
	want := outer.Sum(nil)

	got := PSKAuth(hmacSHA256, psk, octets)
	if !bytes.Equal(got, want) {
		t.Fatalf("PSKAuth = %x, want %x", got, want)
	}
	if !VerifyPSK(hmacSHA256, psk, octets, want) {
		t.Fatal("VerifyPSK rejected the correct value")
	}
	bad := bytes.Clone(want)
	bad[5] ^= 1
	if VerifyPSK(hmacSHA256, psk, octets, bad) {
		t.Fatal("VerifyPSK accepted a flipped bit")
	}
	if VerifyPSK(hmacSHA256, []byte("other"), octets, want) {
		t.Fatal("VerifyPSK accepted a wrong PSK")
	}
	if VerifyPSK(hmacSHA256, psk, append(octets, 0), want) {
		t.Fatal("VerifyPSK accepted changed octets")
	}
	if VerifyPSK(hmacSHA256, psk, octets, nil) || VerifyPSK(hmacSHA256, psk, octets, want[:16]) {
		t.Fatal("VerifyPSK accepted empty/short data")
	}
	if VerifyPSK(nil, psk, octets, want) || PSKAuth(nil, psk, octets) != nil {
		t.Fatal("nil prf must not verify")
	}
}

func TestHashAlgorithms(t *testing.T) {
	enc := EncodeHashAlgorithms(SignatureHashes())
	if !bytes.Equal(enc, []byte{0, 2, 0, 3, 0, 4}) {
		t.Fatalf("encoded = %x", enc)
	}
	got, err := ParseHashAlgorithms([]byte{0, 1, 0, 2, 0x04, 0x00})
	if err != nil || len(got) != 3 || got[0] != HashSHA1 || got[1] != HashSHA256 || got[2] != 1024 {
		t.Fatalf("parse = %v, %v", got, err)
	}
	if _, err := ParseHashAlgorithms([]byte{0, 2, 0}); err == nil {
		t.Fatal("odd length accepted")
	}
	if got, err := ParseHashAlgorithms(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty = %v, %v", got, err)
	}
}
