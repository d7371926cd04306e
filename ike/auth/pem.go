package auth

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// LoadSigner parses a private key in PEM: "RSA PRIVATE KEY" (PKCS#1),
// "PRIVATE KEY" (PKCS#8: RSA, ECDSA or Ed25519) or "EC PRIVATE KEY"
// (SEC 1). Other blocks such as "EC PARAMETERS" are skipped. Encrypted keys
// are refused. Input without any PEM block is tried as DER.
func LoadSigner(keyPEM []byte) (crypto.Signer, error) {
	rest := keyPEM
	sawPEM := false
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		sawPEM = true
		switch b.Type {
		case "RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY":
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("auth: encrypted private keys are not supported")
		default:
			continue
		}
		if _, enc := b.Headers["DEK-Info"]; enc {
			return nil, errors.New("auth: encrypted private keys are not supported")
		}
		return parseKeyDER(b.Type, b.Bytes)
	}
	if sawPEM {
		return nil, errors.New("auth: no private key block in PEM data")
	}
	if len(keyPEM) == 0 {
		return nil, errors.New("auth: empty private key data")
	}
	return parseKeyDER("", keyPEM)
}

// parseKeyDER parses a key of the given PEM type, or tries all formats when
// typ is empty.
func parseKeyDER(typ string, der []byte) (crypto.Signer, error) {
	var k any
	var err error
	switch typ {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(der)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(der)
	default:
		if k, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			if k, err = x509.ParsePKCS1PrivateKey(der); err != nil {
				k, err = x509.ParseECPrivateKey(der)
			}
		}
	}
	if err != nil {
		if typ == "" {
			return nil, errors.New("auth: private key is neither PEM nor PKCS#8/PKCS#1/SEC 1 DER")
		}
		return nil, fmt.Errorf("auth: private key (%s): %w", typ, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("auth: private key type %T cannot sign", k)
	}
	return s, nil
}

// LoadCertificates parses every "CERTIFICATE" block of pemData, in order
// (other blocks are skipped). Input without any PEM block is tried as one
// or more concatenated DER certificates. No certificate is an error.
func LoadCertificates(pemData []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := pemData
	sawPEM := false
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		sawPEM = true
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: certificate %d: %w", len(out), err)
		}
		out = append(out, c)
	}
	if !sawPEM && len(pemData) > 0 {
		certs, err := x509.ParseCertificates(pemData)
		if err != nil {
			return nil, fmt.Errorf("auth: certificate data is neither PEM nor DER: %w", err)
		}
		out = certs
	}
	if len(out) == 0 {
		return nil, errors.New("auth: no certificate found")
	}
	return out, nil
}

// LoadCertPool builds a pool of trusted CAs from PEM (or DER) data, for
// VerifyPeerCert.
func LoadCertPool(pemData []byte) (*x509.CertPool, error) {
	certs, err := LoadCertificates(pemData)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p, nil
}
