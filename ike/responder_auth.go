package ike

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// authResult is the answer to one IKE_AUTH request.
type authResult struct {
	payloads   []wire.Payload
	session    *Session // nil: no IKE SA results
	leases     []leaseRef
	authFailed bool
	pending    bool // an EAP exchange continues in the next IKE_AUTH
}

// authRequest answers IKE_AUTH for a half-open SA (RFC 7296 §1.2) and
// retransmits that answer for repeated requests.
func (r *Responder) authRequest(ho *halfOpen, d Datagram, h wire.Header) {
	ho.mu.Lock()
	defer ho.mu.Unlock()
	if ho.authResp != nil && (ho.final || h.MessageID == ho.authID) {
		// A retransmission (of the request, or of the fragment that
		// completed it) gets the same answer.
		if h.MessageID == ho.authID && bytes.Equal(ho.authReq, d.Data) {
			for _, m := range ho.authResp {
				_ = r.t.Send(m, d.From, d.Encap)
			}
		}
		return
	}
	if r.intermediateRequest(ho, d, h) {
		return
	}
	// Message 1 (after any IKE_INTERMEDIATE), or the next one of an EAP
	// exchange (RFC 7296 §2.16).
	want := ho.authID + 1
	if h.Exchange != wire.ExchangeIKEAuth || h.MessageID != want || h.IsResponse() || !h.IsInitiator() {
		return
	}
	if ho.frags == nil {
		ho.frags = newReassembler(0, 0)
		ho.frags.expect(false, want)
	}
	_, ps, complete, err := ho.frags.add(d.Data, ho.keys)
	if errors.Is(err, errNotFragment) {
		_, ps, err = ho.keys.open(d.Data)
		complete = true
	}
	if err != nil || !complete {
		// Unprotected, forged or a fragment of more to come: it must not
		// change any state.
		if err != nil {
			r.log.Debug("IKE_AUTH does not decrypt", "from", d.From, "err", err)
		}
		return
	}
	ho.reqID = h.MessageID
	var res authResult
	if ho.eap != nil {
		res = r.eapContinue(ho, d, ps)
	} else {
		res = r.authenticate(ho, d, ps)
	}
	hdr := wire.Header{SPIi: ho.spii, SPIr: ho.spir, Version: wire.Version2, Exchange: wire.ExchangeIKEAuth,
		Flags: wire.FlagResponse, MessageID: h.MessageID}
	var raw [][]byte
	if ho.peerFragment {
		// RFC 7383: certificate chains push IKE_AUTH past the path MTU.
		raw, err = ho.keys.sealFragmented(hdr, res.payloads, maxDatagramFor(d.From.Addr().Is6(), d.Encap), r.rand)
	} else {
		var one []byte
		one, err = ho.keys.seal(hdr, res.payloads, r.rand)
		raw = [][]byte{one}
	}
	if err != nil {
		r.log.Warn("sealing IKE_AUTH response", "err", err)
		r.attachLeases(res.leases, nil)
		return
	}
	ho.authReq, ho.authResp, ho.authID, ho.frags = d.Data, raw, h.MessageID, nil
	if res.pending {
		// EAP goes on: the SA stays half-open for the next IKE_AUTH.
		for _, m := range raw {
			_ = r.t.Send(m, d.From, d.Encap)
		}
		return
	}
	ho.final = true
	s := res.session
	if s != nil {
		s.cur.lastResp = raw // the session answers further retransmissions
		s.ch = r.t.register(ho.spir)
		r.attachLeases(res.leases, s)
	}
	r.mu.Lock()
	// A refused SA stays until its deadline to answer retransmissions.
	r.forget(ho, s == nil)
	switch {
	case s != nil:
		r.stats.Established++
		if s.resumed {
			r.stats.Resumed++
		}
		k := peerKey(s.PeerID)
		r.peers[k] = append(liveSessions(r.peers[k]), s)
	case res.authFailed:
		r.stats.AuthFailed++
	default:
		r.stats.ChildFailed++
	}
	r.mu.Unlock()
	if s != nil {
		var hooks Hooks
		if r.cfg.Hooks != nil {
			hooks = r.cfg.Hooks(s)
		}
		s.Start(hooks, r.cfg.Timers)
	}
	for _, m := range raw {
		_ = r.t.Send(m, d.From, d.Encap)
	}
	if s != nil {
		s.log.Info("IKE SA established", "suite", s.Suite.String(), "child", s.Child.Suite.String(),
			"virtual_ips", fmt.Sprint(s.VirtualIPs), "encap", s.encap)
		r.deliver(s)
	}
}

