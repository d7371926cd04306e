package auth

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// ErrIdentityMismatch is wrapped when the peer's ID payload names another
// identity than the one configured.
var ErrIdentityMismatch = errors.New("auth: identity mismatch")

// ErrIdentityNotInCert is wrapped when an identity is not bound to the
// end-entity certificate.
var ErrIdentityNotInCert = errors.New("auth: identity not confirmed by certificate")

// VerifyPeerCert checks the peer's certificate chain and binds identities
// to it, returning the end-entity public key for Verify.
//
// chain holds DER certificates, end-entity first, followed by any
// intermediates (in any order; unneeded ones are ignored). The chain must
// lead to roots (which must not be nil: system roots are never used
// implicitly) and be valid at now (time.Now when zero). Any extended key
// usage is accepted, since IPsec certificates often carry neither
// serverAuth nor clientAuth.
//
// idGot is the identity from the peer's IDi/IDr payload and must be bound
// to the certificate (see CertMatchesIdentity). idWant is the configured
// peer identity; unless it is IDAny, idGot must Equal it, else the error
// wraps ErrIdentityMismatch ("identity mismatch: got X, want Y").
func VerifyPeerCert(chain [][]byte, roots *x509.CertPool, idGot, idWant Identity, now time.Time) (crypto.PublicKey, error) {
	if len(chain) == 0 {
		return nil, errors.New("auth: peer sent no certificate")
	}
	if roots == nil {
		return nil, errors.New("auth: no trusted CA certificates configured")
	}
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("auth: peer certificate %d: %w", i, err)
		}
		certs[i] = c
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("auth: peer certificate %q not trusted: %w", leaf.Subject.String(), err)
	}
	if !idWant.IsAny() && !idGot.Equal(idWant) {
		return nil, fmt.Errorf("%w: got %s, want %s", ErrIdentityMismatch, idGot, idWant)
	}
	if err := CertMatchesIdentity(leaf, idGot); err != nil {
		return nil, err
	}
	return leaf.PublicKey, nil
}

// CertMatchesIdentity checks that id is bound to cert: an FQDN must be one
// of its DNS SANs, an RFC822 address one of its e-mail SANs, an IP address
// one of its IP SANs (all exact, case-insensitive for names, no wildcards),
// a DN must equal its subject, a KEY_ID its subject key identifier.
// Errors wrap ErrIdentityNotInCert.
func CertMatchesIdentity(cert *x509.Certificate, id Identity) error {
	if cert == nil {
		return errors.New("auth: no certificate")
	}
	ok := false
	switch id.Type {
	case IDFQDN:
		name := strings.TrimSuffix(string(id.Data), ".")
		for _, n := range cert.DNSNames {
			if strings.EqualFold(strings.TrimSuffix(n, "."), name) {
				ok = true
			}
		}
	case IDRFC822:
		for _, e := range cert.EmailAddresses {
			if strings.EqualFold(e, string(id.Data)) {
				ok = true
			}
		}
	case IDIPv4, IDIPv6:
		if len(id.Data) == 4 || len(id.Data) == 16 {
			for _, a := range cert.IPAddresses {
				if a.Equal(net.IP(id.Data)) {
					ok = true
				}
			}
		}
	case IDDN:
		ok = id.Equal(Identity{Type: IDDN, Data: cert.RawSubject})
	case IDKeyID:
		ok = len(cert.SubjectKeyId) > 0 && bytes.Equal(cert.SubjectKeyId, id.Data)
	case IDAny:
		return fmt.Errorf("%w: peer sent no identity", ErrIdentityNotInCert)
	default:
		return fmt.Errorf("%w: ID type %d cannot be checked against a certificate", ErrIdentityNotInCert, id.Type)
	}
	if !ok {
		return fmt.Errorf("%w: %s not in certificate %q", ErrIdentityNotInCert, id, SubjectIdentity(cert))
	}
	return nil
}

// SubjectIdentity returns the subject DN of cert as an identity, the usual
// IDi/IDr when a certificate is used without a configured identity.
func SubjectIdentity(cert *x509.Certificate) Identity {
	if cert == nil {
		return Identity{}
	}
	return Identity{Type: IDDN, Data: bytes.Clone(cert.RawSubject)}
}
