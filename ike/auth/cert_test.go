package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

var (
	t0       = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	validNow = t0.Add(24 * time.Hour)
)

type testPKI struct {
	ca, inter, leaf          *x509.Certificate
	caKey, interKey, leafKey crypto.Signer
}

func mkCert(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCA(t *testing.T, cn string) (*x509.Certificate, crypto.Signer) {
	k := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"CH"}, Organization: []string{"qcdvpn"}, CommonName: cn},
		NotBefore:             t0,
		NotAfter:              t0.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	return mkCert(t, tmpl, tmpl, &k.PublicKey, k), k
}

// newPKI builds root CA -> intermediate -> gateway leaf. The leaf has no
// extended key usage except clientAuth, to prove any EKU is accepted.
func newPKI(t *testing.T) testPKI {
	t.Helper()
	var p testPKI
	p.ca, p.caKey = newCA(t, "qcdvpn Root CA")
	ik := newKey(t)
	p.interKey = ik
	p.inter = mkCert(t, &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{Country: []string{"CH"}, Organization: []string{"qcdvpn"}, CommonName: "qcdvpn Intermediate"},
		NotBefore:             t0,
		NotAfter:              t0.AddDate(5, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, p.ca, &ik.PublicKey, p.caKey)
	lk := newKey(t)
	p.leafKey = lk
	p.leaf = mkCert(t, &x509.Certificate{
		SerialNumber:   big.NewInt(3),
		Subject:        pkix.Name{Country: []string{"CH"}, Organization: []string{"qcdvpn"}, CommonName: "gw.example"},
		NotBefore:      t0,
		NotAfter:       t0.AddDate(1, 0, 0),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:       []string{"gw.example", "vpn.example"},
		EmailAddresses: []string{"ops@example.org"},
		IPAddresses:    []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")},
		SubjectKeyId:   []byte{1, 2, 3, 4},
	}, p.inter, &lk.PublicKey, p.interKey)
	return p
}

func (p testPKI) roots() *x509.CertPool {
	r := x509.NewCertPool()
	r.AddCert(p.ca)
	return r
}

func (p testPKI) chain() [][]byte { return [][]byte{p.leaf.Raw, p.inter.Raw} }

func TestVerifyPeerCert(t *testing.T) {
	p := newPKI(t)
	dn := "C=CH, O=qcdvpn, CN=gw.example"
	good := []struct{ got, want string }{
		{"gw.example", "gw.example"},
		{"vpn.example", "@VPN.example"},
		{"ops@example.org", "ops@example.org"},
		{"192.0.2.1", "192.0.2.1"},
		{"2001:db8::1", "2001:db8::1"},
		{dn, dn},
		{dn, "c=ch, o=QCDVPN, cn=GW.example"},
		{"@#01020304", "@#01020304"},
		{"gw.example", "%any"},
	}
	for _, tc := range good {
		pub, err := VerifyPeerCert(p.chain(), p.roots(), ParseIdentity(tc.got), ParseIdentity(tc.want), validNow)
		if err != nil {
			t.Errorf("got %q want %q: %v", tc.got, tc.want, err)
			continue
		}
		if !p.leaf.PublicKey.(*ecdsa.PublicKey).Equal(pub) {
			t.Errorf("returned key is not the leaf's")
		}
	}

	// The returned key verifies what the leaf key signs.
	pub, err := VerifyPeerCert(p.chain(), p.roots(), ParseIdentity(dn), ParseIdentity(dn), validNow)
	if err != nil {
		t.Fatal(err)
	}
	m, data, err := Sign(p.leafKey, SignatureHashes(), octets, nil)
	if err != nil || Verify(pub, m, data, octets) != nil {
		t.Fatalf("sign/verify with cert key: %v", err)
	}

	// A leaf signed by an impostor key under the intermediate's name.
	fakeKey := newKey(t)
	fakeInter := *p.inter
	fakeInter.PublicKey = &fakeKey.PublicKey
	forged := mkCert(t, p.leaf, &fakeInter, p.leaf.PublicKey, fakeKey)

	other, _ := newCA(t, "Other CA")
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other)
	fqdn := ParseIdentity("gw.example")

	bad := []struct {
		name        string
		chain       [][]byte
		roots       *x509.CertPool
		got, want   Identity
		now         time.Time
		errContains string
		is          error
	}{
		{"untrusted CA", p.chain(), otherRoots, fqdn, fqdn, validNow, "not trusted", nil},
		{"missing intermediate", [][]byte{p.leaf.Raw}, p.roots(), fqdn, fqdn, validNow, "not trusted", nil},
		{"expired", p.chain(), p.roots(), fqdn, fqdn, t0.AddDate(2, 0, 0), "expired", nil},
		{"not yet valid", p.chain(), p.roots(), fqdn, fqdn, t0.Add(-time.Hour), "not trusted", nil},
		{"FQDN not in SANs", p.chain(), p.roots(), ParseIdentity("evil.example"), ParseIdentity("evil.example"), validNow, "evil.example not in certificate", ErrIdentityNotInCert},
		{"CN is not a SAN", p.chain(), p.roots(), ParseIdentity("@gw"), ParseIdentity("@gw"), validNow, "", ErrIdentityNotInCert},
		{"IP not in SANs", p.chain(), p.roots(), ParseIdentity("192.0.2.99"), ParseIdentity("192.0.2.99"), validNow, "", ErrIdentityNotInCert},
		{"email not in SANs", p.chain(), p.roots(), ParseIdentity("x@example.org"), ParseIdentity("x@example.org"), validNow, "", ErrIdentityNotInCert},
		{"DN differs", p.chain(), p.roots(), ParseIdentity("C=CH, O=qcdvpn, CN=other"), ParseIdentity("C=CH, O=qcdvpn, CN=other"), validNow, "", ErrIdentityNotInCert},
		{"mismatch", p.chain(), p.roots(), ParseIdentity("vpn.example"), fqdn, validNow, "identity mismatch: got vpn.example, want gw.example", ErrIdentityMismatch},
		{"no chain", nil, p.roots(), fqdn, fqdn, validNow, "no certificate", nil},
		{"nil roots", p.chain(), nil, fqdn, fqdn, validNow, "no trusted CA", nil},
		{"garbage", [][]byte{{0x30, 0x03, 1, 2, 3}}, p.roots(), fqdn, fqdn, validNow, "peer certificate 0", nil},
		{"leaf signed by wrong key", [][]byte{forged.Raw, p.inter.Raw}, p.roots(), fqdn, fqdn, validNow, "not trusted", nil},
	}
	for _, tc := range bad {
		_, err := VerifyPeerCert(tc.chain, tc.roots, tc.got, tc.want, tc.now)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if tc.errContains != "" && !strings.Contains(err.Error(), tc.errContains) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.errContains)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: err = %v, want errors.Is %v", tc.name, err, tc.is)
		}
	}
}