// authenticate verifies the initiator's AUTH and builds the response.
func (r *Responder) authenticate(ho *halfOpen, d Datagram, ps []wire.Payload) authResult {
	var idi, idr *wire.ID
	for _, p := range ps {
		if id, ok := p.(*wire.ID); ok {
			if id.Responder {
				idr = id
			} else {
				idi = id
			}
		}
	}
	ap := wire.Find[*wire.Auth](ps)
	if idi == nil || (ap == nil && (r.cfg.EAPUsers == nil && !r.cfg.EAPTLS || ho.resumed != nil)) {
		return r.refuse(d, auth.Identity{}, "no IDi or AUTH payload (EAP is not configured)")
	}
	peer := auth.Identity{Type: idi.IDType, Data: idi.Data}
	if idr != nil {
		if want := (auth.Identity{Type: idr.IDType, Data: idr.Data}); !want.Equal(r.cfg.LocalID) {
			return r.refuse(d, peer, fmt.Sprintf("the initiator wants to talk to %s", want))
		}
	}
	if ap == nil {
		return r.eapStart(ho, d, ps, idi, peer)
	}
	var out []wire.Payload
	method := ap.Method
	if ho.resumed != nil {
		var why string
		if out, peer, why = r.authenticateResumed(ho, d, idi, ap); why != "" {
			return r.refuse(d, peer, why)
		}
		method = ho.resumed.state.AuthMethod
	} else {
		var fail authResult
		if out, fail = r.authenticateFull(ho, d, ps, idi, peer, ap); out == nil {
			return fail
		}
	}
	return r.finish(ho, d, ps, peer, out, method)
}

// finish ends an authenticated IKE_AUTH: redirect, INITIAL_CONTACT, the
// first Child SA and the session. ps are the payloads carrying SA, TS, CP
// and the notifies (the first IKE_AUTH request of an EAP exchange); out
// holds our IDr, CERT and AUTH.
func (r *Responder) finish(ho *halfOpen, d Datagram, ps []wire.Payload, peer auth.Identity, out []wire.Payload, method uint8) authResult {
	if r.cfg.RedirectAuth != nil && ho.redirectOK {
		if to, ok := r.cfg.RedirectAuth(peer, d.From); ok {
			// RFC 5685 §6: authenticated both ways, no Child SA.
			r.count(func(s *ResponderStats) { s.Redirected++ })
			r.log.Info("IKE_AUTH: redirecting", "peer", peer.String(), "to", to.String())
			return authResult{payloads: append(out, &wire.Notify{NotifyType: wire.NotifyRedirect, Data: encodeRedirect(to, nil)})}
		}
	}
	if wire.FindNotify(ps, wire.NotifyInitialContact) != nil {
		r.replacePeer(peer)
	}
	encap := d.Encap || ho.natPeer || ho.natLocal
	fc, fail, why := r.negotiateChild(ho, d, ps, peer, encap)
	if fail != 0 {
		r.log.Info("IKE_AUTH: no Child SA", "from", d.From, "peer", peer.String(), "notify", fail, "reason", why)
		return authResult{payloads: append(out, &wire.Notify{NotifyType: fail})}
	}
	s := r.newSession(ho, peer, d.From, encap)
	s.Child = fc.child
	s.VirtualIPs = fc.vips
	s.AuthNotifies = wire.FindAll[*wire.Notify](ps)
	s.authMethod = method
	s.resumed = ho.resumed != nil
	s.redirectOK = ho.redirectOK
	out = append(out, r.haAnnounce(s)...)
	if r.cfg.MOBIKE && wire.FindNotify(ps, wire.NotifyMOBIKESupported) != nil {
		// RFC 4555 §3.1: both sides said so; the client may now move.
		s.mobike = true
		out = append(out, &wire.Notify{NotifyType: wire.NotifyMOBIKESupported})
	}
	if r.cfg.AuthResponseNotifies != nil {
		// RFC 6290 §4.1: after AUTH, before CP and the Child SA.
		for _, n := range r.cfg.AuthResponseNotifies(s) {
			out = append(out, n)
		}
	}
	out = append(out, fc.payloads...)
	return authResult{payloads: out, session: s, leases: fc.leases}
}

