package auth

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"strings"
	"testing"
)

// unhex decodes hex as printed in RFCs (blanks allowed).
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAppendixAEncodings checks the AlgorithmIdentifiers we emit against
// RFC 7427 Appendix A, typed in from /work/shared/rfc/rfc7427.txt.
func TestAppendixAEncodings(t *testing.T) {
	tests := []struct {
		section string
		alg     sigAlg
		hex     string
	}{
		{"A.1.1 sha1WithRSAEncryption", sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA1}, "300d 0609 2a86 4886 f70d 0101 0505 00"},
		{"A.1.2 sha256WithRSAEncryption", sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA256}, "300d 0609 2a86 4886 f70d 0101 0b05 00"},
		{"A.1.3 sha384WithRSAEncryption", sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA384}, "300d 0609 2a86 4886 f70d 0101 0c05 00"},
		{"A.1.4 sha512WithRSAEncryption", sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA512}, "300d 0609 2a86 4886 f70d 0101 0d05 00"},
		{"A.3.1 ecdsa-with-sha1", sigAlg{scheme: schemeECDSA, hash: crypto.SHA1}, "3009 0607 2a86 48ce 3d04 01"},
		{"A.3.2 ecdsa-with-sha256", sigAlg{scheme: schemeECDSA, hash: crypto.SHA256}, "300a 0608 2a86 48ce 3d04 0302"},
		{"A.3.3 ecdsa-with-sha384", sigAlg{scheme: schemeECDSA, hash: crypto.SHA384}, "300a 0608 2a86 48ce 3d04 0303"},
		{"A.3.4 ecdsa-with-sha512", sigAlg{scheme: schemeECDSA, hash: crypto.SHA512}, "300a 0608 2a86 48ce 3d04 0304"},
		// RFC 8410 §3 / RFC 8420: id-Ed25519 without parameters.
		{"RFC 8410 Ed25519", sigAlg{scheme: schemeEd25519}, "3005 0603 2b65 70"},
	}
	for _, tc := range tests {
		want := unhex(t, tc.hex)
		got, err := tc.alg.marshal()
		if err != nil {
			t.Fatalf("%s: %v", tc.section, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("RFC 7427 %s: got %x, want %x", tc.section, got, want)
		}
		back, err := parseAlgorithmIdentifier(want)
		if err != nil || back != tc.alg {
			t.Errorf("RFC 7427 %s: parse = %+v, %v", tc.section, back, err)
		}
	}
}

// TestAppendixAPSS parses the RSASSA-PSS examples of RFC 7427 §A.4 and
// checks our own SHA-256 encoding against §A.4.3 (ours omits the DEFAULT
// trailerField, as DER requires; otherwise identical).
func TestAppendixAPSS(t *testing.T) {
	a41 := unhex(t, "300d 0609 2a86 4886 f70d 0101 0a30 00")
	a42 := unhex(t, `303e 0609 2a86 4886 f70d 0101 0a30 31a0
	0b30 0906 052b 0e03 021a 0500 a118 3016
	0609 2a86 4886 f70d 0101 0830 0906 052b
	0e03 021a 0500 a203 0201 14a3 0302 0101`)
	a43 := unhex(t, `3046 0609 2a86 4886 f70d 0101 0a30 39a0
	0f30 0d06 0960 8648 0165 0304 0201 0500
	a11c 301a 0609 2a86 4886 f70d 0101 0830
	0d06 0960 8648 0165 0304 0201 0500 a203
	0201 20a3 0302 0101`)
	sha1PSS := sigAlg{scheme: schemeRSAPSS, hash: crypto.SHA1, saltLen: 20}
	for name, der := range map[string][]byte{"A.4.1": a41, "A.4.2": a42} {
		got, err := parseAlgorithmIdentifier(der)
		if err != nil || got != sha1PSS {
			t.Errorf("%s: %+v, %v", name, got, err)
		}
	}
	want := sigAlg{scheme: schemeRSAPSS, hash: crypto.SHA256, saltLen: 32}
	if got, err := parseAlgorithmIdentifier(a43); err != nil || got != want {
		t.Fatalf("A.4.3: %+v, %v", got, err)
	}
	ours, err := want.marshal()
	if err != nil {
		t.Fatal(err)
	}
	// A.4.3 without "a303020101", with both SEQUENCE lengths reduced by 5.
	exp := bytes.Clone(a43[:len(a43)-5])
	exp[1] -= 5
	exp[14] -= 5
	if !bytes.Equal(ours, exp) {
		t.Fatalf("PSS SHA-256 = %x, want %x", ours, exp)
	}
}

func TestParseAlgorithmIdentifierErrors(t *testing.T) {
	tests := []struct {
		name, hex, want string
	}{
		{"unknown OID", "3004 0602 2a03", "auth: unsupported signature algorithm OID 1.2.3"},
		{"md5WithRSA", "300d 0609 2a86 4886 f70d 0101 0405 00", "auth: unsupported signature algorithm OID 1.2.840.113549.1.1.4"},
		{"trailing", "300a 0608 2a86 48ce 3d04 0302 00", "trailing"},
		{"garbage", "ff", "malformed"},
		{"ecdsa with int params", "300d 0608 2a86 48ce 3d04 0302 0201 01", "unexpected parameters"},
		{"PSS no params", "300b 0609 2a86 4886 f70d 0101 0a", "without parameters"},
		{"PSS trailer 2", "3012 0609 2a86 4886 f70d 0101 0a30 05a3 0302 0102", "trailer"},
		{"PSS mgf hash differs", "3038 0609 2a864886f70d01010a 302b a00f 300d 0609 608648016503040201 0500 a118 3016 0609 2a864886f70d010108 3009 0605 2b0e03021a 0500", "MGF1 hash"},
	}
	for _, tc := range tests {
		_, err := parseAlgorithmIdentifier(unhex(t, tc.hex))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}
