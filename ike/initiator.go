package ike

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// maxInitRetries bounds how often a responder may ask for a cookie or
// another key exchange group before we give up.
const maxInitRetries = 4

// initState is the initiator's handshake, one IKE SA being set up. Its
// fields are filled exchange by exchange; crypto/tls's handshake state is the
// model.
type initState struct {
	cfg    *Config
	t      *Transport
	ch     chan Datagram
	rand   io.Reader
	remote netip.AddrPort
	local  netip.AddrPort
	encap  bool

	spii, spir uint64
	ni, nr     []byte
	ke         ikecrypto.KeyExchange
	cookie     []byte

	offeredIKE []wire.Proposal
	initReq    []byte // the IKE_SA_INIT request the responder accepted
	initResp   []byte

	peerHashes   []uint16
	peerFragment bool
	natLocal     bool   // we are behind a NAT
	natRemote    bool   // the gateway is behind a NAT
	peerNATT     bool   // the gateway sent NAT detection (it speaks NAT-T)
	seenAs       []byte // its NAT_DETECTION_DESTINATION_IP: how it sees our address

	keys  *saKeys
	suite Suite
	inter intermediateState // RFC 9242/9370 additional key exchanges

	// Child SA negotiation.
	childSPI   uint32
	offeredESP []wire.Proposal

	// resume is the ticket's state when IKE_SESSION_RESUME replaced
	// IKE_SA_INIT (RFC 5723).
	resume *ResumeState

	// eap is the EAP exchange inside IKE_AUTH (initiator_eap.go); authID
	// the message ID of the last IKE_AUTH request (0 means 1).
	eap    *eapRun
	authID uint32
}

// Initiate runs IKE_SA_INIT and IKE_AUTH with the gateway at remote over t
// and returns the established session with its first Child SA. It gives up
// after the configured retransmission budget for each exchange.
func Initiate(ctx context.Context, cfg *Config, t *Transport, remote netip.AddrPort) (*Session, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return startInit(cfg, t, remote, nil, func(st *initState) (*Session, error) { return st.run(ctx) })
}

// startInit prepares a handshake with a fresh SPIi registered on t and
// runs it; resume is the ticket's state for IKE_SESSION_RESUME.
func startInit(cfg *Config, t *Transport, remote netip.AddrPort, resume *ResumeState, run func(*initState) (*Session, error)) (*Session, error) {
	st := &initState{cfg: cfg, t: t, remote: remote, rand: cfg.Rand, resume: resume}
	if st.rand == nil {
		st.rand = rand.Reader
	}
	st.encap = remote.Port() == NATTPort
	local, err := localAddrFor(remote, t.LocalPort())
	if err != nil {
		return nil, err
	}
	st.local = local
	st.spii = randomSPI(st.rand)
	st.ch = t.register(st.spii)
	s, err := run(st)
	if err != nil {
		t.unregister(st.spii)
		return nil, err
	}
	return s, nil
}

func (st *initState) run(ctx context.Context) (*Session, error) {
	log := st.cfg.logger()
	start := time.Now()
	if err := st.saInit(ctx); err != nil {
		return nil, err
	}
	log.Debug("IKE_SA_INIT done", "suite", st.suite.String(), "nat_local", st.natLocal, "nat_remote", st.natRemote, "took", time.Since(start))
	if err := st.intermediate(ctx); err != nil {
		return nil, err
	}
	return st.authExchange(ctx)
}

// localAddrFor finds the source address the OS would use towards remote,
// needed for NAT detection hashes. No packet is sent.
func localAddrFor(remote netip.AddrPort, port uint16) (netip.AddrPort, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(remote))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("ike: no route to gateway %s: %w", remote, err)
	}
	defer c.Close()
	la := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(la.Addr().Unmap(), port), nil
}

func randomSPI(r io.Reader) uint64 {
	var b [8]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			// crypto/rand does not fail; a broken test reader still must not loop.
			return 0x0123456789abcdef
		}
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

