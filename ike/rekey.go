package ike

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"time"

	"crypto/rand"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// rekeyState tracks the rekeys we started and have not finished.
type rekeyState struct {
	child bool // a Child SA rekey of ours is queued or in flight
	ike   bool // an IKE SA rekey of ours is queued or in flight
	// childOf is the Child SA our rekey replaces; childReq its request.
	childOf  *ChildSA
	childReq *request
	// childFails counts our failed Child SA rekeys in a row.
	childFails int
	// peer is the gateway's rekey of the same Child SA, answered while
	// ours was in flight (RFC 7296 §2.8.1): the SA it made and its nonces.
	peer *collision
	// followup is the peer's IKE SA rekey waiting for its IKE_FOLLOWUP_KE
	// exchanges (RFC 9370).
	followup *followup
}

// collision is the gateway's half of a simultaneous Child SA rekey.
type collision struct {
	child  *ChildSA
	ni, nr []byte
}

// lowestNonce is RFC 7296 §2.8.1's order: octet by octet, a nonce that
// ends first being the lower.
func lowestNonce(ns ...[]byte) []byte {
	low := ns[0]
	for _, n := range ns[1:] {
		if bytes.Compare(n, low) < 0 {
			low = n
		}
	}
	return low
}

// rekeyRetryBase is how long to wait, plus up to as much again at random,
// before trying a rekey again that the gateway refused for now
// (TEMPORARY_FAILURE, a collision): the jitter keeps two ends that refuse
// each other from retrying in step.
const rekeyRetryBase = 2 * time.Second

// maxRekeyFails is how many Child SA rekeys in a row may fail before the
// session gives up and reconnects.
const maxRekeyFails = 5

func (s *Session) rekeyRetry() time.Duration {
	return rekeyRetryBase + time.Duration(mrand.Int64N(int64(rekeyRetryBase)))
}

// rekeyTime is when to rekey an SA established at now: lifetime minus up
// to 10 % jitter, so both ends rarely start at once (RFC 7296 §2.8.1).
func rekeyTime(now time.Time, lifetime time.Duration, r io.Reader) time.Time {
	if lifetime <= 0 {
		return time.Time{}
	}
	jitter := time.Duration(0)
	if span := int64(lifetime / 10); span > 0 {
		if n, err := rand.Int(r, big.NewInt(span)); err == nil {
			jitter = time.Duration(n.Int64())
		}
	}
	return now.Add(lifetime - jitter)
}

func randomSPI32(r io.Reader) (uint32, []byte, error) {
	var b [4]byte
	for binary.BigEndian.Uint32(b[:]) < 256 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
	}
	return binary.BigEndian.Uint32(b[:]), b[:], nil
}

// selectProposal is the responder's choice (RFC 7296 §2.7): the first of
// the peer's proposals that one of ours covers, each transform type taken
// as the peer's first acceptable one. The chosen proposal carries spi.
func selectProposal(peer []wire.Proposal, ours []ikecrypto.Proposal, protocol uint8, spi []byte) (wire.Proposal, Suite, bool) {
	for _, pp := range peer {
		if pp.Protocol != protocol {
			continue
		}
		for _, op := range ours {
			if wp, ok := coverProposal(pp, op, protocol, spi); ok {
				s, _, err := checkChosen(&wire.SA{Proposals: []wire.Proposal{wp}}, []wire.Proposal{wp}, protocol)
				if err == nil {
					return wp, s, true
				}
			}
		}
	}
	return wire.Proposal{}, Suite{}, false
}

