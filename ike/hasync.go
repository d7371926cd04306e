package ike

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// RFC 6311: a hot-standby gateway that took over an IKE SA with state
// exported by the active member resynchronises message IDs and ESP replay
// counters with the client. The client answers (§5.1, §5.2); the gateway
// starts it (StartHASync) on sessions it imported (Responder.Import).

// haMsgIDMargin is how far a standby moves its next request ID past the
// exported one before the sync (§5.1: M1 larger than any value known to be
// used, by at least the sender window; ours is 1, and the active may have
// sent a few requests after its last export).
const haMsgIDMargin = 8

// haState is an IKE SA's RFC 6311 state; loop-owned.
type haState struct {
	// What we announced and what the peer announced in IKE_AUTH; only
	// capabilities both sides announced are used.
	ourMsgID, ourReplay   bool
	peerMsgID, peerReplay bool

	// Client: the last accepted sync request (the IKE SA it was for, its
	// M1, raw bytes and our sealed answer, sent again when the very same
	// request is retransmitted). A rekeyed IKE SA starts afresh.
	syncedSt *ikeState
	lastM1   uint32
	lastReq  []byte
	lastResp []byte
}

func (h *haState) msgIDSync() bool  { return h.ourMsgID && h.peerMsgID }
func (h *haState) replaySync() bool { return h.ourReplay && h.peerReplay }

// announced records which of the RFC 6311 capabilities ns announce.
func (h *haState) announced(ns []*wire.Notify) {
	for _, n := range ns {
		switch n.NotifyType {
		case wire.NotifyIKEv2MessageIDSyncSupported:
			h.peerMsgID = true
		case wire.NotifyIPsecReplayCounterSyncSupported:
			h.peerReplay = true
		}
	}
}

// haSupported are the IKE_AUTH notifies that announce both capabilities.
func haSupported() []wire.Payload {
	return []wire.Payload{
		&wire.Notify{NotifyType: wire.NotifyIKEv2MessageIDSyncSupported},
		&wire.Notify{NotifyType: wire.NotifyIPsecReplayCounterSyncSupported},
	}
}

// haInit sets the initiator's capabilities once IKE_AUTH completed.
func (s *Session) haInit(ours bool) {
	s.ha.ourMsgID, s.ha.ourReplay = ours, ours
	s.ha.announced(s.AuthNotifies)
}

// haAnnounce is the responder's part of IKE_AUTH: it answers the
// client's announcements with its own when HASync is configured.
func (r *Responder) haAnnounce(s *Session) []wire.Payload {
	s.ha.announced(s.AuthNotifies)
	if !r.cfg.HASync {
		return nil
	}
	var out []wire.Payload
	if s.ha.peerMsgID {
		s.ha.ourMsgID = true
		out = append(out, &wire.Notify{NotifyType: wire.NotifyIKEv2MessageIDSyncSupported})
	}
	if s.ha.peerReplay {
		s.ha.ourReplay = true
		out = append(out, &wire.Notify{NotifyType: wire.NotifyIPsecReplayCounterSyncSupported})
	}
	return out
}

// HASync describes a completed RFC 6311 synchronisation (Hooks.HASynced).
type HASync struct {
	// SPIi and SPIr name the IKE SA.
	SPIi, SPIr uint64
	// MessageIDs is true when message IDs were synchronised; NextID is
	// then our next request's ID and PeerNext the ID we expect next.
	MessageIDs       bool
	NextID, PeerNext uint32
	// ReplayDelta is what the client added to its outbound ESP sequence
	// numbers (0: none).
	ReplayDelta uint64
	// Abandoned is true when an outstanding request of ours was given up
	// for the sync and queued again with a new message ID (§9).
	Abandoned bool
}

// HASupport reports which RFC 6311 capabilities both sides announced.
func (s *Session) HASupport() (messageIDs, replayCounters bool) {
	var m, r bool
	if !s.do(func() { m, r = s.ha.msgIDSync(), s.ha.replaySync() }) {
		return s.ha.msgIDSync(), s.ha.replaySync() // ended: nothing changes them any more
	}
	return m, r
}

