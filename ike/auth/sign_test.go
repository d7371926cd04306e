package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
)

// Test keys are generated once per test binary; RSA-2048 takes a while.
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	m := map[string]crypto.Signer{"RSA-2048": r}
	for name, c := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		m[name] = k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	m["Ed25519"] = ed
	return m
})

var octets = []byte("RealMessage | Nonce | prf(SK_p, IDbody) stand-in")

func TestSignVerifyRoundTrip(t *testing.T) {
	keys := testKeys()
	all := SignatureHashes()
	tests := []struct {
		key        string
		peer       []uint16
		opts       SignOptions
		wantMethod uint8
		wantAlgHex string // AlgorithmIdentifier expected for method 14
		wantLen    int    // exact data length for classic ECDSA
	}{
		{"RSA-2048", nil, SignOptions{}, MethodRSASig, "", 256},
		{"RSA-2048", all, SignOptions{}, MethodDigitalSignature, "300d06092a864886f70d01010d0500", 0},
		{"RSA-2048", []uint16{HashSHA256}, SignOptions{}, MethodDigitalSignature, "300d06092a864886f70d01010b0500", 0},
		{"RSA-2048", []uint16{HashSHA384}, SignOptions{RSAPSS: true}, MethodDigitalSignature, "", 0},
		{"RSA-2048", []uint16{HashSHA1}, SignOptions{}, MethodRSASig, "", 256}, // SHA-1 only: classic
		{"P-256", nil, SignOptions{}, MethodECDSA256, "", 64},
		{"P-384", nil, SignOptions{}, MethodECDSA384, "", 96},
		{"P-521", nil, SignOptions{}, MethodECDSA521, "", 132},
		{"P-256", all, SignOptions{}, MethodDigitalSignature, "300a06082a8648ce3d040302", 0},
		{"P-384", all, SignOptions{}, MethodDigitalSignature, "300a06082a8648ce3d040303", 0},
		{"P-521", all, SignOptions{}, MethodDigitalSignature, "300a06082a8648ce3d040304", 0},
		{"P-384", []uint16{HashSHA256}, SignOptions{}, MethodDigitalSignature, "300a06082a8648ce3d040302", 0},
		{"P-256", []uint16{HashSHA384, HashSHA512}, SignOptions{}, MethodDigitalSignature, "300a06082a8648ce3d040304", 0},
		{"Ed25519", append(all, HashIdentity), SignOptions{}, MethodDigitalSignature, "300506032b6570", 0},
	}
	for _, tc := range tests {
		key := keys[tc.key]
		method, data, err := SignWithOptions(key, tc.peer, octets, rand.Reader, tc.opts)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.key, tc.peer, err)
		}
		if method != tc.wantMethod {
			t.Errorf("%s %v: method %d, want %d", tc.key, tc.peer, method, tc.wantMethod)
		}
		if tc.wantLen != 0 && len(data) != tc.wantLen {
			t.Errorf("%s %v: %d octets, want %d", tc.key, tc.peer, len(data), tc.wantLen)
		}
		if tc.wantAlgHex != "" {
			ai := unhex(t, tc.wantAlgHex)
			if int(data[0]) != len(ai) || !bytes.Equal(data[1:1+len(ai)], ai) {
				t.Errorf("%s %v: AlgorithmIdentifier %x, want %x", tc.key, tc.peer, data[:1+len(ai)], ai)
			}
		}
		if method == MethodDigitalSignature {
			alg, err := parseAlgorithmIdentifier(data[1 : 1+int(data[0])])
			if err != nil {
				t.Fatal(err)
			}
			if alg.scheme == schemeECDSA && (len(data) < 2+int(data[0]) || data[1+int(data[0])] != 0x30) {
				t.Errorf("%s: method 14 ECDSA signature not DER", tc.key)
			}
			if tc.opts.RSAPSS && (alg.scheme != schemeRSAPSS || alg.hash != crypto.SHA384 || alg.saltLen != 48) {
				t.Errorf("PSS: got %+v", alg)
			}
		}
		pub := key.Public()
		if err := Verify(pub, method, data, octets); err != nil {
			t.Errorf("%s %v: verify: %v", tc.key, tc.peer, err)
		}
		// Tamper: flip a bit in the octets, then in the signature's last octet.
		bad := bytes.Clone(octets)
		bad[3] ^= 0x10
		if err := Verify(pub, method, data, bad); !errors.Is(err, ErrVerifyFailed) {
			t.Errorf("%s %v: tampered octets: %v", tc.key, tc.peer, err)
		}
		badSig := bytes.Clone(data)
		badSig[len(badSig)-1] ^= 0x01
		if err := Verify(pub, method, badSig, octets); err == nil {
			t.Errorf("%s %v: tampered signature verified", tc.key, tc.peer)
		}
		// Another key of the same type must not verify.
		other := keys["RSA-2048"].Public()
		if tc.key == "RSA-2048" {
			o, _ := rsa.GenerateKey(rand.Reader, 1024)
			other = &o.PublicKey
		}
		if err := Verify(other, method, data, octets); err == nil {
			t.Errorf("%s %v: verified with a foreign key", tc.key, tc.peer)
		}
	}
}