func randomBytes(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

// natHash is the NAT detection hash of RFC 7296 §2.23.
func natHash(spii, spir uint64, ap netip.AddrPort) []byte {
	h := sha1.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spii)
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], spir)
	h.Write(b[:])
	h.Write(ap.Addr().AsSlice())
	binary.BigEndian.PutUint16(b[:2], ap.Port())
	h.Write(b[:2])
	return h.Sum(nil)
}

func (st *initState) saInitRequest() ([]byte, error) {
	var ps []wire.Payload
	if st.cookie != nil {
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyCookie, Data: st.cookie})
	}
	ps = append(ps,
		&wire.SA{Proposals: st.offeredIKE},
		&wire.KE{Group: st.ke.Group(), Data: st.ke.PublicKey()},
		&wire.Nonce{Data: st.ni},
	)
	src := natHash(st.spii, 0, st.local)
	if st.cfg.ForceEncap {
		// A hash that cannot match makes the responder see a NAT, as
		// strongSwan's encap=yes does.
		src, _ = randomBytes(st.rand, sha1.Size)
	}
	ps = append(ps,
		&wire.Notify{NotifyType: wire.NotifyNATDetectionSourceIP, Data: src},
		&wire.Notify{NotifyType: wire.NotifyNATDetectionDestinationIP, Data: natHash(st.spii, 0, st.remote)},
		&wire.Notify{NotifyType: wire.NotifySignatureHashAlgorithms, Data: auth.EncodeHashAlgorithms(auth.SignatureHashes())},
		&wire.Notify{NotifyType: wire.NotifyIKEv2FragmentationSupported},
	)
	ps = append(ps, st.redirectNotifies()...)
	if offersAddKE(st.cfg.IKEProposals) {
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyIntermediateExchangeSupported})
	}
	m := wire.Message{
		Header:   wire.Header{SPIi: st.spii, Version: 0x20, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagInitiator},
		Payloads: ps,
	}
	return m.Encode()
}

// saInit runs IKE_SA_INIT, retrying for COOKIE and INVALID_KE_PAYLOAD.
func (st *initState) saInit(ctx context.Context) error {
	var err error
	if st.ni, err = randomBytes(st.rand, 32); err != nil {
		return err
	}
	st.offeredIKE = wireProposals(st.cfg.IKEProposals, wire.ProtoIKE, nil)
	group := firstGroup(st.cfg.IKEProposals)
	if st.ke, err = ikecrypto.NewKeyExchange(group, st.rand); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		req, err := st.saInitRequest()
		if err != nil {
			return err
		}
		var resp *wire.Message
		var raw []byte
		var redirect *RedirectTarget
		err = exchange(ctx, st.t, st.ch, st.cfg.Retransmit, [][]byte{req}, st.remote, st.encap, func(d Datagram) bool {
			m, err := wire.Parse(d.Data)
			if err != nil || m.Header.SPIi != st.spii || !m.Header.IsResponse() ||
				m.Header.Exchange != wire.ExchangeIKESAInit || m.Header.MessageID != 0 {
				return false
			}
			if n := m.Notify(wire.NotifyRedirect); n != nil {
				// RFC 5685 §3: only with our nonce; anything else is
				// an injection, ignored while we wait on.
				t, nonce, err := parseRedirect(n.Data)
				if err != nil || !bytesEqual(nonce, st.ni) {
					return false
				}
				redirect = &t
			}
			resp, raw = m, d.Data
			return true
		})
		if err != nil {
			return fmt.Errorf("IKE_SA_INIT with %s: %w", st.remote, err)
		}
		if redirect != nil {
			return &RedirectError{To: *redirect, Phase: "IKE_SA_INIT"}
		}
		if attempt >= maxInitRetries {
			return fmt.Errorf("IKE_SA_INIT with %s: gateway keeps asking for retries", st.remote)
		}
		if n := resp.Notify(wire.NotifyCookie); n != nil {
			if len(n.Data) < 1 || len(n.Data) > 64 {
				return fmt.Errorf("IKE_SA_INIT: COOKIE of %d bytes", len(n.Data))
			}
			st.cookie = append([]byte(nil), n.Data...)
			continue
		}
		if n := resp.Notify(wire.NotifyInvalidKEPayload); n != nil {
			if len(n.Data) != 2 {
				return errors.New("IKE_SA_INIT: malformed INVALID_KE_PAYLOAD")
			}
			g := binary.BigEndian.Uint16(n.Data)
			if g == st.ke.Group() || !offersGroup(st.cfg.IKEProposals, g) {
				return fmt.Errorf("IKE_SA_INIT: gateway wants key exchange %s, which we did not offer",
					ikecrypto.AlgorithmName(transformKE, g, 0))
			}
			if st.ke, err = ikecrypto.NewKeyExchange(g, st.rand); err != nil {
				return err
			}
			continue
		}
		if err := firstError(wire.ExchangeIKESAInit, resp.Payloads); err != nil {
			return err
		}
		st.initReq, st.initResp = req, raw
		return st.saInitResponse(resp)
	}
}

