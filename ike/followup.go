package ike

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// IKE SA rekeys with additional key exchanges (RFC 9370 §2.2.4): the
// CREATE_CHILD_SA exchange carries the first key exchange and the
// responder's N(ADDITIONAL_KEY_EXCHANGE) link; one IKE_FOLLOWUP_KE
// exchange on the old IKE SA then runs each additional key exchange,
// echoing the link, and the new SA's keys come from all of them:
//
//	SKEYSEED = prf(SK_d (old), g^ir (new) | SK(1) | ... | SK(n) | Ni | Nr)

// followup is one end's state of an IKE SA or Child SA rekey whose
// additional key exchanges are still running.
type followup struct {
	prev       *ikeState
	suite      Suite
	secrets    [][]byte // g^ir, SK(1), ...
	ni, nr     []byte
	spii, spir uint64
	link       []byte         // the responder's ADDITIONAL_KEY_EXCHANGE data
	req        []wire.Payload // the CREATE_CHILD_SA request (responder: its notifies)
	started    time.Time      // responder: when the rekey began
	// child is the new Child SA of a Child SA rekey (keys still to be
	// derived), old the one it replaces; nil for an IKE SA rekey.
	child, old *ChildSA
}

// pendingKE is the additional key exchange that runs next.
func (f *followup) pendingKE() uint16 { return f.suite.addKEs()[len(f.secrets)-1] }

func (f *followup) done() bool { return len(f.secrets) > len(f.suite.addKEs()) }

func (f *followup) nextState(s *Session, initiator bool) (*ikeState, error) {
	return s.newIKEState(f.prev, f.suite, bytes.Join(f.secrets, nil), f.ni, f.nr, f.spii, f.spir, initiator)
}

// followupTimeout is how long a responder keeps a rekey waiting for its
// IKE_FOLLOWUP_KE before a new CREATE_CHILD_SA may replace it.
const followupTimeout = 30 * time.Second

// startFollowup continues our IKE SA rekey after the CREATE_CHILD_SA
// response chose additional key exchanges.
func (s *Session) startFollowup(prev *ikeState, suite Suite, gir, ni, nr []byte, spii, spir uint64, resp []wire.Payload) error {
	n := wire.FindNotify(resp, wire.NotifyAdditionalKeyExchange)
	if n == nil || len(n.Data) == 0 {
		return errors.New("IKE rekey: gateway chose additional key exchanges but sent no ADDITIONAL_KEY_EXCHANGE")
	}
	f := &followup{prev: prev, suite: suite, secrets: [][]byte{gir}, ni: ni, nr: nr, spii: spii, spir: spir, link: bytes.Clone(n.Data)}
	s.rekeys.ike = true
	return s.queueFollowup(f)
}

func (s *Session) queueFollowup(f *followup) error {
	g := f.pendingKE()
	ke, err := ikecrypto.NewKeyExchange(g, s.rand)
	if err != nil {
		s.rekeys.ike = false
		return err
	}
	ps := []wire.Payload{
		&wire.KE{Group: g, Data: ke.PublicKey()},
		&wire.Notify{NotifyType: wire.NotifyAdditionalKeyExchange, Data: f.link},
	}
	s.queue = append(s.queue, &request{exch: wire.ExchangeIKEFollowupKE, st: f.prev, payloads: ps,
		onResponse: func(resp []wire.Payload) {
			err := s.followupResponse(f, ke, resp)
			switch {
			case err == nil:
			case f.child != nil:
				s.rekeys.child = false
				s.rekeys.childFails++
				s.log.Info("child SA rekey failed in IKE_FOLLOWUP_KE, retrying", "err", err)
				s.chRekey = time.Now().Add(s.rekeyRetry())
			default:
				s.rekeys.ike = false
				s.log.Info("IKE SA rekey failed in IKE_FOLLOWUP_KE, retrying", "err", err)
				s.ikeRekey = time.Now().Add(s.rekeyRetry())
			}
		}})
	return nil
}

// startChildFollowup continues our Child SA rekey after the
// CREATE_CHILD_SA response chose additional key exchanges; c gets its
// keys once they all ran: KEYMAT = prf+(SK_d, g^ir (new) | SK(1) | ... |
// Ni | Nr) (RFC 9370 §2.2.4).
func (s *Session) startChildFollowup(old, c *ChildSA, gir, ni, nr []byte, resp []wire.Payload) error {
	n := wire.FindNotify(resp, wire.NotifyAdditionalKeyExchange)
	if n == nil || len(n.Data) == 0 {
		return errors.New("child SA rekey: gateway chose additional key exchanges but sent no ADDITIONAL_KEY_EXCHANGE")
	}
	f := &followup{prev: s.cur, suite: c.Suite, secrets: [][]byte{gir}, ni: ni, nr: nr, link: bytes.Clone(n.Data), child: c, old: old}
	// Busy until the last IKE_FOLLOWUP_KE: the gateway's own rekeys of
	// either SA get TEMPORARY_FAILURE meanwhile.
	s.rekeys.child = true
	return s.queueFollowup(f)
}

// answerChildFollowup keeps the peer's Child SA rekey waiting for its
// IKE_FOLLOWUP_KE exchanges and adds the link to resp.
func (s *Session) answerChildFollowup(f *followup, resp []wire.Payload) []wire.Payload {
	f.link, _ = randomBytes(s.rand, 8)
	f.started = time.Now()
	s.rekeys.followup = f
	return append(resp, &wire.Notify{NotifyType: wire.NotifyAdditionalKeyExchange, Data: f.link})
}