// authenticateFull verifies a PSK or certificate AUTH and returns our
// IDr, CERT and AUTH, or nil and the refusal.
func (r *Responder) authenticateFull(ho *halfOpen, d Datagram, ps []wire.Payload, idi *wire.ID, peer auth.Identity, ap *wire.Auth) ([]wire.Payload, authResult) {
	octets := append(auth.SignedOctets(ho.keys.prf.Sum, ho.initReq, ho.nr, ho.keys.keys.SKpi, idi.Body()), ho.inter.intAuth()...)
	var psk []byte
	if ap.Method == auth.MethodPSK {
		if r.cfg.PSK != nil {
			psk = r.cfg.PSK(peer)
		}
		if len(psk) == 0 {
			return nil, r.refuse(d, peer, "no pre-shared key for this peer")
		}
		if !auth.VerifyPSK(ho.keys.prf.Sum, psk, octets, ap.Data) {
			return nil, r.refuse(d, peer, "AUTH does not match the pre-shared key")
		}
	} else {
		if r.cfg.Signer == nil {
			return nil, r.refuse(d, peer, "certificate authentication is not configured")
		}
		if err := r.verifyCert(ps, peer, ap, octets); err != nil {
			return nil, r.refuse(d, peer, err.Error())
		}
	}
	out, err := r.ourAuth(ho, psk)
	if err != nil {
		return nil, r.refuse(d, peer, "signing our AUTH: "+err.Error())
	}
	return out, authResult{}
}

// refuse answers N(AUTHENTICATION_FAILED); why is only logged.
func (r *Responder) refuse(d Datagram, peer auth.Identity, why string) authResult {
	r.log.Info("IKE_AUTH refused", "from", d.From, "peer", peer.String(), "reason", why)
	return authResult{payloads: []wire.Payload{&wire.Notify{NotifyType: wire.NotifyAuthenticationFailed}}, authFailed: true}
}

// verifyCert checks the initiator's certificate chain and signature.
func (r *Responder) verifyCert(ps []wire.Payload, peer auth.Identity, ap *wire.Auth, octets []byte) error {
	if r.roots == nil {
		return errors.New("no CA configured for certificate clients")
	}
	var chain [][]byte
	for _, p := range ps {
		if c, ok := p.(*wire.Cert); ok && c.Encoding == wire.CertX509Signature {
			chain = append(chain, c.Data)
		}
	}
	pub, err := auth.VerifyPeerCert(chain, r.roots, peer, auth.Identity{}, r.cfg.now())
	if err != nil {
		return err
	}
	return auth.Verify(pub, ap.Method, ap.Data, octets)
}

// ourAuth builds IDr, our certificates and AUTH: a PSK answers a PSK.
func (r *Responder) ourAuth(ho *halfOpen, psk []byte) ([]wire.Payload, error) {
	idr := identityPayload(r.cfg.LocalID, true)
	octets := append(auth.SignedOctets(ho.keys.prf.Sum, ho.initResp, ho.ni, ho.keys.keys.SKpr, idr.Body()), ho.inter.intAuth()...)
	ps := []wire.Payload{idr}
	if len(psk) > 0 {
		return append(ps, &wire.Auth{Method: auth.MethodPSK, Data: auth.PSKAuth(ho.keys.prf.Sum, psk, octets)}), nil
	}
	for _, der := range r.cfg.CertChain {
		ps = append(ps, &wire.Cert{Encoding: wire.CertX509Signature, Data: der})
	}
	method, data, err := auth.Sign(r.cfg.Signer, ho.peerHashes, octets, r.rand)
	if err != nil {
		return nil, err
	}
	return append(ps, &wire.Auth{Method: method, Data: data}), nil
}

// replacePeer ends the sessions of a peer that says, with INITIAL_CONTACT,
// that it has no other IKE SA with us.
func (r *Responder) replacePeer(peer auth.Identity) {
	k := peerKey(peer)
	r.mu.Lock()
	old := r.peers[k]
	delete(r.peers, k)
	r.mu.Unlock()
	for _, s := range old {
		if !isDone(s) {
			s.log.Info("replaced by a new IKE SA (INITIAL_CONTACT)")
			s.Abandon(ErrReplaced)
		}
	}
}

// firstChild is the Child SA negotiated in IKE_AUTH.
type firstChild struct {
	child    *ChildSA
	payloads []wire.Payload // CP, SA, TSi, TSr
	leases   []leaseRef
	vips     []netip.Prefix
}