// haHighestSeen is the highest sender value seen from the gateway: its
// last request's ID and the M1 of the last accepted sync.
func (s *Session) haHighestSeen(st *ikeState) (uint32, bool) {
	var v uint32
	ok := false
	if st.peerNext > 0 {
		v, ok = st.peerNext-1, true
	}
	if s.ha.syncedSt == st && (!ok || s.ha.lastM1 > v) {
		v, ok = s.ha.lastM1, true
	}
	return v, ok
}

// haSyncRequest handles a request with message ID 0 that carries
// N(IKEV2_MESSAGE_ID_SYNC) (§5.1); false if it carries none (then it is an
// ordinary request, the gateway's first). It is protected: st's keys
// opened it. Message ID 0 is outside the normal window; the replay rule
// of §5.1 replaces the window check.
func (s *Session) haSyncRequest(st *ikeState, raw []byte, ps []wire.Payload) bool {
	n := wire.FindNotify(ps, wire.NotifyIKEv2MessageIDSync)
	if n == nil {
		return false
	}
	if st != s.cur || !s.ha.msgIDSync() {
		s.log.Debug("HA sync request ignored: not negotiated for this IKE SA")
		return true
	}
	if s.ha.syncedSt == st && bytes.Equal(raw, s.ha.lastReq) {
		// A retransmission of the request we accepted: our answer was
		// lost. The same answer again changes no state.
		_ = s.t.Send(s.ha.lastResp, s.remote, s.encap)
		return true
	}
	var replay *wire.Notify
	for _, p := range ps {
		pn, ok := p.(*wire.Notify)
		switch {
		case ok && pn == n:
		case ok && pn.NotifyType == wire.NotifyIPsecReplayCounterSync && replay == nil:
			replay = pn
		default:
			// §5.1: no other payloads.
			s.log.Debug("HA sync request dropped: unexpected payload")
			return true
		}
	}
	m, err := wire.ParseMessageIDSync(n.Data)
	if err != nil {
		s.log.Debug("HA sync request dropped", "err", err)
		return true
	}
	if hi, ok := s.haHighestSeen(st); ok && m.ExpectedSend <= hi {
		// §5.1: a replayed (or stale) sync message.
		s.log.Info("HA sync request dropped as a replay", "m1", m.ExpectedSend, "highest_seen", hi)
		return true
	}
	// M2: at least M1 and one more than the gateway's last request; P2:
	// at least P1 and one more than our last request.
	m2 := max(m.ExpectedSend, st.peerNext)
	p2 := max(m.ExpectedRecv, st.nextID)
	// §9: stop waiting for an outstanding request; it goes out again
	// with a new message ID once the IDs are in step.
	abandoned := false
	if p := s.out; p != nil && p.st == st {
		s.out = nil
		s.queue = append([]*request{p.req}, s.queue...)
		abandoned = true
	}
	resp := []wire.Payload{&wire.Notify{NotifyType: wire.NotifyIKEv2MessageIDSync,
		Data: wire.MessageIDSync{Nonce: m.Nonce, ExpectedSend: p2, ExpectedRecv: m2}.Encode()}}
	out, err := st.keys.seal(st.header(wire.ExchangeInformational, 0, true), resp, s.rand)
	if err != nil {
		s.log.Warn("sealing HA sync response", "err", err)
		return true
	}
	st.peerNext, st.nextID, st.lastResp = m2, p2, nil
	s.ha.syncedSt, s.ha.lastM1 = st, m.ExpectedSend
	s.ha.lastReq, s.ha.lastResp = append([]byte(nil), raw...), out
	_ = s.t.Send(out, s.remote, s.encap)
	ev := HASync{SPIi: st.spii, SPIr: st.spir, MessageIDs: true, NextID: p2, PeerNext: m2, Abandoned: abandoned}
	if replay != nil {
		// §5.2: after the message IDs.
		ev.ReplayDelta = s.haReplayDelta(replay)
	}
	s.log.Info("HA sync: message IDs synchronised", "next_id", p2, "peer_next", m2, "replay_delta", ev.ReplayDelta)
	if s.hooks.HASynced != nil {
		s.hooks.HASynced(ev)
	}
	return true
}