// coverProposal picks, for every transform type the peer offers, its
// first transform that op lists. ESN "no" is fine when op says nothing
// about ESN.
func coverProposal(pp wire.Proposal, op ikecrypto.Proposal, protocol uint8, spi []byte) (wire.Proposal, bool) {
	var chosen []wire.Transform
	for _, typ := range []uint8{transformEncr, transformPRF, transformInteg, transformKE, transformESN, 6, 7, 8, 9, 10, 11, 12} {
		if typ >= ikecrypto.TransformAddKE1 && !addKECovered(pp, op, typ) {
			return wire.Proposal{}, false
		}
		offered, picked := false, false
		for _, t := range pp.Transforms {
			if t.Type != typ || picked {
				continue
			}
			offered = true
			// ESN "no" and an optional additional key exchange (NONE
			// offered) are fine when op says nothing about their type.
			implied := (typ == transformESN && t.ID == ikecrypto.ESNNo || typ >= ikecrypto.TransformAddKE1 && t.ID == ikecrypto.GroupNone) && !hasType(op, typ)
			for _, a := range op.Algorithms {
				if implied || (a.Type == typ && a.ID == t.ID && uint16(a.KeyBits) == t.KeyLength) {
					chosen = append(chosen, wire.Transform{Type: t.Type, ID: t.ID, KeyLength: t.KeyLength})
					picked = true
					break
				}
			}
		}
		if offered != picked {
			return wire.Proposal{}, false
		}
	}
	return wire.Proposal{Number: pp.Number, Protocol: protocol, SPI: spi, Transforms: chosen}, true
}

func hasType(p ikecrypto.Proposal, typ uint8) bool {
	for _, a := range p.Algorithms {
		if a.Type == typ {
			return true
		}
	}
	return false
}

// startChildRekey queues a CREATE_CHILD_SA that rekeys the Child SA in use.
func (s *Session) startChildRekey() {
	old := s.child
	if old == nil || s.rekeys.child || s.rekeys.ike || s.followupBusy() {
		if old != nil {
			s.chRekey = time.Now().Add(s.rekeyRetry())
		}
		return
	}
	spi, spiB, err := randomSPI32(s.rand)
	if err != nil {
		return
	}
	ni, err := randomBytes(s.rand, 32)
	if err != nil {
		return
	}
	offered := wireProposals(s.cfg.ESPProposals, wire.ProtoESP, spiB)
	var ke ikecrypto.KeyExchange
	if g := firstGroup(s.cfg.ESPProposals); g != 0 {
		if ke, err = ikecrypto.NewKeyExchange(g, s.rand); err != nil {
			return
		}
	}
	ps := []wire.Payload{
		&wire.Notify{Protocol: wire.ProtoESP, SPI: spiBytes(old.SPIIn), NotifyType: wire.NotifyRekeySA},
		&wire.SA{Proposals: offered},
		&wire.Nonce{Data: ni},
	}
	if ke != nil {
		ps = append(ps, &wire.KE{Group: ke.Group(), Data: ke.PublicKey()})
	}
	ours, theirs := s.tsOf(old)
	ps = append(ps, &wire.TS{Selectors: ours}, &wire.TS{Responder: true, Selectors: theirs})
	req := &request{exch: wire.ExchangeCreateChildSA, payloads: ps}
	req.onResponse = func(resp []wire.Payload) {
		peer := s.rekeys.peer
		s.rekeys.child, s.rekeys.childOf, s.rekeys.childReq, s.rekeys.peer = false, nil, nil, nil
		err := s.childRekeyed(old, resp, offered, spi, ni, ke, peer)
		if err != nil && peer != nil {
			// Ours failed; the gateway's rekey stands alone.
			s.adoptPeerRekey(old, peer)
			return
		}
		if err == nil {
			s.rekeys.childFails = 0
			return
		}
		s.rekeys.childFails++
		var ne *NotifyError
		if (errors.As(err, &ne) && ne.Type == wire.NotifyChildSANotFound) || s.rekeys.childFails >= maxRekeyFails {
			// The gateway lost the Child SA, or will not rekey it: the
			// tunnel would silently stop at its hard lifetime, so end the
			// session and let the client reconnect.
			s.finish(fmt.Errorf("child SA rekey failed: %w", err))
			return
		}
		s.log.Info("child SA rekey failed, retrying", "err", err)
		s.chRekey = time.Now().Add(s.rekeyRetry())
	}
	s.rekeys.child, s.rekeys.childOf, s.rekeys.childReq = true, old, req
	s.queue = append(s.queue, req)
}

