package ike

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// ResumeState is what RFC 5723 §5 takes "from the ticket": the old SK_d,
// the IKE SA's algorithms, both identities and how the initiator first
// authenticated. The gateway seals it into the ticket; the client keeps
// its own copy beside the ticket. It is secret (SK_d).
type ResumeState struct {
	Suite      Suite
	SKd        []byte
	IDi, IDr   auth.Identity
	AuthMethod uint8 // the initiator's original AUTH method
	// SPIi and SPIr of the IKE SA the ticket was issued for (RFC 5723
	// Note 4: they only help to find the old state).
	SPIi, SPIr uint64
	// VirtualIP is the address the client had, asked for again (Note 5).
	VirtualIP []byte
}

// resumeStateVersion 2 appends the additional key exchanges (RFC 9370) of
// the ticket's SA; an SA without them is still written as version 1.
const (
	resumeStateVersion   = 1
	resumeStateVersionKE = 2
)

// MarshalBinary encodes the state (version, fixed fields, then
// length-prefixed SK_d, IDs and virtual IP).
func (rs *ResumeState) MarshalBinary() ([]byte, error) {
	if len(rs.SKd) == 0 || len(rs.SKd) > 255 || len(rs.IDi.Data) > 1024 || len(rs.IDr.Data) > 1024 || len(rs.VirtualIP) > 16 {
		return nil, errors.New("ike: resume state out of bounds")
	}
	b := []byte{resumeStateVersion}
	if rs.Suite.HasAddKE() {
		b[0] = resumeStateVersionKE
	}
	b = binary.BigEndian.AppendUint16(b, rs.Suite.Encr)
	b = binary.BigEndian.AppendUint16(b, uint16(rs.Suite.KeyBits))
	b = binary.BigEndian.AppendUint16(b, rs.Suite.Integ)
	b = binary.BigEndian.AppendUint16(b, rs.Suite.PRF)
	b = binary.BigEndian.AppendUint16(b, rs.Suite.DH)
	b = append(b, rs.AuthMethod)
	b = binary.BigEndian.AppendUint64(b, rs.SPIi)
	b = binary.BigEndian.AppendUint64(b, rs.SPIr)
	b = append(b, byte(len(rs.SKd)))
	b = append(b, rs.SKd...)
	for _, id := range []auth.Identity{rs.IDi, rs.IDr} {
		b = append(b, id.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(id.Data)))
		b = append(b, id.Data...)
	}
	b = append(b, byte(len(rs.VirtualIP)))
	b = append(b, rs.VirtualIP...)
	if b[0] == resumeStateVersionKE {
		for _, g := range rs.Suite.AddKE {
			b = binary.BigEndian.AppendUint16(b, g)
		}
	}
	return b, nil
}

var errResumeState = errors.New("ike: malformed resume state")