func (st *initState) saInitResponse(m *wire.Message) error {
	if m.Header.SPIr == 0 {
		return errors.New("IKE_SA_INIT: response with zero responder SPI")
	}
	st.spir = m.Header.SPIr
	suite, _, err := checkChosen(wire.Find[*wire.SA](m.Payloads), st.offeredIKE, wire.ProtoIKE)
	if err != nil {
		return err
	}
	ke := wire.Find[*wire.KE](m.Payloads)
	if ke == nil {
		return errors.New("IKE_SA_INIT: response has no KE payload")
	}
	if ke.Group != suite.DH || ke.Group != st.ke.Group() {
		return fmt.Errorf("IKE_SA_INIT: KE group %d does not match the chosen %d", ke.Group, suite.DH)
	}
	nonce := wire.Find[*wire.Nonce](m.Payloads)
	if nonce == nil {
		return errors.New("IKE_SA_INIT: response has no nonce")
	}
	st.nr = append([]byte(nil), nonce.Data...)
	st.peerNotifies(m)
	gir, err := st.ke.SharedSecret(ke.Data)
	if err != nil {
		return fmt.Errorf("IKE_SA_INIT: gateway's key exchange value: %w", err)
	}
	prf, err := ikecrypto.NewPRF(suite.PRF)
	if err != nil {
		return err
	}
	return st.keyed(suite, ikecrypto.SKEYSEED(prf, st.ni, st.nr, gir))
}

// keyed derives the new IKE SA's keys from skeyseed and floats to the
// NAT-T port (RFC 7296 §2.23); we always encapsulate when forced, since a
// userspace client cannot send raw ESP.
func (st *initState) keyed(suite Suite, skeyseed []byte) error {
	var err error
	if st.keys, err = deriveKeys(suite, skeyseed, st.ni, st.nr, st.spii, st.spir, true); err != nil {
		return err
	}
	st.suite = suite
	if (st.natLocal || st.natRemote || st.cfg.ForceEncap || st.floatForMOBIKE()) && !st.encap {
		st.encap = true
		if st.remote.Port() == 500 {
			st.remote = netip.AddrPortFrom(st.remote.Addr(), NATTPort)
		}
	}
	return nil
}

// peerNotifies reads the responder's NAT detection, signature hash and
// fragmentation notifies of IKE_SA_INIT or IKE_SESSION_RESUME.
func (st *initState) peerNotifies(m *wire.Message) {
	for _, n := range m.Notifies() {
		switch n.NotifyType {
		case wire.NotifyNATDetectionSourceIP:
			st.peerNATT = true
			if !bytesEqual(n.Data, natHash(st.spii, st.spir, st.remote)) {
				st.natRemote = true
			}
		case wire.NotifyNATDetectionDestinationIP:
			st.seenAs = append([]byte(nil), n.Data...)
			if !bytesEqual(n.Data, natHash(st.spii, st.spir, st.local)) {
				st.natLocal = true
			}
		case wire.NotifySignatureHashAlgorithms:
			st.peerHashes, _ = auth.ParseHashAlgorithms(n.Data)
		case wire.NotifyIKEv2FragmentationSupported:
			st.peerFragment = true
		case wire.NotifyIntermediateExchangeSupported:
			st.inter.supported = true
		}
	}
}