// childRekeyed completes our Child SA rekey from the gateway's response.
func (s *Session) childRekeyed(old *ChildSA, ps []wire.Payload, offered []wire.Proposal, spi uint32, ni []byte, ke ikecrypto.KeyExchange, peer *collision) error {
	if err := firstError(wire.ExchangeCreateChildSA, ps); err != nil {
		return err
	}
	if s.child != old && (peer == nil || s.child != peer.child) {
		return errors.New("child SA changed during its rekey")
	}
	suite, peerSPI, err := checkChosen(wire.Find[*wire.SA](ps), offered, wire.ProtoESP)
	if err != nil {
		return err
	}
	nonce := wire.Find[*wire.Nonce](ps)
	if nonce == nil || len(peerSPI) != 4 {
		return errors.New("CREATE_CHILD_SA response lacks a nonce or SPI")
	}
	gir, err := childSharedSecret(ke, suite, wire.Find[*wire.KE](ps))
	if err != nil {
		return err
	}
	c := &ChildSA{Suite: suite, SPIIn: spi, SPIOut: binary.BigEndian.Uint32(peerSPI), TSi: old.TSi, TSr: old.TSr, Encap: old.Encap}
	for _, p := range ps {
		if ts, ok := p.(*wire.TS); ok {
			// The response's TSr is the peer's side; ChildSA.TSi is the
			// client's side whoever started the exchange.
			if ts.Responder == s.initiatorRole {
				c.TSr = ts.Selectors
			} else {
				c.TSi = ts.Selectors
			}
		}
	}
	if suite.HasAddKE() {
		if peer != nil {
			return errors.New("simultaneous Child SA rekey with additional key exchanges: the gateway's stands")
		}
		return s.startChildFollowup(old, c, gir, ni, nonce.Data, ps)
	}
	if err := c.deriveKeys(s.cur.keys.prf, s.cur.keys.keys.SKd, gir, ni, nonce.Data, true); err != nil {
		return err
	}
	if peer != nil {
		s.resolveCollision(old, c, ni, nonce.Data, peer)
		return nil
	}
	s.installChild(old, c, true)
	// We started the rekey, so we delete the old pair (RFC 7296 §2.8).
	s.deleteChild(old)
	return nil
}

// resolveCollision keeps one of two SAs made by simultaneous rekeys of
// old: ours (the exchange with nonces ni, nr) or the gateway's. The SA
// created with the lowest of the four nonces is redundant and closed by
// the end that created it; the creator of the survivor deletes old.
func (s *Session) resolveCollision(old, ours *ChildSA, ni, nr []byte, peer *collision) {
	low := lowestNonce(ni, nr, peer.ni, peer.nr)
	oursRedundant := bytes.Equal(low, ni) || bytes.Equal(low, nr)
	s.collisions++
	s.log.Debug("simultaneous child SA rekey", "ours_redundant", oursRedundant)
	if !oursRedundant {
		// Ours survives; the gateway closes its SA, we delete old.
		s.extra = append(s.extra, peer.child)
		s.installChild(old, ours, true)
		s.deleteChild(old)
		return
	}
	// The gateway's survives: it deletes old; we close ours.
	if s.hooks.ChildAdded != nil {
		s.hooks.ChildAdded(ours)
	}
	s.extra = append(s.extra, ours)
	s.adoptPeerRekey(old, peer)
	s.deleteChild(ours)
}

// adoptPeerRekey makes the gateway's rekeyed SA the one in use; we send on
// it once the gateway has deleted old.
func (s *Session) adoptPeerRekey(old *ChildSA, peer *collision) {
	if s.child == old {
		s.installChild(old, peer.child, false)
		return
	}
	// old is already gone: the gateway's SA is in use everywhere.
	s.child = peer.child
	s.chRekey = rekeyTime(time.Now(), s.timers.ChildLifetime, s.rand)
	if s.hooks.ChildOutbound != nil {
		s.hooks.ChildOutbound(peer.child)
	}
}

// deleteChild asks the gateway to delete c and retires it once answered.
func (s *Session) deleteChild(c *ChildSA) {
	s.queue = append(s.queue, &request{exch: wire.ExchangeInformational,
		payloads:   []wire.Payload{&wire.Delete{Protocol: wire.ProtoESP, SPISize: 4, SPIs: [][]byte{spiBytes(c.SPIIn)}}},
		onResponse: func([]wire.Payload) { s.forgetChild(c) }})
}