// UnmarshalBinary decodes what MarshalBinary made; anything else is an
// error, never a panic.
func (rs *ResumeState) UnmarshalBinary(b []byte) error {
	take := func(n int) []byte {
		if n < 0 || len(b) < n {
			b = nil
			return nil
		}
		v := b[:n:n]
		b = b[n:]
		return v
	}
	hdr := take(1 + 10 + 1 + 16)
	if hdr == nil || (hdr[0] != resumeStateVersion && hdr[0] != resumeStateVersionKE) {
		return errResumeState
	}
	var out ResumeState
	out.Suite = Suite{
		Encr:    binary.BigEndian.Uint16(hdr[1:]),
		KeyBits: int(binary.BigEndian.Uint16(hdr[3:])),
		Integ:   binary.BigEndian.Uint16(hdr[5:]),
		PRF:     binary.BigEndian.Uint16(hdr[7:]),
		DH:      binary.BigEndian.Uint16(hdr[9:]),
	}
	out.AuthMethod = hdr[11]
	out.SPIi = binary.BigEndian.Uint64(hdr[12:])
	out.SPIr = binary.BigEndian.Uint64(hdr[20:])
	n := take(1)
	if n == nil || n[0] == 0 {
		return errResumeState
	}
	if out.SKd = take(int(n[0])); out.SKd == nil {
		return errResumeState
	}
	for _, id := range []*auth.Identity{&out.IDi, &out.IDr} {
		h := take(3)
		if h == nil {
			return errResumeState
		}
		id.Type = h[0]
		if id.Data = take(int(binary.BigEndian.Uint16(h[1:]))); id.Data == nil {
			return errResumeState
		}
	}
	n = take(1)
	if n == nil {
		return errResumeState
	}
	if out.VirtualIP = take(int(n[0])); out.VirtualIP == nil {
		return errResumeState
	}
	if hdr[0] == resumeStateVersionKE {
		kes := take(2 * len(out.Suite.AddKE))
		if kes == nil {
			return errResumeState
		}
		for i := range out.Suite.AddKE {
			out.Suite.AddKE[i] = binary.BigEndian.Uint16(kes[2*i:])
		}
		if !out.Suite.HasAddKE() {
			return errResumeState // version 1 is the encoding of that
		}
	}
	if len(b) != 0 {
		return errResumeState
	}
	if len(out.VirtualIP) != 0 && len(out.VirtualIP) != 4 && len(out.VirtualIP) != 16 {
		return errResumeState
	}
	if _, err := ikecrypto.NewPRF(out.Suite.PRF); err != nil {
		return errResumeState
	}
	if len(out.VirtualIP) == 0 {
		out.VirtualIP = nil
	}
	*rs = out
	return nil
}

// resumeState snapshots the IKE SA st as a ticket would describe it.
func (s *Session) resumeState(st *ikeState) *ResumeState {
	rs := &ResumeState{
		Suite:      st.suite,
		SKd:        append([]byte(nil), st.keys.keys.SKd...),
		AuthMethod: s.authMethod,
		SPIi:       st.spii,
		SPIr:       st.spir,
	}
	if s.initiatorRole {
		rs.IDi, rs.IDr = s.cfg.LocalID, s.PeerID
	} else {
		rs.IDi, rs.IDr = s.PeerID, s.cfg.LocalID
	}
	for _, v := range s.VirtualIPs {
		rs.VirtualIP = v.Addr().AsSlice()
		break
	}
	return rs
}

// ResumeState returns the current IKE SA's resumption state (for a
// ticket issued now). Safe to call before and after Start.
func (s *Session) ResumeState() *ResumeState {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return s.resumeState(s.cur)
	}
	var rs *ResumeState
	if !s.do(func() { rs = s.resumeState(s.cur) }) {
		return nil
	}
	return rs
}

// Resumed reports whether the session came from IKE_SESSION_RESUME.
func (s *Session) Resumed() bool { return s.resumed }

// ErrTicketRejected: the gateway answered the ticket with TICKET_NACK.
var ErrTicketRejected = errors.New("gateway rejected the resumption ticket (TICKET_NACK)")

// resumeSKEYSEED is RFC 5723 §5.1: prf(SK_d_old, "Resumption" | Ni | Nr).
func resumeSKEYSEED(prf *ikecrypto.PRF, skdOld, ni, nr []byte) []byte {
	data := make([]byte, 0, 10+len(ni)+len(nr))
	data = append(data, "Resumption"...)
	data = append(data, ni...)
	data = append(data, nr...)
	return prf.Sum(skdOld, data)
}

// resumeAuth is RFC 5723 §4.3.3: AUTH = prf(SK_px, <message octets>).
func resumeAuth(k *saKeys, skp, octets []byte) []byte {
	return k.prf.Sum(skp, octets)
}

