package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func TestPKIIssue(t *testing.T) {
	for _, kt := range []string{"ecdsa", "rsa"} {
		t.Run(kt, func(t *testing.T) {
			p := NewPKI(t, kt)
			certPEM, keyPEM := p.Issue(t, "gw.example", "gw.example", "10.1.2.3", "user@example.org")
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				t.Fatalf("key pair: %v", err)
			}
			cert := parsePEM(t, certPEM)
			if len(cert.DNSNames) != 1 || len(cert.IPAddresses) != 1 || len(cert.EmailAddresses) != 1 {
				t.Errorf("SANs: %v %v %v", cert.DNSNames, cert.IPAddresses, cert.EmailAddresses)
			}
			roots := x509.NewCertPool()
			roots.AddCert(p.CACert)
			for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "gw.example",
					KeyUsages: []x509.ExtKeyUsage{eku}}); err != nil {
					t.Errorf("verify %v: %v", eku, err)
				}
			}
		})
	}
}

func TestPKIIssueChain(t *testing.T) {
	p := NewPKI(t, "ecdsa")
	c := p.IssueChain(t, 2, "client.example")
	if len(c.IntermediatesPEM) != 2 {
		t.Fatalf("%d intermediates", len(c.IntermediatesPEM))
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(p.CACert)
	for _, in := range c.IntermediatesPEM {
		inter.AddCert(parsePEM(t, in))
	}
	leaf := parsePEM(t, c.CertPEM)
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "client.example"})
	if err != nil || len(chains[0]) != 4 {
		t.Fatalf("verify: %v %v", chains, err)
	}
	// The leaf's issuer comes first.
	if got := parsePEM(t, c.IntermediatesPEM[0]); leaf.CheckSignatureFrom(got) != nil {
		t.Error("IntermediatesPEM[0] did not issue the leaf")
	}
	files := p.SwanFiles("client", c)
	for _, name := range []string{"x509ca/ca.pem", "x509/client.pem", "private/client.key",
		"x509ca/client-inter1.pem", "x509ca/client-inter2.pem"} {
		if len(files[name]) == 0 {
			t.Errorf("SwanFiles: %s missing", name)
		}
	}
}

func parsePEM(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
