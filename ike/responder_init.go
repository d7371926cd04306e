package ike

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// initKey names an IKE_SA_INIT request for retransmission detection
// (RFC 7296 §2.1: the initiator's SPI and address).
type initKey struct {
	spii uint64
	from netip.AddrPort
}

// halfOpen is an IKE SA after IKE_SA_INIT, waiting for IKE_AUTH. The
// fields above mu are set before it is published and never change.
type halfOpen struct {
	spii, spir        uint64
	from              netip.AddrPort // of the IKE_SA_INIT request
	natPeer, natLocal bool           // the initiator / we are behind a NAT
	suite             Suite
	keys              *saKeys
	ni, nr            []byte
	initReq, initResp []byte // exact bytes, signed in IKE_AUTH
	peerHashes        []uint16
	deadline          time.Time

	counted bool // in stats.HalfOpen; guarded by Responder.mu

	resumed    *resumeTicket // from IKE_SESSION_RESUME, else nil
	redirectOK bool          // the initiator supports RFC 5685

	peerFragment bool         // the initiator supports RFC 7383
	frags        *reassembler // IKE_AUTH fragments

	// inter is the IKE_INTERMEDIATE progress; with it keys change
	// after publication, under mu.
	inter intermediateState

	mu       sync.Mutex // serialises IKE_AUTH handling
	authReq  []byte     // the request (first fragment) answered
	authResp [][]byte   // our response or its fragments
	authID   uint32     // message ID of authReq
	reqID    uint32     // message ID of the request being answered
	final    bool       // no more IKE_AUTH requests: authResp is the last answer
	eap      *eapState  // an EAP exchange in progress (RFC 7296 §2.16)
}

// saInit answers an IKE_SA_INIT request (RFC 7296 §1.2): COOKIE,
// NO_PROPOSAL_CHOSEN or INVALID_KE_PAYLOAD without keeping state, else a
// new half-open IKE SA.
func (r *Responder) saInit(d Datagram, h wire.Header) {
	if r.answeredBefore(d, h) {
		return
	}
	m, err := wire.Parse(d.Data)
	if err != nil {
		r.log.Debug("unparsable IKE_SA_INIT", "from", d.From, "err", err)
		return
	}
	sa := wire.Find[*wire.SA](m.Payloads)
	ke := wire.Find[*wire.KE](m.Payloads)
	nonce := wire.Find[*wire.Nonce](m.Payloads)
	if sa == nil || ke == nil || nonce == nil {
		r.initNotify(d, h, wire.NotifyInvalidSyntax, nil)
		return
	}
	if !r.checkCookie(d, h, m, nonce.Data) {
		return
	}
	if r.cfg.RedirectInit != nil && peerSupportsRedirect(m) {
		if to, ok := r.cfg.RedirectInit(d.From); ok {
			r.count(func(s *ResponderStats) { s.Redirected++ })
			r.log.Info("IKE_SA_INIT: redirecting", "from", d.From, "to", to.String())
			r.initNotify(d, h, wire.NotifyRedirect, encodeRedirect(to, nonce.Data))
			return
		}
	}
	peerProps := sa.Proposals
	if m.Notify(wire.NotifyIntermediateExchangeSupported) == nil {
		// RFC 9370 §2.2.1: additional key exchanges need IKE_INTERMEDIATE.
		peerProps = withoutAddKE(peerProps)
	}
	chosen, suite, ok := chooseProposal(peerProps, r.cfg.IKEProposals, wire.ProtoIKE, nil, ke.Group)
	if !ok {
		r.count(func(s *ResponderStats) { s.NoProposal++ })
		r.log.Info("IKE_SA_INIT: no acceptable proposal", "from", d.From)
		r.initNotify(d, h, wire.NotifyNoProposalChosen, nil)
		return
	}
	if suite.DH != ke.Group {
		r.count(func(s *ResponderStats) { s.InvalidKE++ })
		r.initNotify(d, h, wire.NotifyInvalidKEPayload, binary.BigEndian.AppendUint16(nil, suite.DH))
		return
	}
	ho, err := r.newHalfOpen(d, h, m, chosen, suite, ke, nonce.Data)
	if err != nil {
		r.log.Info("IKE_SA_INIT refused", "from", d.From, "err", err)
		r.mu.Lock()
		r.stats.InitRefused++
		r.mu.Unlock()
		r.initNotify(d, h, wire.NotifyInvalidSyntax, nil)
		return
	}
	r.publish(ho, d, h)
}