// Resume runs IKE_SESSION_RESUME with ticket and the IKE_AUTH after it
// (RFC 5723 §4.3) with the gateway at remote, returning the new session.
// On TICKET_NACK it returns ErrTicketRejected (the caller then runs a full
// exchange). cfg supplies proposals for the Child SA, traffic selectors
// and the retransmission schedule; algorithms and identities come from rs.
func Resume(ctx context.Context, cfg *Config, t *Transport, remote netip.AddrPort, rs *ResumeState, ticket []byte) (*Session, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if rs == nil || len(ticket) == 0 {
		return nil, errors.New("ike: resume without state or ticket")
	}
	if !rs.IDi.Equal(cfg.LocalID) {
		return nil, errors.New("ike: ticket was issued to another identity")
	}
	return startInit(cfg, t, remote, rs, func(st *initState) (*Session, error) { return st.runResume(ctx, ticket) })
}

func (st *initState) resumeRequest(ticket []byte) ([]byte, error) {
	var ps []wire.Payload
	if st.cookie != nil {
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyCookie, Data: st.cookie})
	}
	ps = append(ps, &wire.Nonce{Data: st.ni}, &wire.Notify{NotifyType: wire.NotifyTicketOpaque, Data: ticket})
	src := natHash(st.spii, 0, st.local)
	if st.cfg.ForceEncap {
		src, _ = randomBytes(st.rand, 20)
	}
	ps = append(ps,
		&wire.Notify{NotifyType: wire.NotifyNATDetectionSourceIP, Data: src},
		&wire.Notify{NotifyType: wire.NotifyNATDetectionDestinationIP, Data: natHash(st.spii, 0, st.remote)},
		&wire.Notify{NotifyType: wire.NotifyIKEv2FragmentationSupported},
	)
	ps = append(ps, st.redirectNotifies()...)
	m := wire.Message{
		Header:   wire.Header{SPIi: st.spii, Version: wire.Version2, Exchange: wire.ExchangeIKESessionResume, Flags: wire.FlagInitiator},
		Payloads: ps,
	}
	return m.Encode()
}

func (st *initState) runResume(ctx context.Context, ticket []byte) (*Session, error) {
	var err error
	if st.ni, err = randomBytes(st.rand, 32); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		req, err := st.resumeRequest(ticket)
		if err != nil {
			return nil, err
		}
		var resp *wire.Message
		var raw []byte
		err = exchange(ctx, st.t, st.ch, st.cfg.Retransmit, [][]byte{req}, st.remote, st.encap, func(d Datagram) bool {
			m, err := wire.Parse(d.Data)
			if err != nil || m.Header.SPIi != st.spii || !m.Header.IsResponse() ||
				m.Header.Exchange != wire.ExchangeIKESessionResume || m.Header.MessageID != 0 {
				return false
			}
			resp, raw = m, d.Data
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("IKE_SESSION_RESUME with %s: %w", st.remote, err)
		}
		if resp.Notify(wire.NotifyTicketNack) != nil {
			return nil, ErrTicketRejected
		}
		if n := resp.Notify(wire.NotifyCookie); n != nil && attempt < maxInitRetries {
			if len(n.Data) < 1 || len(n.Data) > 64 {
				return nil, fmt.Errorf("IKE_SESSION_RESUME: COOKIE of %d bytes", len(n.Data))
			}
			st.cookie = append([]byte(nil), n.Data...)
			continue
		}
		if err := firstError(wire.ExchangeIKESessionResume, resp.Payloads); err != nil {
			return nil, err
		}
		st.initReq, st.initResp = req, raw
		if err := st.resumeResponse(resp); err != nil {
			return nil, err
		}
		return st.authExchange(ctx)
	}
}

