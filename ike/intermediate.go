package ike

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// IKE_INTERMEDIATE (RFC 9242) carrying the additional key exchanges of RFC
// 9370 between IKE_SA_INIT and IKE_AUTH: one exchange per negotiated
// ADDKE, each protected by the keys of the one before, each mixing its
// secret into SKEYSEED. The large ML-KEM values thus travel encrypted and,
// unlike in IKE_SA_INIT, can be fragmented (RFC 7383).
//
//	initiator                                  responder
//	IKE_SA_INIT  SA(KE=x25519, ADDKE1=ML-KEM-768), KEi, Ni,
//	             N(INTERMEDIATE_EXCHANGE_SUPPORTED)      -->
//	                                                 <-- SA, KEr, Nr, N(...)
//	IKE_INTERMEDIATE  SK{KEi(1): encapsulation key}      -->
//	                                   <-- SK{KEr(1): ciphertext}
//	SKEYSEED(1) = prf(SK_d(0), SK(1) | Ni | Nr), keys re-derived
//	IKE_AUTH     SK{..., AUTH over ... | IntAuth}         -->

// intermediateState is what IKE_INTERMEDIATE adds to a handshake.
type intermediateState struct {
	supported bool     // the peer sent INTERMEDIATE_EXCHANGE_SUPPORTED
	done      int      // additional key exchanges completed
	lastMID   uint32   // message ID of the last IKE_INTERMEDIATE; 0: none ran
	intAuthI  []byte   // IntAuth_iN of RFC 9242 §3.3.2
	intAuthR  []byte   // IntAuth_rN
	kes       []uint16 // the additional key exchanges that ran, in order
}

// authMID is the message ID of the (first) IKE_AUTH request.
func (x *intermediateState) authMID() uint32 { return x.lastMID + 1 }

// intAuth is what RFC 9242 §3.3.2 appends to both AUTH payloads' signed
// octets: IntAuth_iN | IntAuth_rN | IKE_AUTH_MID. Without IKE_INTERMEDIATE
// it is empty, leaving the RFC 7296 octets.
func (x *intermediateState) intAuth() []byte {
	if x.lastMID == 0 {
		return nil
	}
	out := append(append([]byte(nil), x.intAuthI...), x.intAuthR...)
	return binary.BigEndian.AppendUint32(out, x.authMID())
}

// chainIntAuth returns prf(SK_p, prev | A | P) for one IKE_INTERMEDIATE
// message with header h and inner payloads ps (RFC 9242 §3.3.2): A is the
// IKE header and the Encrypted payload's generic header as if the message
// were sent unfragmented and its Encrypted payload held only the plaintext
// P (the Length fields count no IV, padding or ICV), P the inner payloads.
// skp is the SK_pi or SK_pr of the keys that protect this exchange.
func chainIntAuth(prf *ikecrypto.PRF, skp, prev []byte, h wire.Header, ps []wire.Payload) ([]byte, error) {
	first, pt, err := wire.AppendPayloads(nil, ps)
	if err != nil {
		return nil, err
	}
	h.NextPayload = wire.PayloadSK
	h.Length = uint32(wire.HeaderLen + 4 + len(pt))
	data := append([]byte(nil), prev...)
	data = h.Append(data)
	data = append(data, byte(first), 0, byte((4+len(pt))>>8), byte(4+len(pt)))
	data = append(data, pt...)
	return prf.Sum(skp, data), nil
}

// rekeyIntermediate replaces keys after an additional key exchange with
// secret sk (RFC 9370 §2.2.2): SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni |
// Nr), then prf+ over the IKE_SA_INIT nonces and SPIs as for a new SA.
func rekeyIntermediate(keys *saKeys, sk, ni, nr []byte, spii, spir uint64, initiator bool) (*saKeys, error) {
	skeyseed := ikecrypto.IntermediateSKEYSEED(keys.prf, keys.keys.SKd, sk, ni, nr)
	return deriveKeys(keys.suite, skeyseed, ni, nr, spii, spir, initiator)
}

