package ike

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/ike/eap"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// maxEAPRounds bounds the IKE_AUTH round trips of one EAP exchange
// (EAP-TLS with a long certificate chain in 1 KiB fragments needs ~20).
const maxEAPRounds = 64

// eapRun is the initiator's EAP exchange inside IKE_AUTH (RFC 7296 §2.16):
//
//	1: IDi, [CERTREQ], [IDr], SA, TSi, TSr, CP  ->  IDr, CERT, AUTH, EAP(Request)
//	2..n: EAP(Response)                         ->  EAP(Request), then EAP(Success)
//	n+1: AUTH (keyed with the MSK)              ->  AUTH, CP, SA, TSi, TSr
//
// The gateway's certificate AUTH is verified before any EAP response
// leaves, so our credentials go only to the gateway the profile names.
type eapRun struct {
	idr *wire.ID // the gateway's, from response 1
	msk []byte   // nil when the method has no keys
}

// eapRounds takes the first IKE_AUTH response, verifies the gateway, runs
// EAP and sends our MSK-keyed AUTH; it returns the last response, which
// authResponse checks like any other.
func (st *initState) eapRounds(ctx context.Context, ps []wire.Payload) ([]wire.Payload, error) {
	cfg := st.cfg
	if err := authFailedNotify(ps); err != nil {
		return nil, err
	}
	ap := wire.Find[*wire.Auth](ps)
	idr := wire.Find[*wire.ID](ps)
	if ap == nil || idr == nil || !idr.Responder {
		if err := firstError(wire.ExchangeIKEAuth, ps); err != nil {
			return nil, err
		}
		return nil, errors.New("IKE_AUTH: gateway's first response has no IDr or AUTH payload (does it accept EAP clients?)")
	}
	got := auth.Identity{Type: idr.IDType, Data: idr.Data}
	if len(cfg.RemoteID.Data) > 0 && !got.Equal(cfg.RemoteID) {
		return nil, fmt.Errorf("%w: gateway says it is %s, want %s", ErrIdentityMismatch, got, cfg.RemoteID)
	}
	if ap.Method == auth.MethodPSK {
		return nil, fmt.Errorf("%w: gateway used a pre-shared key; with EAP it must authenticate with its certificate", ErrAuthenticationFailed)
	}
	octets := append(auth.SignedOctets(st.keys.prf.Sum, st.initResp, st.ni, st.keys.keys.SKpr, idr.Body()), st.inter.intAuth()...)
	if err := st.verifyGatewayCert(ps, got, ap, octets); err != nil {
		return nil, err
	}
	m, err := st.eapMethod(got)
	if err != nil {
		return nil, err
	}
	peer := eap.NewPeer(cfg.EAP.identity(cfg), m)
	defer peer.Close()
	log := cfg.logger()
	log.Debug("IKE_AUTH: gateway authenticated, starting EAP", "gateway", got.String(), "method", cfg.EAP.Method.String())
	for round := 0; ; round++ {
		if round >= maxEAPRounds {
			return nil, fmt.Errorf("IKE_AUTH: EAP did not finish in %d round trips", maxEAPRounds)
		}
		ep := wire.Find[*wire.EAP](ps)
		if ep == nil {
			if err := authFailedNotify(ps); err != nil {
				return nil, err
			}
			if err := firstError(wire.ExchangeIKEAuth, ps); err != nil {
				return nil, err
			}
			return nil, errors.New("IKE_AUTH: gateway's response has no EAP payload")
		}
		resp, status, err := peer.Handle(ep.Data)
		switch status {
		case eap.Failed:
			if errors.Is(err, eap.ErrRejected) {
				return nil, fmt.Errorf("%w (%s: %s)", ErrCredentialsRejected, cfg.EAP.Method, strings.TrimPrefix(err.Error(), eap.ErrRejected.Error()+": "))
			}
			return nil, fmt.Errorf("%w: %s: %v", ErrAuthenticationFailed, cfg.EAP.Method, err)
		case eap.Succeeded:
			st.eap = &eapRun{idr: idr, msk: append([]byte(nil), peer.MSK()...)}
			key := st.eap.msk
			if len(key) == 0 {
				key = st.keys.keys.SKpi // RFC 7296 §2.16: a method without keys
			}
			idi := identityPayload(cfg.LocalID, false)
			mine := append(auth.SignedOctets(st.keys.prf.Sum, st.initReq, st.nr, st.keys.keys.SKpi, idi.Body()), st.inter.intAuth()...)
			log.Debug("IKE_AUTH: EAP succeeded", "method", cfg.EAP.Method.String(), "msk", len(st.eap.msk) > 0)
			return st.authRound(ctx, []wire.Payload{&wire.Auth{Method: auth.MethodPSK, Data: auth.PSKAuth(st.keys.prf.Sum, key, mine)}})
		}
		if ps, err = st.authRound(ctx, []wire.Payload{&wire.EAP{Data: resp}}); err != nil {
			return nil, err
		}
	}
}