// answeredBefore answers a retransmitted IKE_SA_INIT or
// IKE_SESSION_RESUME request from its half-open SA (RFC 7296 §2.1).
func (r *Responder) answeredBefore(d Datagram, h wire.Header) bool {
	r.mu.Lock()
	prev := r.byInit[initKey{h.SPIi, d.From}]
	r.mu.Unlock()
	if prev == nil {
		return false
	}
	if bytes.Equal(prev.initReq, d.Data) {
		_ = r.t.Send(prev.initResp, d.From, d.Encap)
	}
	return true
}

// publish makes a new half-open SA findable and sends its response,
// unless a retransmission raced it there.
func (r *Responder) publish(ho *halfOpen, d Datagram, h wire.Header) {
	key := initKey{h.SPIi, d.From}
	r.mu.Lock()
	if other := r.byInit[key]; other != nil {
		r.mu.Unlock()
		if bytes.Equal(other.initReq, d.Data) {
			_ = r.t.Send(other.initResp, d.From, d.Encap)
		}
		return
	}
	ho.counted = true
	r.byInit[key] = ho
	r.bySPI[ho.spir] = ho
	r.stats.HalfOpen++
	r.mu.Unlock()
	_ = r.t.Send(ho.initResp, d.From, d.Encap)
}

// newHalfOpen computes the keys of a new IKE SA and the response.
func (r *Responder) newHalfOpen(d Datagram, h wire.Header, m *wire.Message, chosen wire.Proposal, suite Suite, ke *wire.KE, ni []byte) (*halfOpen, error) {
	ours, err := ikecrypto.NewKeyExchange(suite.DH, r.rand)
	if err != nil {
		return nil, err
	}
	gir, err := ours.SharedSecret(ke.Data)
	if err != nil {
		return nil, err
	}
	nr, err := randomBytes(r.rand, 32)
	if err != nil {
		return nil, err
	}
	prf, err := ikecrypto.NewPRF(suite.PRF)
	if err != nil {
		return nil, err
	}
	ho := &halfOpen{
		spii: h.SPIi, spir: r.newSPI(), from: d.From, suite: suite,
		ni: append([]byte(nil), ni...), nr: nr, initReq: d.Data,
		deadline: time.Now().Add(r.halfOpenTimeout()),
	}
	ho.keys, err = deriveKeys(suite, ikecrypto.SKEYSEED(prf, ho.ni, nr, gir), ho.ni, nr, ho.spii, ho.spir, false)
	if err != nil {
		return nil, err
	}
	ps := []wire.Payload{
		&wire.SA{Proposals: []wire.Proposal{chosen}},
		&wire.KE{Group: suite.DH, Data: ours.PublicKey()},
		&wire.Nonce{Data: nr},
	}
	ps = append(ps, r.natDetection(ho, d, m)...)
	ho.redirectOK = peerSupportsRedirect(m)
	if r.roots != nil {
		ps = append(ps, &wire.CertReq{Encoding: wire.CertX509Signature, Data: caHashes(r.cfg.CAs)})
	}
	if m.Notify(wire.NotifyIntermediateExchangeSupported) != nil {
		ho.inter.supported = true
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyIntermediateExchangeSupported})
	}
	if m.Notify(wire.NotifyIKEv2FragmentationSupported) != nil {
		ho.peerFragment = true
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyIKEv2FragmentationSupported})
	}
	if n := m.Notify(wire.NotifySignatureHashAlgorithms); n != nil {
		ho.peerHashes, _ = auth.ParseHashAlgorithms(n.Data)
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifySignatureHashAlgorithms, Data: auth.EncodeHashAlgorithms(auth.SignatureHashes())})
	}
	resp := wire.Message{
		Header:   wire.Header{SPIi: ho.spii, SPIr: ho.spir, Version: wire.Version2, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagResponse},
		Payloads: ps,
	}
	if ho.initResp, err = resp.Encode(); err != nil {
		return nil, err
	}
	return ho, nil
}