// intermediate runs the initiator's IKE_INTERMEDIATE exchanges, one per
// additional key exchange the responder chose, message IDs 1, 2, ...
func (st *initState) intermediate(ctx context.Context) error {
	kes := st.suite.addKEs()
	if len(kes) == 0 {
		return nil
	}
	if !st.inter.supported {
		return errors.New("IKE_SA_INIT: gateway chose additional key exchanges but does not support IKE_INTERMEDIATE")
	}
	for _, g := range kes {
		if err := st.intermediateOne(ctx, g); err != nil {
			return err
		}
	}
	return nil
}

func (st *initState) intermediateOne(ctx context.Context, group uint16) error {
	name := ikecrypto.AlgorithmName(transformKE, group, 0)
	ke, err := ikecrypto.NewKeyExchange(group, st.rand)
	if err != nil {
		return err
	}
	mid := st.inter.lastMID + 1
	h := wire.Header{SPIi: st.spii, SPIr: st.spir, Version: wire.Version2, Exchange: wire.ExchangeIKEIntermediate, Flags: wire.FlagInitiator, MessageID: mid}
	ps := []wire.Payload{&wire.KE{Group: group, Data: ke.PublicKey()}}
	var req [][]byte
	if st.peerFragment {
		req, err = st.keys.sealFragmented(h, ps, maxDatagramFor(st.remote.Addr().Is6(), st.encap), st.rand)
	} else {
		var raw []byte
		raw, err = st.keys.seal(h, ps, st.rand)
		req = [][]byte{raw}
	}
	if err != nil {
		return err
	}
	authI, err := chainIntAuth(st.keys.prf, st.keys.keys.SKpi, st.inter.intAuthI, h, ps)
	if err != nil {
		return err
	}
	rh, inner, err := st.protectedExchange(ctx, req, wire.ExchangeIKEIntermediate, mid)
	if err != nil {
		return fmt.Errorf("IKE_INTERMEDIATE (%s) with %s: %w", name, st.remote, err)
	}
	if err := firstError(wire.ExchangeIKEIntermediate, inner); err != nil {
		return err
	}
	kr := wire.Find[*wire.KE](inner)
	if kr == nil || kr.Group != group {
		return fmt.Errorf("IKE_INTERMEDIATE: response lacks the %s KE payload", name)
	}
	sk, err := ke.SharedSecret(kr.Data)
	if err != nil {
		return fmt.Errorf("IKE_INTERMEDIATE: gateway's %s value: %w", name, err)
	}
	authR, err := chainIntAuth(st.keys.prf, st.keys.keys.SKpr, st.inter.intAuthR, rh, inner)
	if err != nil {
		return err
	}
	keys, err := rekeyIntermediate(st.keys, sk, st.ni, st.nr, st.spii, st.spir, true)
	if err != nil {
		return err
	}
	st.keys = keys
	st.inter.intAuthI, st.inter.intAuthR, st.inter.lastMID = authI, authR, mid
	st.inter.done++
	st.inter.kes = append(st.inter.kes, group)
	st.cfg.logger().Debug("IKE_INTERMEDIATE done", "key_exchange", name, "message_id", mid)
	return nil
}

