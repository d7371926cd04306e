package ike

import (
	"bytes"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/ike/eap"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// eapState is an EAP exchange inside IKE_AUTH (RFC 7296 §2.16):
//
//	1: IDi, [IDr], SA, TSi, TSr, [CP]  ->  IDr, CERT, AUTH, EAP(Request/Identity)
//	2: EAP(Response/Identity)          ->  EAP(Request/MSCHAPv2 Challenge)
//	3: EAP(Response/MSCHAPv2 Response) ->  EAP(Request/MSCHAPv2 Success)
//	4: EAP(Response/MSCHAPv2 Success)  ->  EAP(Success)
//	5: AUTH (keyed with the MSK)       ->  AUTH (MSK), [CP], SA, TSi, TSr
type eapState struct {
	srv   *eap.Server
	first []wire.Payload // request 1: SA, TS, CP and notifies for the Child SA
	idi   *wire.ID       // signed in the initiator's last AUTH
	peer  auth.Identity  // IDi, then the EAP identity
	msk   []byte         // set by EAP-Success
}

// eapStart answers the first IKE_AUTH of an initiator that wants EAP: we
// authenticate with our certificate and ask for the EAP identity.
func (r *Responder) eapStart(ho *halfOpen, d Datagram, ps []wire.Payload, idi *wire.ID, peer auth.Identity) authResult {
	out, err := r.ourAuth(ho, nil)
	if err != nil {
		return r.refuse(d, peer, "signing our AUTH: "+err.Error())
	}
	srv := eap.NewServer(r.cfg.EAPUsers, r.rand, r.cfg.LocalID.String())
	if r.cfg.EAPTLS {
		r.enableEAPTLS(srv)
	}
	req, err := srv.Start()
	if err != nil {
		return r.refuse(d, peer, err.Error())
	}
	ho.eap = &eapState{srv: srv, first: ps, idi: idi, peer: peer}
	r.log.Debug("IKE_AUTH: starting EAP", "from", d.From, "peer", peer.String())
	return authResult{payloads: append(out, &wire.EAP{Data: req}), pending: true}
}

// eapContinue answers the IKE_AUTH requests after the first one.
func (r *Responder) eapContinue(ho *halfOpen, d Datagram, ps []wire.Payload) authResult {
	st := ho.eap
	prf := ho.keys.prf.Sum
	if st.msk != nil {
		ap := wire.Find[*wire.Auth](ps)
		if ap == nil {
			return r.refuse(d, st.peer, "no AUTH payload after EAP-Success")
		}
		octets := append(auth.SignedOctets(prf, ho.initReq, ho.nr, ho.keys.keys.SKpi, st.idi.Body()), ho.inter.intAuth()...)
		if ap.Method != auth.MethodPSK || !auth.VerifyPSK(prf, st.msk, octets, ap.Data) {
			return r.refuse(d, st.peer, "AUTH does not match the EAP MSK")
		}
		idr := identityPayload(r.cfg.LocalID, true)
		ours := append(auth.SignedOctets(prf, ho.initResp, ho.ni, ho.keys.keys.SKpr, idr.Body()), ho.inter.intAuth()...)
		out := []wire.Payload{&wire.Auth{Method: auth.MethodPSK, Data: auth.PSKAuth(prf, st.msk, ours)}}
		r.log.Info("IKE_AUTH: EAP authenticated", "from", d.From, "peer", st.peer.String(), "method", st.srv.Method())
		return r.finish(ho, d, st.first, st.peer, out, auth.MethodPSK)
	}
	ep := wire.Find[*wire.EAP](ps)
	if ep == nil {
		return r.refuse(d, st.peer, "no EAP payload in an EAP exchange")
	}
	next, status, err := st.srv.Handle(ep.Data)
	switch {
	case status == eap.Succeeded:
		st.msk = bytes.Clone(st.srv.MSK())
		st.peer = eapPeer(st.idi, st.srv.Identity())
		return authResult{payloads: []wire.Payload{&wire.EAP{Data: next}}, pending: true}
	case status == eap.Failed:
		r.log.Info("IKE_AUTH refused", "from", d.From, "peer", st.peer.String(), "reason", err)
		return authResult{payloads: []wire.Payload{&wire.EAP{Data: next}}, authFailed: true}
	case err != nil:
		return r.refuse(d, st.peer, err.Error())
	}
	return authResult{payloads: []wire.Payload{&wire.EAP{Data: next}}, pending: true}
}

// eapPeer is the session's peer identity after EAP: IDi when it names the
// EAP identity, else the EAP identity parsed (IDi is not authenticated by
// EAP, so it must not name the session).
func eapPeer(idi *wire.ID, identity string) auth.Identity {
	if string(idi.Data) == identity {
		return auth.Identity{Type: idi.IDType, Data: idi.Data}
	}
	return auth.ParseIdentity(identity)
}