func bytesEqual(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// caHashes is the CERTREQ content: SHA-1 of each CA's SubjectPublicKeyInfo.
func caHashes(cas []*x509.Certificate) []byte {
	var out []byte
	for _, c := range cas {
		h := sha1.Sum(c.RawSubjectPublicKeyInfo)
		out = append(out, h[:]...)
	}
	return out
}

func identityPayload(id auth.Identity, responder bool) *wire.ID {
	return &wire.ID{Responder: responder, IDType: id.Type, Data: id.Data}
}

func (st *initState) authRequest() ([][]byte, error) {
	cfg := st.cfg
	idi := identityPayload(cfg.LocalID, false)
	octets := append(auth.SignedOctets(st.keys.prf.Sum, st.initReq, st.nr, st.keys.keys.SKpi, idi.Body()), st.inter.intAuth()...)
	var ap *wire.Auth
	ps := []wire.Payload{idi}
	switch {
	case st.resume != nil:
		ap = &wire.Auth{Method: auth.MethodPSK, Data: resumeAuth(st.keys, st.keys.keys.SKpi, octets)}
	case len(cfg.PSK) > 0:
		ap = &wire.Auth{Method: auth.MethodPSK, Data: auth.PSKAuth(st.keys.prf.Sum, cfg.PSK, octets)}
	case cfg.EAP != nil:
		// No AUTH: the gateway starts EAP (RFC 7296 §2.16).
	default:
		for _, der := range cfg.CertChain {
			ps = append(ps, &wire.Cert{Encoding: wire.CertX509Signature, Data: der})
		}
		method, data, err := auth.Sign(cfg.Signer, st.peerHashes, octets, st.rand)
		if err != nil {
			return nil, err
		}
		ap = &wire.Auth{Method: method, Data: data}
	}
	ps = append(ps, &wire.Notify{NotifyType: wire.NotifyInitialContact})
	ps = append(ps, st.mobikeNotifies()...)
	if len(cfg.CAs) > 0 && st.resume == nil {
		ps = append(ps, &wire.CertReq{Encoding: wire.CertX509Signature, Data: caHashes(cfg.CAs)})
	}
	if len(cfg.RemoteID.Data) > 0 && !cfg.OmitIDr {
		ps = append(ps, identityPayload(cfg.RemoteID, true))
	}
	if ap != nil {
		ps = append(ps, ap)
	}
	if cfg.RequestTicket {
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyTicketRequest})
	}
	if cfg.HASync {
		ps = append(ps, haSupported()...)
	}
	var attrs []wire.CPAttribute
	var want4, want6 []byte
	for _, a := range cfg.PreviousIPs {
		if a.Is4() {
			want4 = a.AsSlice()
		} else if a.Is6() {
			want6 = append(a.AsSlice(), 128)
		}
	}
	if cfg.RequestIPv4 {
		attrs = append(attrs, wire.CPAttribute{Type: wire.CPInternalIP4Address, Value: want4}, wire.CPAttribute{Type: wire.CPInternalIP4DNS})
	}
	if cfg.RequestIPv6 {
		attrs = append(attrs, wire.CPAttribute{Type: wire.CPInternalIP6Address, Value: want6}, wire.CPAttribute{Type: wire.CPInternalIP6DNS})
	}
	if len(attrs) > 0 && !cfg.NoSplitDNS {
		// RFC 8598 §3.1: we accept split-DNS domains (DNS servers are asked for above).
		attrs = append(attrs, wire.CPAttribute{Type: wire.CPInternalDNSDomain})
	}
	if len(attrs) > 0 {
		ps = append(ps, &wire.CP{CfgType: wire.CfgRequest, Attributes: attrs})
	}
	var spi [4]byte
	for binary.BigEndian.Uint32(spi[:]) < 256 {
		if _, err := io.ReadFull(st.rand, spi[:]); err != nil {
			return nil, err
		}
	}
	st.childSPI = binary.BigEndian.Uint32(spi[:])
	st.offeredESP = wireProposals(cfg.ESPProposals, wire.ProtoESP, spi[:])
	ps = append(ps,
		&wire.SA{Proposals: st.offeredESP},
		&wire.TS{Selectors: selectorsFor(cfg.TSi)},
		&wire.TS{Responder: true, Selectors: selectorsFor(cfg.TSr)},
	)
	h := wire.Header{SPIi: st.spii, SPIr: st.spir, Version: 0x20, Exchange: wire.ExchangeIKEAuth, Flags: wire.FlagInitiator, MessageID: st.inter.authMID()}
	if st.peerFragment {
		// RFC 7383: certificates easily push IKE_AUTH past the path MTU,
		// and IP fragments are often dropped on the way.
		return st.keys.sealFragmented(h, ps, maxDatagramFor(st.remote.Addr().Is6(), st.encap), st.rand)
	}
	raw, err := st.keys.seal(h, ps, st.rand)
	return [][]byte{raw}, err
}