func (st *initState) resumeResponse(m *wire.Message) error {
	if m.Header.SPIr == 0 {
		return errors.New("IKE_SESSION_RESUME: response with zero responder SPI")
	}
	st.spir = m.Header.SPIr
	nonce := wire.Find[*wire.Nonce](m.Payloads)
	if nonce == nil || len(nonce.Data) < 16 {
		return errors.New("IKE_SESSION_RESUME: response has no valid nonce")
	}
	st.nr = append([]byte(nil), nonce.Data...)
	st.peerNotifies(m)
	suite := st.resume.Suite
	prf, err := ikecrypto.NewPRF(suite.PRF)
	if err != nil {
		return err
	}
	return st.keyed(suite, resumeSKEYSEED(prf, st.resume.SKd, st.ni, st.nr))
}

// resumeTicket is the ticket a half-open resumed IKE SA came with.
type resumeTicket struct {
	state  *ResumeState
	ticket []byte
	expiry time.Time
}

// TicketAuthority opens and consumes RFC 5723 tickets for a Responder;
// resume.Authority implements it.
type TicketAuthority interface {
	Open(ticket []byte) (state []byte, expiry time.Time, err error)
	Consume(ticket []byte, expiry time.Time) bool
	Used(ticket []byte) bool
}

// resumeInit answers IKE_SESSION_RESUME (RFC 5723 §4.3.2): TICKET_NACK
// (unprotected) for a ticket we cannot or will not take, else a new
// half-open SA keyed from the ticket's SK_d, without Diffie-Hellman.
func (r *Responder) resumeInit(d Datagram, h wire.Header) {
	if r.answeredBefore(d, h) {
		return
	}
	m, err := wire.Parse(d.Data)
	if err != nil {
		return
	}
	nonce := wire.Find[*wire.Nonce](m.Payloads)
	tn := m.Notify(wire.NotifyTicketOpaque)
	if nonce == nil || tn == nil {
		r.resumeNotify(d, h, wire.NotifyInvalidSyntax)
		return
	}
	if !r.checkCookie(d, h, m, nonce.Data) {
		return
	}
	rt, why := r.openTicket(tn.Data)
	if rt == nil {
		r.count(func(s *ResponderStats) { s.TicketNack++ })
		r.log.Info("IKE_SESSION_RESUME: ticket refused", "from", d.From, "reason", why)
		if r.cfg.OnTicketNack != nil {
			r.cfg.OnTicketNack(d.From, why)
		}
		r.resumeNotify(d, h, wire.NotifyTicketNack)
		return
	}
	nr, err := randomBytes(r.rand, 32)
	if err != nil {
		return
	}
	suite := rt.state.Suite
	prf, err := ikecrypto.NewPRF(suite.PRF)
	if err != nil {
		r.resumeNotify(d, h, wire.NotifyTicketNack)
		return
	}
	ho := &halfOpen{
		spii: h.SPIi, spir: r.newSPI(), from: d.From, suite: suite,
		ni: append([]byte(nil), nonce.Data...), nr: nr, initReq: d.Data,
		deadline: time.Now().Add(r.halfOpenTimeout()), resumed: rt,
	}
	ho.keys, err = deriveKeys(suite, resumeSKEYSEED(prf, rt.state.SKd, ho.ni, nr), ho.ni, nr, ho.spii, ho.spir, false)
	if err != nil {
		r.resumeNotify(d, h, wire.NotifyTicketNack)
		return
	}
	ps := []wire.Payload{&wire.Nonce{Data: nr}}
	ps = append(ps, r.natDetection(ho, d, m)...)
	ho.redirectOK = peerSupportsRedirect(m)
	if m.Notify(wire.NotifyIKEv2FragmentationSupported) != nil {
		ho.peerFragment = true
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyIKEv2FragmentationSupported})
	}
	resp := wire.Message{
		Header:   wire.Header{SPIi: ho.spii, SPIr: ho.spir, Version: wire.Version2, Exchange: wire.ExchangeIKESessionResume, Flags: wire.FlagResponse},
		Payloads: ps,
	}
	if ho.initResp, err = resp.Encode(); err != nil {
		return
	}
	r.publish(ho, d, h)
}