// haReplayDelta applies N(IPSEC_REPLAY_COUNTER_SYNC) to the outbound
// sequence numbers of every Child SA of the IKE SA (§5.2) and returns the
// delta applied (0: refused).
func (s *Session) haReplayDelta(n *wire.Notify) uint64 {
	if !s.ha.replaySync() || s.child == nil {
		s.log.Debug("IPSEC_REPLAY_COUNTER_SYNC ignored: not negotiated")
		return 0
	}
	delta, err := wire.ParseReplayCounterSync(n.Data, s.child.Suite.ESN)
	if err != nil {
		s.log.Info("IPSEC_REPLAY_COUNTER_SYNC ignored", "err", err)
		return 0
	}
	if delta > 0 && s.hooks.SkipOutbound != nil {
		s.hooks.SkipOutbound(delta)
	}
	return delta
}

// haInformational handles N(IPSEC_REPLAY_COUNTER_SYNC) alone in an
// ordinary INFORMATIONAL request (§5, case 2).
func (s *Session) haInformational(st *ikeState, ps []wire.Payload) {
	n := wire.FindNotify(ps, wire.NotifyIPsecReplayCounterSync)
	if n == nil || !s.initiatorRole || st != s.cur {
		return
	}
	if d := s.haReplayDelta(n); d > 0 {
		s.log.Info("HA sync: replay counters skipped forward", "delta", d)
		if s.hooks.HASynced != nil {
			s.hooks.HASynced(HASync{SPIi: st.spii, SPIr: st.spir, ReplayDelta: d})
		}
	}
}

// StartHASync runs the RFC 6311 synchronisation towards the client, as a
// standby that took the IKE SA over does: message IDs when both sides
// support it (an INFORMATIONAL with message ID 0), and replayDelta (the
// client's outbound ESP packets the standby may have missed) with it or
// alone. Hooks.HASynced reports the result. False if the session ended or
// nothing was negotiated.
func (s *Session) StartHASync(replayDelta uint64) bool {
	ok := false
	s.do(func() { ok = s.queueHASync(replayDelta) })
	return ok
}

func (s *Session) queueHASync(delta uint64) bool {
	st := s.cur
	var esn bool
	if s.child != nil {
		esn = s.child.Suite.ESN
	}
	var replay *wire.Notify
	if delta > 0 && s.ha.replaySync() {
		replay = &wire.Notify{NotifyType: wire.NotifyIPsecReplayCounterSync, Data: wire.EncodeReplayCounterSync(delta, esn)}
	}
	if !s.ha.msgIDSync() {
		if replay == nil {
			return false
		}
		s.queue = append(s.queue, &request{exch: wire.ExchangeInformational, payloads: []wire.Payload{replay}, st: st,
			onResponse: func([]wire.Payload) {
				if s.hooks.HASynced != nil {
					s.hooks.HASynced(HASync{SPIi: st.spii, SPIr: st.spir, ReplayDelta: delta})
				}
			}})
		return true
	}
	var nb [4]byte
	if _, err := io.ReadFull(s.rand, nb[:]); err != nil {
		return false
	}
	nonce := binary.BigEndian.Uint32(nb[:])
	r := &request{exch: wire.ExchangeInformational, id0: true, st: st}
	r.build = func(st *ikeState) []wire.Payload {
		ps := []wire.Payload{&wire.Notify{NotifyType: wire.NotifyIKEv2MessageIDSync,
			Data: wire.MessageIDSync{Nonce: nonce, ExpectedSend: st.nextID, ExpectedRecv: st.peerNext}.Encode()}}
		if replay != nil {
			ps = append(ps, replay)
		}
		return ps
	}
	r.accept = func(ps []wire.Payload) bool {
		if len(ps) != 1 {
			return false
		}
		n, ok := ps[0].(*wire.Notify)
		if !ok || n.NotifyType != wire.NotifyIKEv2MessageIDSync {
			return false
		}
		m, err := wire.ParseMessageIDSync(n.Data)
		if err != nil || m.Nonce != nonce {
			// §5.1: a response with another nonce is dropped silently.
			s.log.Info("HA sync response dropped: nonce or format does not match")
			return false
		}
		// The client's values: its next request and the request it
		// expects from us next.
		st.nextID = max(st.nextID, m.ExpectedRecv)
		st.peerNext = max(st.peerNext, m.ExpectedSend)
		st.lastResp = nil
		s.log.Info("HA sync: message IDs synchronised", "next_id", st.nextID, "peer_next", st.peerNext, "replay_delta", delta)
		if s.hooks.HASynced != nil {
			d := uint64(0)
			if replay != nil {
				d = delta
			}
			s.hooks.HASynced(HASync{SPIi: st.spii, SPIr: st.spir, MessageIDs: true, NextID: st.nextID, PeerNext: st.peerNext, ReplayDelta: d})
		}
		return true
	}
	// The sync goes first: whatever else is queued uses the new IDs.
	s.queue = append([]*request{r}, s.queue...)
	return true
}