// natDetection compares the initiator's NAT detection hashes (RFC 7296
// §2.23) and returns ours, if the initiator sent any.
func (r *Responder) natDetection(ho *halfOpen, d Datagram, m *wire.Message) []wire.Payload {
	local := r.localAddr(d.From)
	var srcs, dsts int
	srcOK := false
	for _, n := range m.Notifies() {
		switch n.NotifyType {
		case wire.NotifyNATDetectionSourceIP:
			srcs++
			srcOK = srcOK || bytes.Equal(n.Data, natHash(ho.spii, 0, d.From))
		case wire.NotifyNATDetectionDestinationIP:
			dsts++
			if !bytes.Equal(n.Data, natHash(ho.spii, 0, local)) {
				ho.natLocal = true
			}
		}
	}
	if srcs+dsts == 0 {
		return nil
	}
	ho.natPeer = srcs > 0 && !srcOK
	return []wire.Payload{
		&wire.Notify{NotifyType: wire.NotifyNATDetectionSourceIP, Data: natHash(ho.spii, ho.spir, local)},
		&wire.Notify{NotifyType: wire.NotifyNATDetectionDestinationIP, Data: natHash(ho.spii, ho.spir, d.From)},
	}
}

// localAddr is our address as the peer should see it: the socket's, or
// the source address the OS picks towards the peer when it is unbound.
func (r *Responder) localAddr(peer netip.AddrPort) netip.AddrPort {
	ua, ok := r.t.conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	la := ua.AddrPort()
	if a := la.Addr().Unmap(); !a.IsUnspecified() {
		return netip.AddrPortFrom(a, la.Port())
	}
	if ap, err := localAddrFor(peer, la.Port()); err == nil {
		return ap
	}
	return la
}

// initNotify answers an IKE_SA_INIT request with one notify and no state.
func (r *Responder) initNotify(d Datagram, h wire.Header, typ wire.NotifyType, data []byte) {
	m := wire.Message{
		Header:   wire.Header{SPIi: h.SPIi, Version: wire.Version2, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagResponse},
		Payloads: []wire.Payload{&wire.Notify{NotifyType: typ, Data: data}},
	}
	if raw, err := m.Encode(); err == nil {
		_ = r.t.Send(raw, d.From, d.Encap)
	}
}

