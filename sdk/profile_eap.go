package sdk

import (
	"github.com/qcdvpn/qcdvpn/ike"
)

// applyEAP sets the IKE configuration of the EAP methods: eap-mschapv2
// with auth.username and auth.password; eap-tls with the client
// certificate inside TLS and auth.username (default: local_id) as the EAP
// identity. The gateway authenticates with its certificate, checked
// against ca.
func applyEAP(cfg *ike.Config, p *Profile, creds *Credentials) {
	switch p.Auth.Method {
	case AuthEAPMSCHAPv2:
		cfg.EAP = &ike.EAPConfig{Method: ike.EAPMSCHAPv2, Identity: p.Auth.Username, Password: p.Auth.Password}
	case AuthEAPTLS:
		cfg.EAP = &ike.EAPConfig{Method: ike.EAPTLS, Identity: p.Auth.Username}
		for _, c := range creds.Chain {
			cfg.CertChain = append(cfg.CertChain, c.Raw)
		}
		cfg.Signer = creds.Key
	}
}