// SessionState is what a hot-standby gateway needs to take over an
// established IKE SA from the active member: keys, message IDs, the
// current Child SA, the lease. It holds every secret of the SA: keep it
// sealed and private (the gateway's state file is).
type SessionState struct {
	SPIi     uint64         `json:"spi_i"`
	SPIr     uint64         `json:"spi_r"`
	Suite    Suite          `json:"suite"`
	SKd      []byte         `json:"sk_d"`
	SKai     []byte         `json:"sk_ai,omitempty"`
	SKar     []byte         `json:"sk_ar,omitempty"`
	SKei     []byte         `json:"sk_ei"`
	SKer     []byte         `json:"sk_er"`
	SKpi     []byte         `json:"sk_pi"`
	SKpr     []byte         `json:"sk_pr"`
	NextID   uint32         `json:"next_id"`   // our next request's message ID
	PeerNext uint32         `json:"peer_next"` // the client's next expected request ID
	Remote   netip.AddrPort `json:"remote"`
	Encap    bool           `json:"encap"`
	PeerID   auth.Identity  `json:"peer_id"`
	// VirtualIPs are the client's leases.
	VirtualIPs []netip.Prefix `json:"virtual_ips,omitempty"`
	AuthMethod uint8          `json:"auth_method"`
	Resumed    bool           `json:"resumed,omitempty"`
	RedirectOK bool           `json:"redirect_ok,omitempty"`
	// Fragment: the client supports RFC 7383 fragmentation (ML-KEM
	// values in rekeys need it).
	Fragment bool `json:"fragment,omitempty"`
	// HAMessageID and HAReplay: the client announced the RFC 6311
	// capabilities and we answered.
	HAMessageID bool      `json:"ha_message_id,omitempty"`
	HAReplay    bool      `json:"ha_replay,omitempty"`
	Child       *ChildSA  `json:"child"`
	Established time.Time `json:"established"`
}

// Export snapshots a gateway-side session for a standby (taken on the
// session's goroutine, so it is consistent). An IKE or Child SA rekey in
// progress is not part of it: the standby has the current SAs.
func (s *Session) Export() (*SessionState, error) {
	if s.initiatorRole {
		return nil, errors.New("ike: export: only gateway-side sessions are exported")
	}
	var out *SessionState
	if !s.do(func() {
		st := s.cur
		k := st.keys.keys
		cp := func(b []byte) []byte { return append([]byte(nil), b...) }
		out = &SessionState{
			SPIi: st.spii, SPIr: st.spir, Suite: st.suite,
			SKd: cp(k.SKd), SKai: cp(k.SKai), SKar: cp(k.SKar), SKei: cp(k.SKei), SKer: cp(k.SKer), SKpi: cp(k.SKpi), SKpr: cp(k.SKpr),
			NextID: st.nextID, PeerNext: st.peerNext, Remote: s.remote, Encap: s.encap,
			PeerID:     auth.Identity{Type: s.PeerID.Type, Data: cp(s.PeerID.Data)},
			VirtualIPs: append([]netip.Prefix(nil), s.VirtualIPs...),
			AuthMethod: s.authMethod, Resumed: s.resumed, RedirectOK: s.redirectOK, Fragment: s.fragment,
			HAMessageID: s.ha.msgIDSync(), HAReplay: s.ha.replaySync(),
			Established: s.Established,
		}
		if c := s.child; c != nil {
			cc := *c
			cc.EncrIn, cc.IntegIn, cc.EncrOut, cc.IntegOut = cp(c.EncrIn), cp(c.IntegIn), cp(c.EncrOut), cp(c.IntegOut)
			cc.TSi, cc.TSr = append([]wire.Selector(nil), c.TSi...), append([]wire.Selector(nil), c.TSr...)
			out.Child = &cc
		}
	}) {
		return nil, ErrClosed
	}
	if out.Child == nil {
		return nil, errors.New("ike: export: the IKE SA has no Child SA")
	}
	return out, nil
}

