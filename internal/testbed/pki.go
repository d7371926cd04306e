package testbed

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// PKI is a throw-away certificate authority for tests. Its files (ca.pem,
// ca.key) are written to Dir, a test temporary directory.
type PKI struct {
	// Dir holds ca.pem and ca.key.
	Dir string
	// KeyType is "ecdsa" (P-256) or "rsa" (2048 bits), used for every key.
	KeyType string
	// CACert is the self-signed root certificate.
	CACert *x509.Certificate
	// CAPEM is CACert in PEM form.
	CAPEM []byte
	// CAKey is the root's private key.
	CAKey crypto.Signer
}

// Chain is a leaf certificate with the intermediates that lead to the PKI's
// root, as made by IssueChain.
type Chain struct {
	// CertPEM is the leaf certificate.
	CertPEM []byte
	// KeyPEM is the leaf's private key (PKCS#8).
	KeyPEM []byte
	// IntermediatesPEM are the intermediate CA certificates, the leaf's
	// issuer first.
	IntermediatesPEM [][]byte
}

// NewPKI creates a root CA with keys of keyType ("ecdsa" for P-256 or "rsa"
// for 2048-bit RSA) and writes it to a temporary directory.
func NewPKI(t testing.TB, keyType string) *PKI {
	t.Helper()
	key, err := newKey(keyType)
	if err != nil {
		t.Fatalf("testbed: NewPKI: %v", err)
	}
	tmpl := caTemplate("qcdvpn test root CA")
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("testbed: NewPKI: create root: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testbed: NewPKI: parse root: %v", err)
	}
	p := &PKI{Dir: t.TempDir(), KeyType: keyType, CACert: cert, CAKey: key,
		CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	keyPEM, err := keyToPEM(key)
	if err != nil {
		t.Fatalf("testbed: NewPKI: %v", err)
	}
	for name, data := range map[string][]byte{"ca.pem": p.CAPEM, "ca.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(p.Dir, name), data, 0o600); err != nil {
			t.Fatalf("testbed: NewPKI: %v", err)
		}
	}
	return p
}

// Issue signs a leaf certificate for cn with the root. Each SAN that parses
// as an IP address becomes an IP SAN, one containing "@" an e-mail SAN, and
// anything else a DNS SAN; with no sans, cn itself is used as the one SAN.
// The certificate allows both serverAuth and clientAuth. Keys are PKCS#8
// PEM, which strongSwan loads from swanctl's private/ directory.
func (p *PKI) Issue(t testing.TB, cn string, sans ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	c := p.IssueChain(t, 0, cn, sans...)
	return c.CertPEM, c.KeyPEM
}

// IssueChain is Issue with depth intermediate CAs between the root and the
// leaf (depth 0 means none), for tests that need long chains, e.g. to force
// IKE fragmentation.
func (p *PKI) IssueChain(t testing.TB, depth int, cn string, sans ...string) Chain {
	t.Helper()
	if depth < 0 || depth > 8 {
		t.Fatalf("testbed: IssueChain: depth %d out of range 0..8", depth)
	}
	issuer, issuerKey := p.CACert, p.CAKey
	var inter [][]byte
	for i := 0; i < depth; i++ {
		key, err := newKey(p.KeyType)
		if err != nil {
			t.Fatalf("testbed: IssueChain: %v", err)
		}
		tmpl := caTemplate(fmt.Sprintf("qcdvpn test intermediate %d for %s", i+1, cn))
		der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
		if err != nil {
			t.Fatalf("testbed: IssueChain: create intermediate: %v", err)
		}
		if issuer, err = x509.ParseCertificate(der); err != nil {
			t.Fatalf("testbed: IssueChain: parse intermediate: %v", err)
		}
		issuerKey = key
		// Leaf's issuer first: prepend.
		inter = append([][]byte{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, inter...)
	}
	key, err := newKey(p.KeyType)
	if err != nil {
		t.Fatalf("testbed: Issue: %v", err)
	}
	tmpl, err := leafTemplate(cn, sans)
	if err != nil {
		t.Fatalf("testbed: Issue: %v", err)
	}
	if p.KeyType == "rsa" {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		t.Fatalf("testbed: Issue: create certificate for %q: %v", cn, err)
	}
	keyPEM, err := keyToPEM(key)
	if err != nil {
		t.Fatalf("testbed: Issue: %v", err)
	}
	return Chain{
		CertPEM:          pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:           keyPEM,
		IntermediatesPEM: inter,
	}
}

// SwanFiles lays out a certificate for strongSwan: the root in
// x509ca/ca.pem, intermediates in x509ca/NAME-interN.pem, the certificate in
// x509/NAME.pem and the key in private/NAME.key. Use it as (part of)
// SwanConfig.Files and refer to the certificate as `certs = NAME.pem`.
func (p *PKI) SwanFiles(name string, c Chain) map[string][]byte {
	files := map[string][]byte{
		"x509ca/ca.pem":            p.CAPEM,
		"x509/" + name + ".pem":    c.CertPEM,
		"private/" + name + ".key": c.KeyPEM,
	}
	for i, in := range c.IntermediatesPEM {
		files[fmt.Sprintf("x509ca/%s-inter%d.pem", name, i+1)] = in
	}
	return files
}

// newKey makes a key of the PKI's type.
func newKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "ecdsa":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("key type %q: want \"ecdsa\" or \"rsa\"", keyType)
	}
}

// keyToPEM encodes a private key as PKCS#8 PEM.
func keyToPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// serial returns a random positive 127-bit serial number.
func serial() *big.Int {
	b := randomBytes(16)
	b[0] &= 0x7f
	b[0] |= 0x01 // never zero
	return new(big.Int).SetBytes(b)
}

// caTemplate is a CA certificate template valid around now.
func caTemplate(cn string) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"qcdvpn tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

// leafTemplate is an end-entity template for cn and its SANs.
func leafTemplate(cn string, sans []string) (*x509.Certificate, error) {
	if cn == "" {
		return nil, fmt.Errorf("empty common name")
	}
	if len(sans) == 0 {
		sans = []string{cn}
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"qcdvpn tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, san := range sans {
		switch ip, err := netip.ParseAddr(san); {
		case err == nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
		case strings.Contains(san, "@"):
			tmpl.EmailAddresses = append(tmpl.EmailAddresses, san)
		case san == "":
			return nil, fmt.Errorf("empty subjectAltName for %q", cn)
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, san)
		}
	}
	return tmpl, nil
}