// protectedExchange sends req, a request under the new IKE SA's keys
// (fragmented or not), and waits for its response: the same SPIs, exchange
// and message ID, reassembled when the gateway fragments it.
func (st *initState) protectedExchange(ctx context.Context, req [][]byte, exch wire.ExchangeType, mid uint32) (wire.Header, []wire.Payload, error) {
	var rh wire.Header
	var inner []wire.Payload
	frags := newReassembler(0, 0)
	frags.expect(true, mid)
	err := exchange(ctx, st.t, st.ch, st.cfg.Retransmit, req, st.remote, st.encap, func(d Datagram) bool {
		h, ps, complete, err := frags.add(d.Data, st.keys)
		if errors.Is(err, errNotFragment) {
			h, ps, err = st.keys.open(d.Data)
			complete = true
		}
		if err != nil || !complete || h.SPIi != st.spii || h.SPIr != st.spir || !h.IsResponse() ||
			h.Exchange != exch || h.MessageID != mid {
			return false
		}
		rh, inner = h, ps
		return true
	})
	return rh, inner, err
}

// authExchange runs IKE_AUTH and builds the session.
func (st *initState) authExchange(ctx context.Context) (*Session, error) {
	req, err := st.authRequest()
	if err != nil {
		return nil, err
	}
	_, inner, err := st.protectedExchange(ctx, req, wire.ExchangeIKEAuth, st.inter.authMID())
	if err != nil {
		return nil, fmt.Errorf("IKE_AUTH with %s: %w", st.remote, err)
	}
	if st.cfg.EAP != nil && st.resume == nil {
		if inner, err = st.eapRounds(ctx, inner); err != nil {
			st.sendDeleteBestEffort()
			return nil, err
		}
	}
	s, err := st.authResponse(inner)
	if err != nil {
		// The gateway may hold a half-made SA; tell it, without waiting long.
		st.sendDeleteBestEffort()
		return nil, err
	}
	return s, nil
}

func (st *initState) sendDeleteBestEffort() {
	h := wire.Header{SPIi: st.spii, SPIr: st.spir, Version: 0x20, Exchange: wire.ExchangeInformational, Flags: wire.FlagInitiator, MessageID: st.nextMsgID()}
	if raw, err := st.keys.seal(h, []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}}, st.rand); err == nil {
		_ = st.t.Send(raw, st.remote, st.encap)
	}
}

