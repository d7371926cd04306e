package profileimport

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/pkcs12"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// creds is the client side of a converted profile.
type creds struct {
	auth    sdk.Auth
	localID string
	// certPEM (leaf first) and keyPEM come from local.p12; cas are the
	// CA certificates it also held.
	certPEM, keyPEM []byte
	cas             []*x509.Certificate
}

// authFor maps the .sswan type onto qcdvpn's authentication methods: the
// one place to extend when qcdvpn supports more of them.
func authFor(s *sswan, opts Options) (*creds, error) {
	c := &creds{}
	switch s.typ {
	case "ikev2-cert":
		// Certificate authentication: a client certificate and key,
		// which the .sswan may carry in local.p12.
		if err := c.fromP12(s, opts, "pubkey"); err != nil {
			return nil, err
		}
		c.auth = sdk.Auth{Method: sdk.AuthPubkey}
		if s.eapID != "" {
			s.warn("local.eap_id: ignored: type ikev2-cert uses no EAP")
		}
	case "ikev2-eap":
		// Username and password over EAP; the password is never in the
		// file (it is not encrypted), so the user gives it.
		if s.eapID == "" {
			return nil, errors.New("sswan: local.eap_id: required for type ikev2-eap (the username)")
		}
		if opts.Password == "" {
			return nil, errors.New("sswan: type ikev2-eap: a .sswan holds no password; give it with --password-file FILE")
		}
		if s.p12 != nil {
			s.warn("local.p12: ignored: type ikev2-eap uses no client certificate")
		}
		c.auth = sdk.Auth{Method: sdk.AuthEAPMSCHAPv2, Username: s.eapID, Password: opts.Password}
		c.localID = s.localID
		if c.localID == "" {
			c.localID = s.eapID
		}
	case "ikev2-eap-tls":
		if err := c.fromP12(s, opts, "eap-tls"); err != nil {
			return nil, err
		}
		c.auth = sdk.Auth{Method: sdk.AuthEAPTLS, Username: s.eapID}
	case "ikev2-cert-eap":
		return nil, errors.New("sswan: type \"ikev2-cert-eap\" (certificate, then EAP: RFC 4739 multiple authentication) is not supported by this version of qcdvpn")
	case "ikev2-byod-eap":
		return nil, errors.New("sswan: type \"ikev2-byod-eap\" (EAP-TNC) is not supported by this version of qcdvpn")
	default:
		return nil, fmt.Errorf("sswan: type: unknown type %s (want ikev2-cert, ikev2-eap, ikev2-eap-tls, ikev2-cert-eap or ikev2-byod-eap)", short(s.typ))
	}
	return c, nil
}

// fromP12 takes the client certificate and key out of local.p12; the
// identity is local.id, else the certificate's first e-mail or DNS
// name, else its subject DN.
func (c *creds) fromP12(s *sswan, opts Options, method string) error {
	if s.p12 == nil {
		return fmt.Errorf("sswan: local.p12: required for type %s: the client certificate and key (qcdvpn has no certificate store to pick one from)", s.typ)
	}
	blocks, err := pkcs12.ToPEM(s.p12, opts.P12Password)
	if errors.Is(err, pkcs12.ErrIncorrectPassword) && opts.P12Password != "" {
		if b, e := pkcs12.ToPEM(s.p12, ""); e == nil {
			blocks, err = b, nil // a container without password
		}
	}
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword) && opts.P12Password == "":
		return errors.New("sswan: local.p12: the PKCS#12 container is encrypted: give its password with --p12-password-file FILE")
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return errors.New("sswan: local.p12: wrong password")
	case err != nil:
		var ni pkcs12.NotImplementedError
		if errors.As(err, &ni) {
			return fmt.Errorf("sswan: local.p12: %s; re-export it with legacy encryption (openssl pkcs12 -export -legacy)", strings.TrimPrefix(err.Error(), "pkcs12: "))
		}
		return fmt.Errorf("sswan: local.p12: not a readable PKCS#12 container (%s)", strings.TrimPrefix(err.Error(), "pkcs12: "))
	}
	var key crypto.Signer
	var certs []*x509.Certificate
	for _, b := range blocks {
		switch b.Type {
		case "PRIVATE KEY": // PKCS #1 or SEC 1, whatever ToPEM says
			if key != nil {
				return errors.New("sswan: local.p12: holds more than one private key")
			}
			k, err := parseKey(b.Bytes)
			if err != nil {
				return fmt.Errorf("sswan: local.p12: %v", err)
			}
			key = k
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return errors.New("sswan: local.p12: holds an invalid certificate")
			}
			certs = append(certs, cert)
		}
	}
	if key == nil {
		return errors.New("sswan: local.p12: holds no private key")
	}
	var leaf *x509.Certificate
	var rest []*x509.Certificate
	for _, cert := range certs {
		if leaf == nil && samePublicKey(cert.PublicKey, key.Public()) {
			leaf = cert
			continue
		}
		rest = append(rest, cert)
	}
	if leaf == nil {
		return errors.New("sswan: local.p12: holds no certificate for its private key")
	}
	c.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	for _, cert := range rest {
		if cert.IsCA && bytes.Equal(cert.RawSubject, cert.RawIssuer) {
			c.cas = append(c.cas, cert) // a root: trust anchor, not chain
			continue
		}
		c.certPEM = append(c.certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("sswan: local.p12: %v", err)
	}
	c.keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	c.localID = s.localID
	if c.localID == "" {
		id, err := identityOf(leaf)
		if err != nil {
			return fmt.Errorf("sswan: local.id: required: %v", err)
		}
		c.localID = id
		s.warn("local.id: missing; using the certificate's identity %s", id)
	}
	return nil
}

func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	return nil, errors.New("holds a private key of an unsupported kind")
}

func samePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// identityOf picks the IKE identity a certificate proves: its first
// e-mail address, then DNS name, then its subject DN.
func identityOf(c *x509.Certificate) (string, error) {
	if len(c.EmailAddresses) > 0 {
		return c.EmailAddresses[0], nil
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0], nil
	}
	// The string form may encode with other ASN.1 string types than the
	// certificate (PrintableString for UTF8String); peers compare DNs by
	// attribute and value, as the string form does.
	dn := auth.Identity{Type: auth.IDDN, Data: c.RawSubject}.String()
	id, err := auth.ParseIdentityStrict(dn)
	if err != nil || id.Type != auth.IDDN || id.String() != dn {
		return "", errors.New("the certificate's subject cannot be written as a DN string")
	}
	return dn, nil
}

func subjectOf(c *x509.Certificate) string {
	return auth.Identity{Type: auth.IDDN, Data: c.RawSubject}.String()
}

// decodeBase64 reads base64 as Android's decoder does: standard
// alphabet, line breaks and spaces ignored, padding optional.
func decodeBase64(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	b, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(clean, "="))
	}
	if err != nil {
		return nil, errors.New("not valid base64")
	}
	return b, nil
}
