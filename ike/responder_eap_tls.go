package ike

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/ike/eap"
)

// enableEAPTLS offers EAP-TLS with the gateway's certificate; a client
// certificate must chain to our CAs and name the EAP identity (which then
// names the session).
func (r *Responder) enableEAPTLS(srv *eap.Server) {
	roots := x509.NewCertPool()
	for _, c := range r.cfg.CAs {
		roots.AddCert(c)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: r.cfg.CertChain, PrivateKey: r.cfg.Signer}},
		Rand:         r.rand,
	}
	srv.EnableTLS(cfg, func(chain [][]byte, identity string) error {
		id := auth.ParseIdentity(identity)
		_, err := auth.VerifyPeerCert(chain, roots, id, id, r.cfg.now())
		return err
	})
}