// negotiateChild picks the ESP proposal, assigns virtual addresses and
// narrows the traffic selectors; on failure it names the error notify.
func (r *Responder) negotiateChild(ho *halfOpen, d Datagram, ps []wire.Payload, peer auth.Identity, encap bool) (*firstChild, wire.NotifyType, string) {
	sa := wire.Find[*wire.SA](ps)
	if sa == nil {
		return nil, wire.NotifyNoProposalChosen, "no SA payload (childless IKE SAs are not supported)"
	}
	spi, spiB, err := randomSPI32(r.rand)
	if err != nil {
		return nil, wire.NotifyTemporaryFailure, err.Error()
	}
	chosen, suite, ok := chooseProposal(withoutKE(sa.Proposals), r.cfg.ESPProposals, wire.ProtoESP, spiB, 0)
	if !ok {
		return nil, wire.NotifyNoProposalChosen, "no acceptable ESP proposal"
	}
	var peerSPI []byte
	for _, p := range sa.Proposals {
		if p.Number == chosen.Number && p.Protocol == wire.ProtoESP {
			peerSPI = p.SPI
		}
	}
	if len(peerSPI) != 4 || binary.BigEndian.Uint32(peerSPI) < 256 {
		return nil, wire.NotifyNoProposalChosen, fmt.Sprintf("invalid ESP SPI %x", peerSPI)
	}
	var tsi, tsr []wire.Selector
	for _, p := range ps {
		if ts, ok := p.(*wire.TS); ok {
			if ts.Responder {
				tsr = append(tsr, ts.Selectors...)
			} else {
				tsi = append(tsi, ts.Selectors...)
			}
		}
	}
	fc := &firstChild{}
	hosts := []netip.Addr{d.From.Addr().Unmap()}
	if cp := wire.Find[*wire.CP](ps); cp != nil && cp.CfgType == wire.CfgRequest {
		refs, reply, ok := r.assignAddresses(cp, peerKey(peer))
		if !ok {
			return nil, wire.NotifyInternalAddressFailure, "no virtual address available"
		}
		fc.leases = refs
		if len(refs) > 0 {
			hosts = hosts[:0]
			for _, ref := range refs {
				hosts = append(hosts, ref.addr)
			}
			fc.vips = hostPrefixes(hosts)
		}
		if len(reply.Attributes) > 0 {
			fc.payloads = append(fc.payloads, reply)
		}
	}
	local := r.cfg.LocalTS
	if len(local) == 0 {
		local = everything()
	}
	// Without a virtual address the peer's own address is all it may use.
	ntsi, ntsr := narrowTS(tsi, hostPrefixes(hosts)), narrowTS(tsr, local)
	if len(ntsi) == 0 || len(ntsr) == 0 {
		r.attachLeases(fc.leases, nil)
		return nil, wire.NotifyTSUnacceptable, "traffic selectors do not overlap ours"
	}
	c := &ChildSA{Suite: suite, SPIIn: spi, SPIOut: binary.BigEndian.Uint32(peerSPI), TSi: ntsi, TSr: ntsr, Encap: encap}
	if err := c.deriveKeys(ho.keys.prf, ho.keys.keys.SKd, nil, ho.ni, ho.nr, false); err != nil {
		r.attachLeases(fc.leases, nil)
		return nil, wire.NotifyNoProposalChosen, err.Error()
	}
	fc.child = c
	fc.payloads = append(fc.payloads,
		&wire.SA{Proposals: []wire.Proposal{chosen}},
		&wire.TS{Selectors: ntsi},
		&wire.TS{Responder: true, Selectors: ntsr},
	)
	return fc, 0, ""
}

// newSession builds the established session of the gateway side: we are
// the responder of the IKE SA; the peer's next request is message 2 and
// our first is 0. Keep in step with newSession in session.go.
func (r *Responder) newSession(ho *halfOpen, peer auth.Identity, remote netip.AddrPort, encap bool) *Session {
	now := time.Now()
	return &Session{
		cfg:    r.scfg,
		log:    r.log.With("peer", peer.String(), "remote", remote.String(), "spi_i", fmt.Sprintf("%016x", ho.spii), "spi_r", fmt.Sprintf("%016x", ho.spir)),
		t:      r.t,
		rand:   r.rand,
		remote: remote,
		encap:  encap,
		SPIi:   ho.spii,
		SPIr:   ho.spir,
		Suite:  ho.suite,
		PeerID: peer,
		cur: &ikeState{spii: ho.spii, spir: ho.spir, initiator: false, keys: ho.keys, suite: ho.suite,
			nextID: 0, peerNext: max(ho.reqID, 1) + 1},
		Established: now,
		reqs:        make(chan *request),
		cmds:        make(chan func()),
		hints:       make(chan struct{}, 1),
		done:        make(chan struct{}),
		lastIn:      now,
		lastSeen:    now,
		spis:        [2]uint64{ho.spii, ho.spir},
		fragment:    ho.peerFragment,
	}
}