// intermediateRequest handles an IKE_INTERMEDIATE request of a half-open
// SA (ho.mu held) and reports whether the datagram was one, answered or
// dropped. An IKE_AUTH request before every negotiated additional key
// exchange ran is dropped too: its keys could not be ours.
func (r *Responder) intermediateRequest(ho *halfOpen, d Datagram, h wire.Header) bool {
	if ho.resumed != nil {
		// IKE_SESSION_RESUME negotiates nothing: the ticket's suite may
		// name additional key exchanges, whose result is in its SK_d.
		return false
	}
	kes := ho.suite.addKEs()
	if h.Exchange == wire.ExchangeIKEAuth {
		return ho.inter.done < len(kes)
	}
	if h.Exchange != wire.ExchangeIKEIntermediate {
		return false
	}
	want := ho.authID + 1
	if h.MessageID != want || h.IsResponse() || !h.IsInitiator() || ho.inter.done >= len(kes) {
		return true
	}
	if ho.frags == nil {
		ho.frags = newReassembler(0, 0)
		ho.frags.expect(false, want)
	}
	rh, ps, complete, err := ho.frags.add(d.Data, ho.keys)
	if errors.Is(err, errNotFragment) {
		rh, ps, err = ho.keys.open(d.Data)
		complete = true
	}
	if err != nil || !complete {
		if err != nil {
			r.log.Debug("IKE_INTERMEDIATE does not decrypt", "from", d.From, "err", err)
		}
		return true
	}
	group := kes[ho.inter.done]
	name := ikecrypto.AlgorithmName(transformKE, group, 0)
	var resp []wire.Payload
	var sk []byte
	ke := wire.Find[*wire.KE](ps)
	switch {
	case ke == nil:
		r.log.Info("IKE_INTERMEDIATE without KE payload", "from", d.From)
		resp = []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidSyntax}}
	case ke.Group != group:
		// RFC 9370 §2.2.2: the KE of the n-th exchange is the n-th ADDKE.
		r.log.Info("IKE_INTERMEDIATE with the wrong key exchange", "from", d.From, "got", ke.Group, "want", name)
		resp = []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidSyntax}}
	default:
		var pub []byte
		if pub, sk, err = ikecrypto.RespondKeyExchange(group, ke.Data, r.rand); err != nil {
			r.log.Info("IKE_INTERMEDIATE: bad key exchange value", "from", d.From, "err", err)
			resp = []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidSyntax}}
		} else {
			resp = []wire.Payload{&wire.KE{Group: group, Data: pub}}
		}
	}
	hdr := wire.Header{SPIi: ho.spii, SPIr: ho.spir, Version: wire.Version2, Exchange: wire.ExchangeIKEIntermediate,
		Flags: wire.FlagResponse, MessageID: h.MessageID}
	var raw [][]byte
	if ho.peerFragment {
		raw, err = ho.keys.sealFragmented(hdr, resp, maxDatagramFor(d.From.Addr().Is6(), d.Encap), r.rand)
	} else {
		var one []byte
		one, err = ho.keys.seal(hdr, resp, r.rand)
		raw = [][]byte{one}
	}
	if err != nil {
		r.log.Warn("sealing IKE_INTERMEDIATE response", "err", err)
		return true
	}
	ho.authReq, ho.authResp, ho.authID, ho.frags = d.Data, raw, h.MessageID, nil
	if sk == nil {
		// Refused: the initiator gives up; retransmissions get the answer.
		ho.final = true
	} else {
		authI, err1 := chainIntAuth(ho.keys.prf, ho.keys.keys.SKpi, ho.inter.intAuthI, rh, ps)
		authR, err2 := chainIntAuth(ho.keys.prf, ho.keys.keys.SKpr, ho.inter.intAuthR, hdr, resp)
		keys, err3 := rekeyIntermediate(ho.keys, sk, ho.ni, ho.nr, ho.spii, ho.spir, false)
		if err := errors.Join(err1, err2, err3); err != nil {
			r.log.Warn("IKE_INTERMEDIATE keys", "err", err)
			return true
		}
		ho.keys = keys
		ho.inter.intAuthI, ho.inter.intAuthR, ho.inter.lastMID = authI, authR, h.MessageID
		ho.inter.done++
		ho.inter.kes = append(ho.inter.kes, group)
		r.log.Debug("IKE_INTERMEDIATE", "from", d.From, "key_exchange", name, "message_id", h.MessageID)
	}
	for _, m := range raw {
		_ = r.t.Send(m, d.From, d.Encap)
	}
	return true
}