// keys checks the state and builds the responder's SA keys from it.
func (ss *SessionState) keys() (*saKeys, error) {
	if ss.SPIi == 0 || ss.SPIr == 0 {
		return nil, errors.New("IKE SPI is zero")
	}
	if !ss.Remote.IsValid() || ss.Remote.Port() == 0 {
		return nil, fmt.Errorf("invalid remote %s", ss.Remote)
	}
	if len(ss.PeerID.Data) == 0 || len(ss.PeerID.Data) > 1024 {
		return nil, errors.New("peer identity missing or too long")
	}
	prf, err := ikecrypto.NewPRF(ss.Suite.PRF)
	if err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	if len(ss.SKd) != prf.Size() || len(ss.SKpi) != prf.Size() || len(ss.SKpr) != prf.Size() {
		return nil, errors.New("SK_d, SK_pi or SK_pr does not fit the PRF")
	}
	ci, err := ikecrypto.NewSKCipher(ss.Suite.Encr, ss.Suite.KeyBits, ss.Suite.Integ, ss.SKei, ss.SKai)
	if err != nil {
		return nil, fmt.Errorf("initiator keys: %w", err)
	}
	cr, err := ikecrypto.NewSKCipher(ss.Suite.Encr, ss.Suite.KeyBits, ss.Suite.Integ, ss.SKer, ss.SKar)
	if err != nil {
		return nil, fmt.Errorf("responder keys: %w", err)
	}
	c := ss.Child
	if c == nil {
		return nil, errors.New("no Child SA")
	}
	if c.SPIIn < 256 || c.SPIOut < 256 {
		return nil, errors.New("invalid Child SA SPI")
	}
	encLen, err := ikecrypto.EncrKeyLen(c.Suite.Encr, c.Suite.KeyBits)
	if err != nil {
		return nil, fmt.Errorf("child suite: %w", err)
	}
	integLen := 0
	if c.Suite.Integ != ikecrypto.IntegNone {
		in, err := ikecrypto.NewIntegrity(c.Suite.Integ)
		if err != nil {
			return nil, fmt.Errorf("child suite: %w", err)
		}
		integLen = in.KeyLen()
	}
	if len(c.EncrIn) != encLen || len(c.EncrOut) != encLen || len(c.IntegIn) != integLen || len(c.IntegOut) != integLen {
		return nil, errors.New("Child SA keys do not fit its suite")
	}
	if len(c.TSi) == 0 || len(c.TSr) == 0 {
		return nil, errors.New("Child SA without traffic selectors")
	}
	for _, p := range ss.VirtualIPs {
		if !p.IsValid() {
			return nil, errors.New("invalid virtual IP")
		}
	}
	k := ikecrypto.IKEKeys{SKd: ss.SKd, SKai: ss.SKai, SKar: ss.SKar, SKei: ss.SKei, SKer: ss.SKer, SKpi: ss.SKpi, SKpr: ss.SKpr}
	return &saKeys{suite: ss.Suite, prf: prf, keys: k, out: cr, in: ci}, nil
}

// Check reports, in one line, what makes the state unusable.
func (ss *SessionState) Check() error {
	if _, err := ss.keys(); err != nil {
		return fmt.Errorf("ike: session state %016x/%016x: %w", ss.SPIi, ss.SPIr, err)
	}
	return nil
}

// ErrSAExists: an imported IKE SA is already served by this responder.
var ErrSAExists = errors.New("ike: import: the IKE SA exists already")