// forgetChild drops a replaced or redundant Child SA after its delete.
func (s *Session) forgetChild(c *ChildSA) {
	switch {
	case s.oldChild == c:
		s.oldChild = nil
	default:
		for i, x := range s.extra {
			if x == c {
				s.extra = append(s.extra[:i:i], s.extra[i+1:]...)
			}
		}
	}
	if s.hooks.ChildGone != nil {
		s.hooks.ChildGone(c)
	}
}

func childSharedSecret(ke ikecrypto.KeyExchange, suite Suite, peer *wire.KE) ([]byte, error) {
	if suite.DH == 0 {
		return nil, nil
	}
	if ke == nil || peer == nil || peer.Group != suite.DH || ke.Group() != suite.DH {
		return nil, errors.New("CREATE_CHILD_SA: key exchange does not match the chosen group")
	}
	return ke.SharedSecret(peer.Data)
}

// installChild switches the data plane to next, keeping prev's inbound.
// When the gateway started the rekey (sendNow false) we keep sending on
// prev until the gateway deletes it, since until then it may not have
// installed next yet.
func (s *Session) installChild(prev, next *ChildSA, sendNow bool) {
	s.oldChild, s.child = prev, next
	s.sendWait = nil
	if !sendNow {
		s.sendWait = next
	}
	s.chRekey = rekeyTime(time.Now(), s.timers.ChildLifetime, s.rand)
	if s.hooks.ChildRekeyed != nil {
		s.hooks.ChildRekeyed(prev, next, sendNow)
	}
}