func (s *Session) followupResponse(f *followup, ke ikecrypto.KeyExchange, resp []wire.Payload) error {
	if err := firstError(wire.ExchangeIKEFollowupKE, resp); err != nil {
		return err
	}
	if f.prev != s.cur {
		return errors.New("IKE SA changed during its rekey")
	}
	g := ke.Group()
	peer := wire.Find[*wire.KE](resp)
	if peer == nil || peer.Group != g {
		return fmt.Errorf("IKE_FOLLOWUP_KE response lacks the %s KE payload", ikecrypto.AlgorithmName(transformKE, g, 0))
	}
	sk, err := ke.SharedSecret(peer.Data)
	if err != nil {
		return err
	}
	f.secrets = append(f.secrets, sk)
	if !f.done() {
		n := wire.FindNotify(resp, wire.NotifyAdditionalKeyExchange)
		if n == nil || len(n.Data) == 0 {
			return errors.New("IKE_FOLLOWUP_KE response lacks the link to the next key exchange")
		}
		f.link = bytes.Clone(n.Data)
		return s.queueFollowup(f)
	}
	if f.child != nil {
		if err := f.child.deriveKeys(f.prev.keys.prf, f.prev.keys.keys.SKd, bytes.Join(f.secrets, nil), f.ni, f.nr, true); err != nil {
			return err
		}
		s.rekeys.child, s.rekeys.childFails = false, 0
		if s.child != f.old {
			return errors.New("child SA changed during its rekey")
		}
		s.log.Debug("child SA rekeyed with additional key exchanges", "key_exchanges", fmt.Sprint(f.suite.KeyExchanges()))
		s.installChild(f.old, f.child, true)
		s.deleteChild(f.old)
		return nil
	}
	next, err := f.nextState(s, true)
	if err != nil {
		return err
	}
	s.rekeys.ike = false
	s.log.Debug("IKE SA rekeyed with additional key exchanges", "key_exchanges", fmt.Sprint(f.suite.KeyExchanges()))
	s.completeIKERekey(f.prev, next, resp)
	return nil
}

// answerFollowupRekey answers the peer's CREATE_CHILD_SA that rekeys the
// IKE SA with additional key exchanges: SA, Nr, KEr and the link; the new
// SA exists only after the last IKE_FOLLOWUP_KE.
func (s *Session) answerFollowupRekey(chosen wire.Proposal, f *followup, pub []byte) []wire.Payload {
	f.link, _ = randomBytes(s.rand, 8)
	f.started = time.Now()
	s.rekeys.followup = f
	return []wire.Payload{&wire.SA{Proposals: []wire.Proposal{chosen}}, &wire.Nonce{Data: f.nr},
		&wire.KE{Group: f.suite.DH, Data: pub},
		&wire.Notify{NotifyType: wire.NotifyAdditionalKeyExchange, Data: f.link}}
}

// followupRequest answers IKE_FOLLOWUP_KE.
func (s *Session) followupRequest(st *ikeState, ps []wire.Payload) ([]wire.Payload, func()) {
	f := s.rekeys.followup
	n := wire.FindNotify(ps, wire.NotifyAdditionalKeyExchange)
	if f == nil || f.prev != st || n == nil || !bytes.Equal(n.Data, f.link) {
		// RFC 9370 §2.2.4: an unknown link.
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyStateNotFound}}, nil
	}
	g := f.pendingKE()
	ke := wire.Find[*wire.KE](ps)
	if ke == nil || ke.Group != g {
		s.rekeys.followup = nil
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidSyntax}}, nil
	}
	pub, sk, err := ikecrypto.RespondKeyExchange(g, ke.Data, s.rand)
	if err != nil {
		s.rekeys.followup = nil
		s.log.Info("IKE_FOLLOWUP_KE: bad key exchange value", "err", err)
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidSyntax}}, nil
	}
	f.secrets = append(f.secrets, sk)
	resp := []wire.Payload{&wire.KE{Group: g, Data: pub}}
	if !f.done() {
		f.link, _ = randomBytes(s.rand, 8)
		return append(resp, &wire.Notify{NotifyType: wire.NotifyAdditionalKeyExchange, Data: f.link}), nil
	}
	s.rekeys.followup = nil
	if f.child != nil {
		if f.old != s.child {
			return []wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: spiBytes(f.old.SPIOut), NotifyType: wire.NotifyChildSANotFound}}, nil
		}
		if err := f.child.deriveKeys(f.prev.keys.prf, f.prev.keys.keys.SKd, bytes.Join(f.secrets, nil), f.ni, f.nr, false); err != nil {
			return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyNoProposalChosen}}, nil
		}
		// Installed before the response leaves: the peer sends on the
		// new SA once it has the response.
		s.installChild(f.old, f.child, false)
		return resp, nil
	}
	next, err := f.nextState(s, false)
	if err != nil {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyNoProposalChosen}}, nil
	}
	// The new SA's token and ticket, from its final SK_d.
	resp = append(resp, s.respondNotifies(next, true, f.req)...)
	prev := f.prev
	s.log.Info("IKE SA rekeyed with additional key exchanges", "key_exchanges", fmt.Sprint(f.suite.KeyExchanges()))
	return resp, func() {
		s.switchIKE(prev, next)
		if s.cfg.RequestTicket && s.initiatorRole {
			s.queueNotifies([]*wire.Notify{{NotifyType: wire.NotifyTicketRequest}})
		}
	}
}

// followupBusy reports a peer's rekey waiting for IKE_FOLLOWUP_KE; one
// abandoned for followupTimeout is forgotten.
func (s *Session) followupBusy() bool {
	f := s.rekeys.followup
	if f != nil && time.Since(f.started) > followupTimeout {
		s.rekeys.followup = nil
		return false
	}
	return f != nil
}