func (st *initState) authResponse(ps []wire.Payload) (*Session, error) {
	cfg := st.cfg
	for _, p := range ps {
		if n, ok := p.(*wire.Notify); ok && n.NotifyType == wire.NotifyAuthenticationFailed {
			return nil, ErrCredentialsRejected
		}
	}
	ap := wire.Find[*wire.Auth](ps)
	idr := wire.Find[*wire.ID](ps)
	if st.eap != nil {
		idr = st.eap.idr // sent and verified in the first response (RFC 7296 §2.16)
	}
	if ap == nil || idr == nil || !idr.Responder {
		if err := firstError(wire.ExchangeIKEAuth, ps); err != nil {
			return nil, err
		}
		return nil, errors.New("IKE_AUTH: response has no IDr or AUTH payload")
	}
	got := auth.Identity{Type: idr.IDType, Data: idr.Data}
	if len(cfg.RemoteID.Data) > 0 && !got.Equal(cfg.RemoteID) {
		return nil, fmt.Errorf("%w: gateway says it is %s, want %s", ErrIdentityMismatch, got, cfg.RemoteID)
	}
	octets := append(auth.SignedOctets(st.keys.prf.Sum, st.initResp, st.ni, st.keys.keys.SKpr, idr.Body()), st.inter.intAuth()...)
	switch {
	case st.eap != nil:
		if err := st.eap.verifyFinal(st, ap, octets); err != nil {
			return nil, err
		}
	case st.resume != nil:
		if !got.Equal(st.resume.IDr) {
			return nil, fmt.Errorf("%w: gateway says it is %s, the ticket names %s", ErrIdentityMismatch, got, st.resume.IDr)
		}
		if !bytesEqual(resumeAuth(st.keys, st.keys.keys.SKpr, octets), ap.Data) {
			return nil, fmt.Errorf("%w: gateway's resumption AUTH does not match", ErrAuthenticationFailed)
		}
	case ap.Method == auth.MethodPSK:
		if len(cfg.PSK) == 0 {
			return nil, fmt.Errorf("%w: gateway used a pre-shared key, but the profile expects a certificate", ErrAuthenticationFailed)
		}
		if !auth.VerifyPSK(st.keys.prf.Sum, cfg.PSK, octets, ap.Data) {
			return nil, fmt.Errorf("%w: gateway's AUTH payload does not match the pre-shared key", ErrAuthenticationFailed)
		}
	default:
		if err := st.verifyGatewayCert(ps, got, ap, octets); err != nil {
			return nil, err
		}
	}

	if n := wire.FindNotify(ps, wire.NotifyRedirect); n != nil {
		// RFC 5685 §6: the gateway is authenticated; it sends us on.
		t, _, err := parseRedirect(n.Data)
		if err != nil {
			return nil, err
		}
		return nil, &RedirectError{To: t, Phase: "IKE_AUTH"}
	}
	s := newSession(st)
	s.PeerID = got
	s.initiatorRole = true
	s.resumed = st.resume != nil
	s.mobike = st.cfg.MOBIKE && wire.FindNotify(ps, wire.NotifyMOBIKESupported) != nil
	switch {
	case st.resume != nil:
		s.authMethod = st.resume.AuthMethod
	case len(cfg.PSK) > 0 || st.eap != nil:
		s.authMethod = auth.MethodPSK
	default:
		s.authMethod = auth.MethodDigitalSignature
	}
	for _, p := range ps {
		switch p := p.(type) {
		case *wire.CP:
			if p.CfgType == wire.CfgReply {
				s.applyCP(p)
			}
		case *wire.Notify:
			s.AuthNotifies = append(s.AuthNotifies, p)
		}
	}
	child, err := st.childFromResponse(ps)
	if err != nil {
		s.close()
		return nil, err
	}
	s.Child = child
	s.haInit(cfg.HASync)
	return s, nil
}