// createChildRequest answers the gateway's CREATE_CHILD_SA: a Child SA or
// IKE SA rekey. New Child SAs beyond the one we use are refused.
func (s *Session) createChildRequest(ps []wire.Payload) ([]wire.Payload, func()) {
	sa := wire.Find[*wire.SA](ps)
	nonce := wire.Find[*wire.Nonce](ps)
	if sa == nil || nonce == nil || len(sa.Proposals) == 0 {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidSyntax}}, nil
	}
	if sa.Proposals[0].Protocol == wire.ProtoIKE {
		return s.ikeRekeyRequest(sa, nonce, wire.Find[*wire.KE](ps), ps)
	}
	rekey := wire.FindNotify(ps, wire.NotifyRekeySA)
	if rekey == nil {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyNoAdditionalSAs}}, nil
	}
	old := s.childByOutSPI(rekey.SPI)
	if old == nil || old != s.child {
		return []wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: rekey.SPI, NotifyType: wire.NotifyChildSANotFound}}, nil
	}
	if s.rekeys.child && s.rekeys.childOf == old && (s.out == nil || s.out.req != s.rekeys.childReq) {
		// Our rekey of the same SA is only queued: the gateway's makes it
		// unnecessary.
		for i, r := range s.queue {
			if r == s.rekeys.childReq {
				s.queue = append(s.queue[:i:i], s.queue[i+1:]...)
				break
			}
		}
		s.rekeys.child, s.rekeys.childOf, s.rekeys.childReq = false, nil, nil
	}
	colliding := s.rekeys.child && s.rekeys.childOf == old && s.rekeys.peer == nil
	if s.rekeys.ike || (s.rekeys.child && !colliding) || s.followupBusy() {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyTemporaryFailure}}, nil
	}
	spi, spiB, err := randomSPI32(s.rand)
	if err != nil {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyTemporaryFailure}}, nil
	}
	chosen, suite, ok := selectProposal(sa.Proposals, s.cfg.ESPProposals, wire.ProtoESP, spiB)
	var peerSPI []byte
	for _, p := range sa.Proposals {
		if p.Number == chosen.Number {
			peerSPI = p.SPI
		}
	}
	if !ok || len(peerSPI) != 4 {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyNoProposalChosen}}, nil
	}
	nr, err := randomBytes(s.rand, 32)
	if err != nil {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyTemporaryFailure}}, nil
	}
	if suite.HasAddKE() && colliding {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyTemporaryFailure}}, nil
	}
	resp := []wire.Payload{&wire.SA{Proposals: []wire.Proposal{chosen}}, &wire.Nonce{Data: nr}}
	var gir []byte
	if suite.DH != 0 {
		peerKE := wire.Find[*wire.KE](ps)
		if peerKE == nil || peerKE.Group != suite.DH {
			return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidKEPayload, Data: []byte{byte(suite.DH >> 8), byte(suite.DH)}}}, nil
		}
		ke, err := ikecrypto.NewKeyExchange(suite.DH, s.rand)
		if err != nil {
			return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyNoProposalChosen}}, nil
		}
		if gir, err = ke.SharedSecret(peerKE.Data); err != nil {
			return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidSyntax}}, nil
		}
		resp = append(resp, &wire.KE{Group: suite.DH, Data: ke.PublicKey()})
	}
	// The peer is the initiator of this exchange: its TSi is its side.
	c := &ChildSA{Suite: suite, SPIIn: spi, SPIOut: binary.BigEndian.Uint32(peerSPI), TSi: old.TSi, TSr: old.TSr, Encap: old.Encap}
	ours, theirs := s.tsOf(old)
	if suite.HasAddKE() {
		f := &followup{prev: s.cur, suite: suite, secrets: [][]byte{gir}, ni: nonce.Data, nr: nr, child: c, old: old}
		return s.answerChildFollowup(f, append(resp, &wire.TS{Selectors: theirs}, &wire.TS{Responder: true, Selectors: ours})), nil
	}
	if err := c.deriveKeys(s.cur.keys.prf, s.cur.keys.keys.SKd, gir, nonce.Data, nr, false); err != nil {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyNoProposalChosen}}, nil
	}
	resp = append(resp, &wire.TS{Selectors: theirs}, &wire.TS{Responder: true, Selectors: ours})
	if colliding {
		// Both ends rekey at once (RFC 7296 §2.8.1, §2.25.1): answer as
		// usual, accept traffic on the new SA, and decide which survives
		// by the nonces once our own rekey completes.
		s.rekeys.peer = &collision{child: c, ni: nonce.Data, nr: nr}
		if s.hooks.ChildAdded != nil {
			s.hooks.ChildAdded(c)
		}
		return resp, nil
	}
	// The new inbound SA is installed before the response leaves: the
	// peer sends on it as soon as the response arrives (RFC 7296 §2.8).
	s.installChild(old, c, false)
	return resp, nil
}

// startIKERekey queues a CREATE_CHILD_SA that rekeys the IKE SA (§2.18).
func (s *Session) startIKERekey() {
	if s.rekeys.ike || s.rekeys.child || s.old != nil || s.followupBusy() {
		s.ikeRekey = time.Now().Add(s.rekeyRetry())
		return
	}
	s.rekeys.ike = true
	s.queueIKERekey(s.cur.suite.DH)
}

func (s *Session) queueIKERekey(group uint16) {
	spi := randomSPI(s.rand)
	var spiB [8]byte
	binary.BigEndian.PutUint64(spiB[:], spi)
	ni, err := randomBytes(s.rand, 32)
	if err != nil {
		s.rekeys.ike = false
		return
	}
	ke, err := ikecrypto.NewKeyExchange(group, s.rand)
	if err != nil {
		s.rekeys.ike = false
		return
	}
	offered := wireProposals(s.cfg.IKEProposals, wire.ProtoIKE, spiB[:])
	prev := s.cur
	ps := []wire.Payload{&wire.SA{Proposals: offered}, &wire.Nonce{Data: ni}, &wire.KE{Group: group, Data: ke.PublicKey()}}
	if s.cfg.RequestTicket && s.initiatorRole {
		// RFC 5723 §4.1: a ticket for the new IKE SA.
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyTicketRequest})
	}
	s.queue = append(s.queue, &request{exch: wire.ExchangeCreateChildSA,
		payloads: ps,
		onResponse: func(ps []wire.Payload) {
			if n := wire.FindNotify(ps, wire.NotifyInvalidKEPayload); n != nil && len(n.Data) == 2 {
				if g := binary.BigEndian.Uint16(n.Data); g != group && offersGroup(s.cfg.IKEProposals, g) {
					s.queueIKERekey(g)
					return
				}
			}
			s.rekeys.ike = false
			if err := s.ikeRekeyed(prev, ps, offered, spi, ni, ke); err != nil {
				s.log.Info("IKE SA rekey failed, retrying", "err", err)
				s.ikeRekey = time.Now().Add(s.rekeyRetry())
			}
		}})
}