// verifyFinal checks the gateway's last AUTH, keyed with the MSK (or
// SK_pr for a method without keys).
func (r *eapRun) verifyFinal(st *initState, ap *wire.Auth, octets []byte) error {
	key := r.msk
	if len(key) == 0 {
		key = st.keys.keys.SKpr
	}
	if ap.Method != auth.MethodPSK || !auth.VerifyPSK(st.keys.prf.Sum, key, octets, ap.Data) {
		return fmt.Errorf("%w: gateway's AUTH does not match the EAP key", ErrAuthenticationFailed)
	}
	return nil
}

// eapMethod makes the configured method's state; gw is the gateway's
// authenticated identity, which its EAP-TLS certificate must name too.
func (st *initState) eapMethod(gw auth.Identity) (eap.Method, error) {
	cfg := st.cfg
	switch cfg.EAP.Method {
	case EAPMSCHAPv2:
		return eap.NewMSCHAPv2Peer(cfg.EAP.identity(cfg), cfg.EAP.Password, st.rand), nil
	case EAPTLS:
		roots := x509.NewCertPool()
		for _, c := range cfg.CAs {
			roots.AddCert(c)
		}
		tc := &tls.Config{
			Certificates: []tls.Certificate{{Certificate: cfg.CertChain, PrivateKey: cfg.Signer}},
			// The chain is verified below, against the CAs and the IKE
			// identity rather than a host name.
			InsecureSkipVerify: true,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				_, err := auth.VerifyPeerCert(raw, roots, gw, gw, cfg.now())
				return err
			},
			// TLS 1.2, the version of RFC 5216: strongSwan 5.9.8 with
			// TLS 1.3 enabled sends a CertificateRequest with an empty
			// certificate_authorities extension, which RFC 8446 §4.2.4
			// forbids and crypto/tls rejects (decode error); both speak
			// 1.2.
			MaxVersion: tls.VersionTLS12,
			Rand:       st.rand,
			Time:       cfg.now,
		}
		return eap.NewTLSPeer(tc)
	}
	return nil, fmt.Errorf("ike: unknown %s", cfg.EAP.Method)
}

// authRound sends one more IKE_AUTH request with ps and returns the
// response's payloads.
func (st *initState) authRound(ctx context.Context, ps []wire.Payload) ([]wire.Payload, error) {
	id := st.nextMsgID()
	h := wire.Header{SPIi: st.spii, SPIr: st.spir, Version: 0x20, Exchange: wire.ExchangeIKEAuth, Flags: wire.FlagInitiator, MessageID: id}
	var req [][]byte
	var err error
	if st.peerFragment {
		req, err = st.keys.sealFragmented(h, ps, maxDatagramFor(st.remote.Addr().Is6(), st.encap), st.rand)
	} else {
		var raw []byte
		raw, err = st.keys.seal(h, ps, st.rand)
		req = [][]byte{raw}
	}
	if err != nil {
		return nil, err
	}
	st.authID = id
	_, inner, err := st.protectedExchange(ctx, req, wire.ExchangeIKEAuth, id)
	if err != nil {
		return nil, fmt.Errorf("IKE_AUTH (EAP, message %d) with %s: %w", id, st.remote, err)
	}
	return inner, nil
}

// nextMsgID is the message ID after the last IKE_AUTH request (the first
// comes after any IKE_INTERMEDIATE exchanges).
func (st *initState) nextMsgID() uint32 { return max(st.authID, st.inter.authMID()) + 1 }

// authFailedNotify is the error for an AUTHENTICATION_FAILED notify in ps.
func authFailedNotify(ps []wire.Payload) error {
	if wire.FindNotify(ps, wire.NotifyAuthenticationFailed) != nil {
		return ErrCredentialsRejected
	}
	return nil
}