// verifyGatewayCert checks the gateway's certificate AUTH: its chain up to
// one of our CAs, that it names got, and the signature over octets.
func (st *initState) verifyGatewayCert(ps []wire.Payload, got auth.Identity, ap *wire.Auth, octets []byte) error {
	cfg := st.cfg
	if len(cfg.CAs) == 0 {
		return fmt.Errorf("%w: gateway authenticated with a certificate, but the profile has no CA", ErrAuthenticationFailed)
	}
	var chain [][]byte
	for _, p := range ps {
		if c, ok := p.(*wire.Cert); ok && c.Encoding == wire.CertX509Signature {
			chain = append(chain, c.Data)
		}
	}
	if len(chain) == 0 {
		return fmt.Errorf("%w: gateway sent no certificate", ErrAuthenticationFailed)
	}
	roots := x509.NewCertPool()
	for _, c := range cfg.CAs {
		roots.AddCert(c)
	}
	pub, err := auth.VerifyPeerCert(chain, roots, got, cfg.RemoteID, cfg.now())
	if err != nil {
		if errors.Is(err, auth.ErrIdentityMismatch) {
			return fmt.Errorf("%w: %v", ErrIdentityMismatch, err)
		}
		return fmt.Errorf("%w: gateway certificate: %v", ErrAuthenticationFailed, err)
	}
	if err := auth.Verify(pub, ap.Method, ap.Data, octets); err != nil {
		return fmt.Errorf("%w: gateway's signature: %v", ErrAuthenticationFailed, err)
	}
	return nil
}

func (st *initState) childFromResponse(ps []wire.Payload) (*ChildSA, error) {
	sa := wire.Find[*wire.SA](ps)
	if sa == nil {
		if err := firstError(wire.ExchangeIKEAuth, ps); err != nil {
			return nil, fmt.Errorf("child SA not created: %w", err)
		}
		return nil, errors.New("IKE_AUTH: response has no SA payload for the child SA")
	}
	suite, spi, err := checkChosen(sa, st.offeredESP, wire.ProtoESP)
	if err != nil {
		return nil, err
	}
	if len(spi) != 4 || binary.BigEndian.Uint32(spi) == 0 {
		return nil, errors.New("IKE_AUTH: child SA with invalid SPI")
	}
	var tsi, tsr []wire.Selector
	for _, p := range ps {
		if ts, ok := p.(*wire.TS); ok {
			if ts.Responder {
				tsr = ts.Selectors
			} else {
				tsi = ts.Selectors
			}
		}
	}
	if len(tsi) == 0 || len(tsr) == 0 {
		return nil, errors.New("IKE_AUTH: response lacks traffic selectors")
	}
	c := &ChildSA{
		Suite:  suite,
		SPIIn:  st.childSPI,
		SPIOut: binary.BigEndian.Uint32(spi),
		TSi:    tsi,
		TSr:    tsr,
		Encap:  st.encap,
	}
	if err := c.deriveKeys(st.keys.prf, st.keys.keys.SKd, nil, st.ni, st.nr, true); err != nil {
		return nil, err
	}
	return c, nil
}

func selectorsFor(ps []netip.Prefix) []wire.Selector {
	out := make([]wire.Selector, 0, len(ps))
	for _, p := range ps {
		p = p.Masked()
		typ := wire.TSIPv4AddrRange
		if p.Addr().Is6() {
			typ = wire.TSIPv6AddrRange
		}
		out = append(out, wire.Selector{Type: typ, StartPort: 0, EndPort: 65535, Start: p.Addr(), End: lastAddr(p)})
	}
	return out
}

// lastAddr is the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// exchange sends req (one message, or all its fragments) and retransmits
// it on the configured schedule until accept takes a datagram as its
// response.
func exchange(ctx context.Context, t *Transport, ch <-chan Datagram, rt Retransmit, req [][]byte, to netip.AddrPort, encap bool, accept func(Datagram) bool) error {
	timeout := rt.Timeout
	for try := 0; try < rt.Tries; try++ {
		for _, m := range req {
			if err := t.Send(m, to, encap); err != nil {
				return err
			}
		}
		timer := time.NewTimer(timeout)
	wait:
		for {
			select {
			case d := <-ch:
				if accept(d) {
					timer.Stop()
					return nil
				}
			case <-timer.C:
				break wait
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			}
		}
		timeout = time.Duration(float64(timeout) * rt.Base)
	}
	return fmt.Errorf("%w after %d tries (%s)", ErrNoResponse, rt.Tries, rt.Budget().Round(time.Millisecond))
}