func (s *Session) ikeRekeyed(prev *ikeState, ps []wire.Payload, offered []wire.Proposal, spi uint64, ni []byte, ke ikecrypto.KeyExchange) error {
	if err := firstError(wire.ExchangeCreateChildSA, ps); err != nil {
		return err
	}
	if prev != s.cur {
		return errors.New("IKE SA changed during its rekey")
	}
	suite, peerSPI, err := checkChosen(wire.Find[*wire.SA](ps), offered, wire.ProtoIKE)
	if err != nil {
		return err
	}
	nonce := wire.Find[*wire.Nonce](ps)
	peerKE := wire.Find[*wire.KE](ps)
	if nonce == nil || peerKE == nil || len(peerSPI) != 8 || peerKE.Group != ke.Group() || suite.DH != ke.Group() {
		return errors.New("IKE rekey response lacks a nonce, KE or SPI, or uses another group")
	}
	gir, err := ke.SharedSecret(peerKE.Data)
	if err != nil {
		return err
	}
	if suite.HasAddKE() {
		return s.startFollowup(prev, suite, gir, ni, nonce.Data, spi, binary.BigEndian.Uint64(peerSPI), ps)
	}
	next, err := s.newIKEState(prev, suite, gir, ni, nonce.Data, spi, binary.BigEndian.Uint64(peerSPI), true)
	if err != nil {
		return err
	}
	s.completeIKERekey(prev, next, ps)
	return nil
}

// completeIKERekey moves to the IKE SA our rekey made and deletes prev;
// ps is the last response of the rekey.
func (s *Session) completeIKERekey(prev, next *ikeState, ps []wire.Payload) {
	s.switchIKE(prev, next)
	s.reportNotifies(next, ps)
	if s.hooks.Announce != nil {
		if ns := s.hooks.Announce(next.spii, next.spir); len(ns) > 0 {
			s.queueNotifies(ns)
		}
	}
	// We started it, so we delete the old IKE SA.
	s.queue = append(s.queue, &request{exch: wire.ExchangeInformational, st: prev, quiet: true,
		payloads:   []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}},
		rt:         Retransmit{Timeout: s.cfg.Retransmit.Timeout, Base: 2, Tries: 3},
		onResponse: func([]wire.Payload) { s.dropOld(prev) }})
}