func (r *Responder) count(f func(*ResponderStats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// checkCookie demands a valid COOKIE while too many SAs are half-open
// (RFC 7296 §2.6); it answers with a fresh cookie and returns false when
// the request lacks one.
func (r *Responder) checkCookie(d Datagram, h wire.Header, m *wire.Message, ni []byte) bool {
	ip := d.From.Addr().Unmap()
	r.mu.Lock()
	r.cookies.rotate(r.rand, r.cfg.now())
	need := r.cfg.CookieThreshold > 0 && r.stats.HalfOpen >= r.cfg.CookieThreshold
	if !need {
		r.mu.Unlock()
		return true
	}
	if n := m.Notify(wire.NotifyCookie); n != nil && r.cookies.valid(n.Data, ni, ip, h.SPIi) {
		r.mu.Unlock()
		return true
	}
	cookie := r.cookies.issue(ni, ip, h.SPIi)
	r.stats.CookiesSent++
	r.mu.Unlock()
	r.initNotify(d, h, wire.NotifyCookie, cookie)
	return false
}

// cookieSecrets makes stateless cookies: VersionIDofSecret |
// HMAC-SHA-256(secret, Ni | IPi | SPIi), as RFC 7296 §2.6 suggests. The
// previous secret stays valid for one rotation period.
type cookieSecrets struct {
	cur, prev []byte
	ver       uint32 // of cur; prev is ver-1
	since     time.Time
}

const cookieLen = 4 + sha256.Size

func (c *cookieSecrets) init(rand io.Reader, now time.Time) error {
	s, err := randomBytes(rand, 32)
	if err != nil {
		return err
	}
	c.cur, c.since = s, now
	return nil
}

func (c *cookieSecrets) rotate(rand io.Reader, now time.Time) {
	age := now.Sub(c.since)
	if age < cookieRotation {
		return
	}
	s, err := randomBytes(rand, 32)
	if err != nil {
		return
	}
	c.prev = c.cur
	if age >= 2*cookieRotation {
		c.prev = nil // idle for long: its cookies are too old
	}
	c.cur, c.since = s, now
	c.ver++
}

func cookieMAC(secret []byte, ver uint32, ni []byte, ip netip.Addr, spii uint64) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(ni)
	a := ip.As16()
	m.Write(a[:])
	m.Write(binary.BigEndian.AppendUint64(nil, spii))
	return m.Sum(binary.BigEndian.AppendUint32(nil, ver))
}

func (c *cookieSecrets) issue(ni []byte, ip netip.Addr, spii uint64) []byte {
	return cookieMAC(c.cur, c.ver, ni, ip, spii)
}

func (c *cookieSecrets) valid(cookie, ni []byte, ip netip.Addr, spii uint64) bool {
	if len(cookie) != cookieLen {
		return false
	}
	secret := c.cur
	switch ver := binary.BigEndian.Uint32(cookie); {
	case ver == c.ver:
	case ver == c.ver-1 && c.prev != nil:
		secret = c.prev
	default:
		return false
	}
	return hmac.Equal(cookie, cookieMAC(secret, binary.BigEndian.Uint32(cookie), ni, ip, spii))
}

// chooseProposal is the responder's choice for a new SA. Like strongSwan
// it prefers its own configuration: the first of ours that covers one of
// the peer's proposals wins, and within it our transform order, except
// that the group of the initiator's KE payload is taken when that proposal
// allows it (sparing an INVALID_KE_PAYLOAD round trip). selectProposal
// does the covering.
func chooseProposal(peer []wire.Proposal, ours []ikecrypto.Proposal, protocol uint8, spi []byte, keGroup uint16) (wire.Proposal, Suite, bool) {
	for _, op := range ours {
		for _, pp := range peer {
			if pp.Protocol != protocol {
				continue
			}
			one := []ikecrypto.Proposal{op}
			if wp, s, ok := selectProposal([]wire.Proposal{preferOurs(pp, op, keGroup)}, one, protocol, spi); ok {
				return wp, s, true
			}
		}
	}
	return wire.Proposal{}, Suite{}, false
}

// preferOurs reorders the peer's transforms by their rank in op, so that
// selectProposal, which takes the peer's first acceptable transform of
// each type, takes ours.
func preferOurs(pp wire.Proposal, op ikecrypto.Proposal, keGroup uint16) wire.Proposal {
	rank := func(t wire.Transform) int {
		for i, a := range op.Algorithms {
			if a.Type == t.Type && a.ID == t.ID && uint16(a.KeyBits) == t.KeyLength {
				if keGroup != 0 && t.Type == transformKE && t.ID == keGroup {
					return -1
				}
				return i
			}
		}
		return len(op.Algorithms)
	}
	pp.Transforms = slices.Clone(pp.Transforms)
	slices.SortStableFunc(pp.Transforms, func(a, b wire.Transform) int { return cmp.Compare(rank(a), rank(b)) })
	return pp
}

// withoutKE drops key exchange transforms, additional ones too: IKE_AUTH
// carries no KE payload, so the first Child SA has no PFS group (RFC 7296
// §1.2, RFC 9370 §2.2.3).
func withoutKE(ps []wire.Proposal) []wire.Proposal {
	out := make([]wire.Proposal, len(ps))
	for i, p := range ps {
		p.Transforms = slices.DeleteFunc(slices.Clone(p.Transforms), func(t wire.Transform) bool { return t.Type == transformKE || isAddKEType(t.Type) })
		out[i] = p
	}
	return out
}