func TestSubjectIdentity(t *testing.T) {
	p := newPKI(t)
	id := SubjectIdentity(p.leaf)
	if id.String() != "C=CH, O=qcdvpn, CN=gw.example" {
		t.Fatalf("subject = %q", id)
	}
	if err := CertMatchesIdentity(p.leaf, id); err != nil {
		t.Fatal(err)
	}
	if err := CertMatchesIdentity(p.leaf, Identity{}); err == nil {
		t.Fatal("IDAny matched")
	}
	if err := CertMatchesIdentity(p.leaf, Identity{Type: IDGN, Data: []byte{1}}); err == nil {
		t.Fatal("GN matched")
	}
}

func TestLoadSigner(t *testing.T) {
	ec := newKey(t)
	rk := testKeys()["RSA-2048"].(*rsa.PrivateKey)
	ed := testKeys()["Ed25519"]
	sec1, _ := x509.MarshalECPrivateKey(ec)
	p8ec, _ := x509.MarshalPKCS8PrivateKey(ec)
	p8ed, _ := x509.MarshalPKCS8PrivateKey(ed)
	pemOf := func(typ string, der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	}
	ecParams := pemOf("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	good := []struct {
		name string
		in   []byte
		pub  crypto.PublicKey
	}{
		{"PKCS#1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), rk.Public()},
		{"SEC1 with params", append(ecParams, pemOf("EC PRIVATE KEY", sec1)...), ec.Public()},
		{"PKCS#8 EC", pemOf("PRIVATE KEY", p8ec), ec.Public()},
		{"PKCS#8 Ed25519", pemOf("PRIVATE KEY", p8ed), ed.Public()},
		{"DER PKCS#8", p8ec, ec.Public()},
		{"DER SEC1", sec1, ec.Public()},
	}
	for _, tc := range good {
		s, err := LoadSigner(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !s.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.pub) {
			t.Errorf("%s: wrong key", tc.name)
		}
	}
	enc := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})
	for name, in := range map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("hello"),
		"cert only": pemOf("CERTIFICATE", []byte{1}),
		"encrypted": enc,
		"p8 enc":    pemOf("ENCRYPTED PRIVATE KEY", []byte{1}),
		"bad body":  pemOf("EC PRIVATE KEY", []byte{1, 2}),
	} {
		if _, err := LoadSigner(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoadCertificates(t *testing.T) {
	p := newPKI(t)
	var buf bytes.Buffer
	pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: p.leaf.Raw})
	pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})
	pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: p.inter.Raw})
	certs, err := LoadCertificates(buf.Bytes())
	if err != nil || len(certs) != 2 || !certs[0].Equal(p.leaf) || !certs[1].Equal(p.inter) {
		t.Fatalf("PEM: %v %v", certs, err)
	}
	certs, err = LoadCertificates(append(bytes.Clone(p.leaf.Raw), p.ca.Raw...))
	if err != nil || len(certs) != 2 || !certs[1].Equal(p.ca) {
		t.Fatalf("DER: %v %v", certs, err)
	}
	pool, err := LoadCertPool(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.Raw}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyPeerCert(p.chain(), pool, ParseIdentity("gw.example"), Identity{}, validNow); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{
		"empty":   nil,
		"garbage": []byte("junk"),
		"no cert": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}),
		"bad":     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}),
	} {
		if _, err := LoadCertificates(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