// ikeRekeyRequest answers the gateway's IKE SA rekey.
func (s *Session) ikeRekeyRequest(sa *wire.SA, nonce *wire.Nonce, peerKE *wire.KE, req []wire.Payload) ([]wire.Payload, func()) {
	if s.rekeys.ike || s.rekeys.child || s.old != nil || s.followupBusy() {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyTemporaryFailure}}, nil
	}
	spi := randomSPI(s.rand)
	var spiB [8]byte
	binary.BigEndian.PutUint64(spiB[:], spi)
	chosen, suite, ok := selectProposal(sa.Proposals, s.cfg.IKEProposals, wire.ProtoIKE, spiB[:])
	if !ok {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyNoProposalChosen}}, nil
	}
	var peerSPI []byte
	for _, p := range sa.Proposals {
		if p.Number == chosen.Number {
			peerSPI = p.SPI
		}
	}
	if len(peerSPI) != 8 {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidSyntax}}, nil
	}
	if peerKE == nil || peerKE.Group != suite.DH {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidKEPayload, Data: []byte{byte(suite.DH >> 8), byte(suite.DH)}}}, nil
	}
	ke, err := ikecrypto.NewKeyExchange(suite.DH, s.rand)
	if err != nil {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyNoProposalChosen}}, nil
	}
	gir, err := ke.SharedSecret(peerKE.Data)
	if err != nil {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidSyntax}}, nil
	}
	nr, err := randomBytes(s.rand, 32)
	if err != nil {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyTemporaryFailure}}, nil
	}
	prev := s.cur
	if suite.HasAddKE() {
		f := &followup{prev: prev, suite: suite, secrets: [][]byte{gir}, ni: nonce.Data, nr: nr,
			spii: binary.BigEndian.Uint64(peerSPI), spir: spi, req: req}
		return s.answerFollowupRekey(chosen, f, ke.PublicKey()), nil
	}
	// The gateway started the rekey, so it is the new SA's initiator.
	next, err := s.newIKEState(prev, suite, gir, nonce.Data, nr, binary.BigEndian.Uint64(peerSPI), spi, false)
	if err != nil {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyNoProposalChosen}}, nil
	}
	resp := []wire.Payload{&wire.SA{Proposals: []wire.Proposal{chosen}}, &wire.Nonce{Data: nr}, &wire.KE{Group: suite.DH, Data: ke.PublicKey()}}
	// The new SA's token (RFC 6290 §4.3) and ticket (RFC 5723 §4.1).
	resp = append(resp, s.respondNotifies(next, true, req)...)
	return resp, func() {
		s.switchIKE(prev, next)
		if s.cfg.RequestTicket && s.initiatorRole {
			// The gateway rekeyed: ask for a ticket of the new SA (§4.1).
			s.queueNotifies([]*wire.Notify{{NotifyType: wire.NotifyTicketRequest}})
		}
	}
}

// newIKEState derives the keys of a rekeyed IKE SA: SKEYSEED =
// prf(SK_d (old), g^ir (new) | Ni | Nr) with the old SA's PRF, the rest
// with the new SA's (RFC 7296 §2.18).
func (s *Session) newIKEState(prev *ikeState, suite Suite, gir, ni, nr []byte, spii, spir uint64, initiator bool) (*ikeState, error) {
	skeyseed := ikecrypto.RekeySKEYSEED(prev.keys.prf, prev.keys.keys.SKd, gir, ni, nr)
	keys, err := deriveKeys(suite, skeyseed, ni, nr, spii, spir, initiator)
	if err != nil {
		return nil, err
	}
	return &ikeState{spii: spii, spir: spir, initiator: initiator, keys: keys, suite: suite}, nil
}

// switchIKE moves the session to the rekeyed IKE SA; prev stays until it
// is deleted.
func (s *Session) switchIKE(prev, next *ikeState) {
	s.t.registerCh(next.ourSPI(), s.ch)
	s.old, s.cur = prev, next
	s.frags = newReassembler(0, 0) // message IDs start again at 0
	s.ikeRekey = rekeyTime(time.Now(), s.timers.IKELifetime, s.rand)
	s.mu.Lock()
	s.spis = [2]uint64{next.spii, next.spir}
	s.mu.Unlock()
	if s.hooks.IKERekeyed != nil {
		s.hooks.IKERekeyed(next.spii, next.spir)
	}
}

// dropOld forgets an IKE SA replaced by a rekey.
func (s *Session) dropOld(st *ikeState) {
	if p := s.out; p != nil && p.st == st {
		// The gateway moved to the new SA and deleted this one: stop
		// retransmitting on it (RFC 7296 §2.25.2). A liveness check is
		// answered by the rekey itself; anything else is not needed now.
		s.out = nil
		if p.req.result != nil {
			p.req.result <- nil
		}
	}
	if s.old == st {
		s.old = nil
		if st.ourSPI() != s.cur.ourSPI() {
			s.t.unregister(st.ourSPI())
		}
	}
}

// tsOf returns c's traffic selectors as ours and the peer's: ChildSA.TSi
// is the client's (the IKE SA's original initiator) side in both roles,
// while a CREATE_CHILD_SA's TSi is the side of whoever sends the request.
func (s *Session) tsOf(c *ChildSA) (ours, theirs []wire.Selector) {
	if s.initiatorRole {
		return c.TSi, c.TSr
	}
	return c.TSr, c.TSi
}