// Import takes over an IKE SA exported by another gateway (the active
// member of a hot-standby pair): it registers the SA, leases its virtual
// addresses, builds the session with the configured Hooks and Timers,
// starts it and delivers it on Sessions like a new one. Message IDs stay
// as exported; with message-ID sync negotiated our next request ID moves
// forward by a margin, and StartHASync then brings both sides in step.
func (r *Responder) Import(ss *SessionState) (*Session, error) {
	keys, err := ss.keys()
	if err != nil {
		return nil, fmt.Errorf("ike: import %016x/%016x: %w", ss.SPIi, ss.SPIr, err)
	}
	if r.t.hasSA(ss.SPIr) {
		return nil, ErrSAExists
	}
	now := time.Now()
	peer := auth.Identity{Type: ss.PeerID.Type, Data: append([]byte(nil), ss.PeerID.Data...)}
	child := *ss.Child
	s := &Session{
		cfg:    r.scfg,
		log:    r.log.With("peer", peer.String(), "remote", ss.Remote.String(), "spi_i", fmt.Sprintf("%016x", ss.SPIi), "spi_r", fmt.Sprintf("%016x", ss.SPIr)),
		t:      r.t,
		rand:   r.rand,
		remote: ss.Remote,
		encap:  ss.Encap,
		SPIi:   ss.SPIi,
		SPIr:   ss.SPIr,
		Suite:  ss.Suite,
		PeerID: peer,
		cur: &ikeState{spii: ss.SPIi, spir: ss.SPIr, initiator: false, keys: keys, suite: ss.Suite,
			nextID: ss.NextID, peerNext: ss.PeerNext},
		Child:       &child,
		VirtualIPs:  append([]netip.Prefix(nil), ss.VirtualIPs...),
		Established: ss.Established,
		authMethod:  ss.AuthMethod,
		resumed:     ss.Resumed,
		redirectOK:  ss.RedirectOK,
		fragment:    ss.Fragment,
		reqs:        make(chan *request),
		cmds:        make(chan func()),
		hints:       make(chan struct{}, 1),
		done:        make(chan struct{}),
		lastIn:      now,
		lastSeen:    now,
		spis:        [2]uint64{ss.SPIi, ss.SPIr},
		imported:    true,
	}
	if s.Established.IsZero() {
		s.Established = now
	}
	s.ha = haState{ourMsgID: ss.HAMessageID, peerMsgID: ss.HAMessageID, ourReplay: ss.HAReplay, peerReplay: ss.HAReplay}
	if s.ha.msgIDSync() {
		s.cur.nextID += haMsgIDMargin
	}
	if err := r.leaseImported(s); err != nil {
		return nil, fmt.Errorf("ike: import %016x/%016x: %w", ss.SPIi, ss.SPIr, err)
	}
	s.ch = r.t.register(ss.SPIr)
	r.mu.Lock()
	r.stats.Established++
	k := peerKey(s.PeerID)
	r.peers[k] = append(liveSessions(r.peers[k]), s)
	r.mu.Unlock()
	var hooks Hooks
	if r.cfg.Hooks != nil {
		hooks = r.cfg.Hooks(s)
	}
	s.Start(hooks, r.cfg.Timers)
	s.log.Info("IKE SA imported", "next_id", s.cur.nextID, "peer_next", s.cur.peerNext,
		"ha_message_id", s.ha.msgIDSync(), "ha_replay", s.ha.replaySync())
	r.deliver(s)
	return s, nil
}

// Imported reports whether the session was taken over with Import.
func (s *Session) Imported() bool { return s.imported }

// leaseImported marks the imported session's virtual addresses as leased.
func (r *Responder) leaseImported(s *Session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := peerKey(s.PeerID)
	for _, v := range s.VirtualIPs {
		a := v.Addr()
		for _, p := range []*addrPool{r.pool4, r.pool6} {
			if p == nil || !p.contains(a) {
				continue
			}
			if !p.free(a) {
				return fmt.Errorf("virtual IP %s is leased already", a)
			}
			p.leases[a] = &lease{peer: k, s: s}
		}
	}
	return nil
}