// TestClassicIndependent verifies signatures made directly with crypto/rsa
// and crypto/ecdsa the way RFC 7296 §3.8 and RFC 4754 §7 describe them.
func TestClassicIndependent(t *testing.T) {
	keys := testKeys()
	rk := keys["RSA-2048"].(*rsa.PrivateKey)
	h1 := sha1.Sum(octets)
	sig, err := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA1, h1[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(&rk.PublicKey, MethodRSASig, sig, octets); err != nil {
		t.Fatalf("method 1: %v", err)
	}

	ek := keys["P-256"].(*ecdsa.PrivateKey)
	h := sha256.Sum256(octets)
	r, s, err := ecdsa.Sign(rand.Reader, ek, h[:])
	if err != nil {
		t.Fatal(err)
	}
	fixed := make([]byte, 64)
	r.FillBytes(fixed[:32])
	s.FillBytes(fixed[32:])
	if err := Verify(&ek.PublicKey, MethodECDSA256, fixed, octets); err != nil {
		t.Fatalf("method 9: %v", err)
	}
	// And the other direction: our r|s parses as the RFC 4754 layout.
	_, data, err := Sign(ek, nil, octets, nil)
	if err != nil {
		t.Fatal(err)
	}
	r2, s2 := new(big.Int).SetBytes(data[:32]), new(big.Int).SetBytes(data[32:])
	if !ecdsa.Verify(&ek.PublicKey, h[:], r2, s2) {
		t.Fatal("our method 9 signature is not r|s over SHA-256")
	}
}

func TestVerifyPolicy(t *testing.T) {
	keys := testKeys()
	rk := keys["RSA-2048"].(*rsa.PrivateKey)
	h1 := sha1.Sum(octets)
	sig, _ := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA1, h1[:])
	ai, _ := sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA1}.marshal()
	data := append(append([]byte{byte(len(ai))}, ai...), sig...)
	if err := Verify(&rk.PublicKey, MethodDigitalSignature, data, octets); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Fatalf("SHA-1 under method 14: %v", err)
	}
	if err := VerifyWithOptions(&rk.PublicKey, MethodDigitalSignature, data, octets, VerifyOptions{AllowSHA1: true}); err != nil {
		t.Fatalf("SHA-1 allowed: %v", err)
	}

	p256 := keys["P-256"].Public()
	p384 := keys["P-384"].Public()
	_, d9, _ := Sign(keys["P-256"], nil, octets, nil)
	_, d14, _ := Sign(keys["P-256"], SignatureHashes(), octets, nil)
	tests := []struct {
		name   string
		pub    crypto.PublicKey
		method uint8
		data   []byte
		want   string
	}{
		{"curve/method mismatch", p384, MethodECDSA256, d9, "does not match"},
		{"rsa key for ecdsa", &rk.PublicKey, MethodECDSA256, d9, "needs an ECDSA public key"},
		{"ecdsa key for method 1", p256, MethodRSASig, d9, "needs an RSA public key"},
		{"rsa key for ecdsa-with-SHA256", &rk.PublicKey, MethodDigitalSignature, d14, "needs an ECDSA public key"},
		{"nil key", nil, MethodDigitalSignature, d14, "needs an ECDSA public key"},
		{"typed nil key", (*rsa.PublicKey)(nil), MethodRSASig, d9, "needs an RSA public key"},
		{"short ECDSA", p256, MethodECDSA256, d9[:63], "verification failed"},
		{"psk", p256, MethodPSK, d9, "not a signature method"},
		{"unknown method", p256, 200, d9, "unsupported authentication method 200"},
		{"empty 14", p256, MethodDigitalSignature, nil, "empty AUTH data"},
		{"short 14", p256, MethodDigitalSignature, []byte{20, 0x30}, "too short"},
		{"no sig 14", p256, MethodDigitalSignature, d14[:1+int(d14[0])], "no signature"},
		{"unknown OID", p256, MethodDigitalSignature, append([]byte{6, 0x30, 4, 6, 2, 0x2a, 3}, 1, 2, 3), "auth: unsupported signature algorithm OID 1.2.3"},
		{"r|s under 14", p256, MethodDigitalSignature, append(bytes.Clone(d14[:1+int(d14[0])]), d9...), "verification failed"},
		{"bad ed25519 key", ed25519.PublicKey{1, 2}, MethodDigitalSignature, append([]byte{7, 0x30, 5, 6, 3, 0x2b, 0x65, 0x70}, 1), "needs an Ed25519"},
	}
	for _, tc := range tests {
		err := Verify(tc.pub, tc.method, tc.data, octets)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestSignErrors(t *testing.T) {
	if _, _, err := Sign(nil, nil, octets, nil); err == nil {
		t.Fatal("nil key accepted")
	}
	if _, _, err := Sign(testKeys()["Ed25519"], SignatureHashes(), octets, nil); err == nil || !strings.Contains(err.Error(), "RFC 8420") {
		t.Fatalf("Ed25519 without Identity hash: %v", err)
	}
	k224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if _, _, err := Sign(k224, nil, octets, nil); err == nil || !strings.Contains(err.Error(), "P-224") {
		t.Fatalf("P-224: %v", err)
	}
}