// openTicket returns the ticket's state, or why it is refused.
func (r *Responder) openTicket(ticket []byte) (*resumeTicket, string) {
	if r.cfg.Tickets == nil {
		return nil, "resumption is not configured"
	}
	raw, expiry, err := r.cfg.Tickets.Open(ticket)
	if err != nil {
		return nil, err.Error()
	}
	if r.cfg.Tickets.Used(ticket) {
		return nil, "ticket already used"
	}
	var rs ResumeState
	if err := rs.UnmarshalBinary(raw); err != nil {
		return nil, err.Error()
	}
	if !rs.IDr.Equal(r.cfg.LocalID) {
		return nil, "ticket names another gateway identity"
	}
	if !r.offersSuite(rs.Suite) {
		return nil, "ticket's algorithms are no longer allowed"
	}
	return &resumeTicket{state: &rs, ticket: append([]byte(nil), ticket...), expiry: expiry}, ""
}

// offersSuite reports whether our IKE proposals still allow s.
func (r *Responder) offersSuite(s Suite) bool {
	offered := wireProposals(r.cfg.IKEProposals, wire.ProtoIKE, nil)
	for _, p := range offered {
		var encr, prf, integ, dh bool
		for _, t := range p.Transforms {
			switch t.Type {
			case transformEncr:
				encr = encr || (t.ID == s.Encr && int(t.KeyLength) == s.KeyBits)
			case transformPRF:
				prf = prf || t.ID == s.PRF
			case transformInteg:
				integ = integ || t.ID == s.Integ
			case transformKE:
				dh = dh || t.ID == s.DH
			}
		}
		if s.Integ == ikecrypto.IntegNone {
			integ = true
		}
		if encr && prf && integ && dh {
			return true
		}
	}
	return false
}

// resumeNotify answers IKE_SESSION_RESUME with one unprotected notify.
func (r *Responder) resumeNotify(d Datagram, h wire.Header, typ wire.NotifyType) {
	m := wire.Message{
		Header:   wire.Header{SPIi: h.SPIi, Version: wire.Version2, Exchange: wire.ExchangeIKESessionResume, Flags: wire.FlagResponse},
		Payloads: []wire.Payload{&wire.Notify{NotifyType: typ}},
	}
	if raw, err := m.Encode(); err == nil {
		_ = r.t.Send(raw, d.From, d.Encap)
	}
}

// authenticateResumed checks a resumed IKE_AUTH (RFC 5723 §4.3.3): IDi as
// in the ticket, AUTH = prf(SK_pi, octets); ours is prf(SK_pr, octets)
// with no certificate.
func (r *Responder) authenticateResumed(ho *halfOpen, d Datagram, idi *wire.ID, ap *wire.Auth) ([]wire.Payload, auth.Identity, string) {
	rt := ho.resumed
	peer := auth.Identity{Type: idi.IDType, Data: idi.Data}
	if !peer.Equal(rt.state.IDi) {
		return nil, peer, "IDi differs from the ticket's"
	}
	octets := auth.SignedOctets(ho.keys.prf.Sum, ho.initReq, ho.nr, ho.keys.keys.SKpi, idi.Body())
	if want := resumeAuth(ho.keys, ho.keys.keys.SKpi, octets); subtle.ConstantTimeCompare(want, ap.Data) != 1 {
		return nil, peer, "resumption AUTH does not match"
	}
	if !r.cfg.Tickets.Consume(rt.ticket, rt.expiry) {
		return nil, peer, "ticket already used"
	}
	idr := identityPayload(r.cfg.LocalID, true)
	ours := auth.SignedOctets(ho.keys.prf.Sum, ho.initResp, ho.ni, ho.keys.keys.SKpr, idr.Body())
	return []wire.Payload{idr, &wire.Auth{Method: auth.MethodPSK, Data: resumeAuth(ho.keys, ho.keys.keys.SKpr, ours)}}, peer, ""
}
