package ike

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// ikeState is the part of an IKE SA that changes when it is rekeyed: SPIs,
// keys, our role in it and its message IDs.
type ikeState struct {
	spii, spir uint64
	initiator  bool // we are the original initiator of this IKE SA
	keys       *saKeys
	suite      Suite
	nextID     uint32   // our next request's message ID
	peerNext   uint32   // the peer's next expected request ID
	lastResp   [][]byte // cached response (or its fragments) to the peer's last request
}

// ourSPI is the SPI we chose; the transport routes on it.
func (st *ikeState) ourSPI() uint64 {
	if st.initiator {
		return st.spii
	}
	return st.spir
}

func (st *ikeState) header(exch wire.ExchangeType, id uint32, response bool) wire.Header {
	h := wire.Header{SPIi: st.spii, SPIr: st.spir, Version: 0x20, Exchange: exch, MessageID: id}
	if st.initiator {
		h.Flags |= wire.FlagInitiator
	}
	if response {
		h.Flags |= wire.FlagResponse
	}
	return h
}

// Hooks let the layers above follow an established session. They run on
// the session's goroutine and must not block for long.
type Hooks struct {
	// ChildRekeyed: next replaces prev (make before break: prev's inbound
	// SA must keep working until ChildGone(prev)). With sendNow false the
	// gateway started the rekey: keep sending on prev until ChildOutbound.
	ChildRekeyed func(prev, next *ChildSA, sendNow bool)
	// ChildOutbound: start sending on c.
	ChildOutbound func(c *ChildSA)
	// ChildAdded: accept inbound traffic on c too (a simultaneous rekey
	// made it); sending stays as it is.
	ChildAdded func(c *ChildSA)
	// ChildGone: the SA pair was deleted and must no longer be used.
	ChildGone func(c *ChildSA)
	// IKERekeyed: the IKE SA now has new SPIs.
	IKERekeyed func(spii, spir uint64)
	// Traffic reports the data plane's packet counters, so that inbound
	// ESP proves the peer alive and outbound without answer triggers a
	// fast liveness check.
	Traffic func() (in, out uint64)
	// ArmTraffic is called when the tunnel goes quiet: the data plane
	// calls Session.Nudge on its next outbound packet. Until then the
	// session sleeps until its next liveness or rekey deadline instead of
	// polling the counters (battery). Without it the counters are polled
	// twice per FastLiveness.
	ArmTraffic func()

	// Unprotected receives a message naming this IKE SA that carries no
	// SK payload (RFC 6290 §4.5: INVALID_IKE_SPI with QCD tokens). A
	// non-nil error ends the session silently, sending no Delete.
	Unprotected func(raw []byte, from netip.AddrPort) error
	// Notifies receives the status notifies (QCD_TOKEN, TICKET_*) of a
	// protected message of the IKE SA spii/spir: an IKE rekey response,
	// an INFORMATIONAL either way. rs describes that SA for a ticket.
	Notifies func(spii, spir uint64, ns []*wire.Notify, rs *ResumeState)
	// Respond adds notifies to our response to an INFORMATIONAL or an IKE
	// rekey request of the peer (the gateway's QCD_TOKEN and tickets);
	// spii/spir name the SA the response is for (the new one of a
	// rekey, then rekey is true) and req holds the request's notifies.
	Respond func(spii, spir uint64, rekey bool, req []*wire.Notify, rs *ResumeState) []*wire.Notify
	// PeerMoved: the peer's address changed (RFC 4555: the gateway side
	// of an UPDATE_SA_ADDRESSES, or the client's float to port 4500 when
	// a NAT appeared on the new path); ESP must go to to from now on.
	PeerMoved func(from, to netip.AddrPort)

	// Announce returns notifies to send in an INFORMATIONAL right after an
	// IKE rekey we started (RFC 6290 §4.3: the initiator's new token).
	Announce func(spii, spir uint64) []*wire.Notify

	// SkipOutbound adds delta to the outbound ESP sequence numbers of
	// every Child SA of the IKE SA (RFC 6311 §5.2, asked by a standby
	// gateway that took over).
	SkipOutbound func(delta uint64)
	// HASynced reports a completed RFC 6311 synchronisation.
	HASynced func(HASync)
}

// statusNotify reports whether upper layers care about n.
func statusNotify(n wire.NotifyType) bool {
	switch n {
	case wire.NotifyQCDToken, wire.NotifyTicketLTOpaque, wire.NotifyTicketAck, wire.NotifyTicketNack, wire.NotifyTicketRequest:
		return true
	}
	return false
}

// reportNotifies hands the status notifies of ps, received under st, to
// the Notifies hook.
func (s *Session) reportNotifies(st *ikeState, ps []wire.Payload) {
	if s.hooks.Notifies == nil {
		return
	}
	var ns []*wire.Notify
	for _, p := range ps {
		if n, ok := p.(*wire.Notify); ok && statusNotify(n.NotifyType) {
			ns = append(ns, n)
		}
	}
	if len(ns) > 0 {
		s.hooks.Notifies(st.spii, st.spir, ns, s.resumeState(st))
	}
}

// respondNotifies asks the Respond hook for additions to a response.
func (s *Session) respondNotifies(st *ikeState, rekey bool, req []wire.Payload) []wire.Payload {
	if s.hooks.Respond == nil {
		return nil
	}
	var ns []*wire.Notify
	for _, p := range req {
		if n, ok := p.(*wire.Notify); ok && statusNotify(n.NotifyType) {
			ns = append(ns, n)
		}
	}
	var out []wire.Payload
	if len(ns) == 0 && !rekey {
		return nil // a liveness check or delete: nothing to add
	}
	for _, n := range s.hooks.Respond(st.spii, st.spir, rekey, ns, s.resumeState(st)) {
		out = append(out, n)
	}
	return out
}

// SendNotifies sends ns in an INFORMATIONAL request (e.g. a gratuitous
// QCD_TOKEN, RFC 6290 §4.4, or a TICKET_REQUEST); the answer's status
// notifies reach the Notifies hook. False if the session has ended.
func (s *Session) SendNotifies(ns []*wire.Notify) bool {
	return s.do(func() { s.queueNotifies(ns) })
}

func (s *Session) queueNotifies(ns []*wire.Notify) {
	ps := make([]wire.Payload, 0, len(ns))
	for _, n := range ns {
		ps = append(ps, n)
	}
	st := s.cur
	s.queue = append(s.queue, &request{exch: wire.ExchangeInformational, payloads: ps, st: st, quiet: true,
		onResponse: func(resp []wire.Payload) { s.reportNotifies(st, resp) }})
}

// Timers tune an established session. Zero fields keep their defaults.
type Timers struct {
	// Liveness is how long the peer may stay silent before a liveness
	// check (default 30 s).
	Liveness time.Duration
	// FastLiveness is the first timeout of a fast liveness check, started
	// when outbound traffic gets no inbound answer or on a hint (default 1 s).
	FastLiveness time.Duration
	// IKELifetime and ChildLifetime are when the SAs are rekeyed (with up
	// to 10 % jitter earlier); zero means never.
	IKELifetime, ChildLifetime time.Duration
}

func (t Timers) withDefaults() Timers {
	if t.Liveness <= 0 {
		t.Liveness = 30 * time.Second
	}
	if t.FastLiveness <= 0 {
		t.FastLiveness = time.Second
	}
	return t
}

// Session is an established IKE SA seen from the client. One goroutine
// owns its state; callers talk to it through methods.
type Session struct {
	cfg    *Config
	log    *slog.Logger
	t      *Transport
	ch     chan Datagram
	rand   io.Reader
	remote netip.AddrPort
	encap  bool

	// SPIi and SPIr identify the IKE SA as first established; see SPIs
	// for the current ones after a rekey.
	SPIi, SPIr uint64
	// Suite is the IKE SA's negotiated algorithms.
	Suite Suite
	// PeerID is the identity the gateway authenticated as.
	PeerID auth.Identity
	// VirtualIPs and DNS come from the gateway's CP reply.
	VirtualIPs []netip.Prefix
	DNS        []netip.Addr
	// Domains are the split-DNS domains (RFC 8598 INTERNAL_DNS_DOMAIN)
	// the DNS servers resolve, lower case, without trailing dot.
	Domains []string
	// AuthNotifies holds the status notifies of the IKE_AUTH response
	// (QCD token, ticket, …) for the layers above.
	AuthNotifies []*wire.Notify
	// Child is the first Child SA.
	Child *ChildSA
	// Established is when IKE_AUTH completed.
	Established time.Time

	initiatorRole bool  // we initiated the IKE SA first (the client)
	authMethod    uint8 // the initiator's AUTH method (for tickets)
	resumed       bool  // made by IKE_SESSION_RESUME
	redirectOK    bool  // the initiator supports RFC 5685 redirects
	fragment      bool  // the peer supports RFC 7383 fragmentation
	mobike        bool  // both sides sent MOBIKE_SUPPORTED (RFC 4555)

	// Loop-owned state.
	cur        *ikeState
	old        *ikeState  // an IKE SA replaced by a rekey, until it is deleted
	child      *ChildSA   // the Child SA in use
	oldChild   *ChildSA   // replaced by a rekey, until its delete completes
	sendWait   *ChildSA   // rekeyed by the gateway, not yet sent on
	extra      []*ChildSA // redundant SAs of a simultaneous rekey, until deleted
	collisions int        // simultaneous Child SA rekeys resolved
	frags      *reassembler
	local      netip.AddrPort // our address as the peer knows it (under mu)
	reqFrom    netip.AddrPort // where the request being answered came from
	held       *heldResponse  // an answer waiting for the answer to our request of the same ID
	roamGen    uint64         // counts our UPDATE_SA_ADDRESSES requests
	seenAs     seenAs         // how the gateway last saw our address (MOBIKE)
	queue      []*request
	out        *pending
	timers     Timers
	hooks      Hooks
	lastIn     time.Time // last sign of life from the peer
	trafIn     uint64
	trafOut    uint64
	outSince   time.Time // when outbound traffic started going unanswered
	ikeRekey   time.Time
	chRekey    time.Time
	rekeys     rekeyState

	reqs      chan *request
	cmds      chan func()
	nudges    chan struct{}
	active    bool // outbound traffic seen at the last poll
	hints     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	mu        sync.Mutex
	err       error
	spis      [2]uint64
	lastSeen  time.Time
	started   bool
	wakeups   atomic.Uint64 // fires of the loop's tick timer
	drops     dropCounters  // inbound messages discarded (see Drops)

	ha       haState // RFC 6311 (hasync.go)
	imported bool    // taken over from another gateway (Responder.Import)
}

// request is one exchange we start.
type request struct {
	exch     wire.ExchangeType
	payloads []wire.Payload
	rt       Retransmit
	// onResponse handles the decrypted response on the loop goroutine.
	onResponse func(ps []wire.Payload)
	// failErr ends the session when the peer does not answer.
	failErr error
	result  chan error
	deletes bool // deletes the IKE SA
	st      *ikeState
	// quiet: no answer is not fatal (deleting a replaced SA).
	quiet bool
	// id0 sends the request with message ID 0, outside the window (RFC
	// 6311 sync); build, when set, makes the payloads at sending time;
	// accept, when set, may refuse a response, which is then dropped.
	id0    bool
	build  func(st *ikeState) []wire.Payload
	accept func(ps []wire.Payload) bool
	// roam is set on an UPDATE_SA_ADDRESSES request (RFC 4555): where
	// its outcome goes when a newer one replaces it unsent.
	roam chan error
	// natCheck marks a MOBIKE liveness check with NAT detection.
	natCheck bool
}

// pending is our one outstanding request (window size 1).
type pending struct {
	req     *request
	id      uint32
	raw     [][]byte // the request, or its fragments
	tries   int
	timeout time.Duration
	st      *ikeState
}

// ErrLivenessFailed: the gateway did not answer a liveness check.
var ErrLivenessFailed = errors.New("gateway did not answer the liveness check")

func newSession(st *initState) *Session {
	now := time.Now()
	s := &Session{
		cfg:         st.cfg,
		log:         st.cfg.logger(),
		t:           st.t,
		ch:          st.ch,
		rand:        st.rand,
		remote:      st.remote,
		encap:       st.encap,
		local:       st.local,
		seenAs:      seenAs{spii: st.spii, spir: st.spir, hash: st.seenAs},
		SPIi:        st.spii,
		SPIr:        st.spir,
		Suite:       st.suite,
		Established: now,
		cur: &ikeState{spii: st.spii, spir: st.spir, initiator: true, keys: st.keys, suite: st.suite,
			nextID: st.nextMsgID(), peerNext: 0},
		reqs:     make(chan *request),
		cmds:     make(chan func()),
		nudges:   make(chan struct{}, 1),
		hints:    make(chan struct{}, 1),
		done:     make(chan struct{}),
		lastIn:   now,
		lastSeen: now,
		spis:     [2]uint64{st.spii, st.spir},
		frags:    newReassembler(0, 0),
		fragment: st.peerFragment,
	}
	return s
}

// Remote is the gateway's address (after any float to the NAT-T port).
func (s *Session) Remote() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remote
}

// Transport is the socket the session uses.
func (s *Session) Transport() *Transport { return s.t }

// SPIs returns the current IKE SPIs (they change when the IKE SA is rekeyed).
func (s *Session) SPIs() (spii, spir uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spis[0], s.spis[1]
}

func (s *Session) applyCP(cp *wire.CP) {
	for _, a := range cp.Attributes {
		switch a.Type {
		case wire.CPInternalIP4Address:
			if ip, ok := netip.AddrFromSlice(a.Value); ok && len(a.Value) == 4 {
				s.VirtualIPs = append(s.VirtualIPs, netip.PrefixFrom(ip, 32))
			}
		case wire.CPInternalIP6Address:
			if len(a.Value) == 17 {
				ip, _ := netip.AddrFromSlice(a.Value[:16])
				s.VirtualIPs = append(s.VirtualIPs, netip.PrefixFrom(ip, 128))
			}
		case wire.CPInternalIP4DNS, wire.CPInternalIP6DNS:
			if ip, ok := netip.AddrFromSlice(a.Value); ok && (len(a.Value) == 4 || len(a.Value) == 16) {
				s.DNS = append(s.DNS, ip)
			}
		case wire.CPInternalDNSDomain:
			s.addDNSDomain(a.Value)
		}
	}
}

// Start runs the session's goroutine with the given hooks and timers. Until
// Start, requests from the gateway wait in the transport's queue.
func (s *Session) Start(h Hooks, t Timers) {
	s.hooks = h
	s.timers = t.withDefaults()
	s.child = s.Child
	now := time.Now()
	s.ikeRekey = rekeyTime(now, s.timers.IKELifetime, s.rand)
	s.chRekey = rekeyTime(now, s.timers.ChildLifetime, s.rand)
	if h.ArmTraffic != nil {
		h.ArmTraffic()
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	s.wg.Add(1)
	go s.loop()
}

// Done is closed when the IKE SA has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is the reason the session ended, or nil while it is up.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// LastSeen is when the gateway last proved it is alive.
func (s *Session) LastSeen() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeen
}

// Hint reports an unauthenticated sign that the gateway may have lost the
// SA (INVALID_SPI, INVALID_IKE_SPI); it starts a fast liveness check.
func (s *Session) Hint() {
	select {
	case s.hints <- struct{}{}:
	default:
	}
}

// do runs f on the session's goroutine and waits for it; false if the
// session has ended.
func (s *Session) do(f func()) bool {
	done := make(chan struct{})
	select {
	case s.cmds <- func() { f(); close(done) }:
		<-done
		return true
	case <-s.done:
		return false
	}
}

// Nudge tells a quiet session that outbound traffic started again, so it
// watches for answers (see Hooks.ArmTraffic). It never blocks.
func (s *Session) Nudge() {
	select {
	case s.nudges <- struct{}{}:
	default:
	}
}

// Wakeups counts how often the session's own timer woke it (liveness
// checks, rekeys, watching an active flow) since Start; requests and
// answers from the network are not counted. An idle tunnel wakes about
// once per liveness interval (battery tests, diagnostics).
func (s *Session) Wakeups() uint64 { return s.wakeups.Load() }

// RekeyChild starts a rekey of the Child SA now, as if its lifetime had
// run out.
func (s *Session) RekeyChild() { s.do(s.startChildRekey) }

// RekeyIKE starts a rekey of the IKE SA now.
func (s *Session) RekeyIKE() { s.do(s.startIKERekey) }

// Close deletes the IKE SA at the gateway (waiting for its answer until ctx
// ends) and stops the session.
func (s *Session) Close(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		// No loop to wait for an answer: tell the gateway once, so it
		// frees the SA and its address lease.
		s.sendDeleteOnce()
		s.finish(ErrClosed)
		return nil
	}
	r := &request{exch: wire.ExchangeInformational, payloads: []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}},
		result: make(chan error, 1), deletes: true, failErr: ErrClosed,
		rt: Retransmit{Timeout: 500 * time.Millisecond, Base: 2, Tries: 3}}
	var err error
	select {
	case s.reqs <- r:
		select {
		case err = <-r.result:
		case <-ctx.Done():
			err = ctx.Err()
		case <-s.done:
		}
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.done:
	}
	s.finish(ErrClosed)
	s.wg.Wait()
	return err
}

// sendDeleteOnce tells the gateway, without waiting, that the IKE SA is
// gone.
func (s *Session) sendDeleteOnce() {
	st := s.cur
	if raw, err := st.keys.seal(st.header(wire.ExchangeInformational, st.nextID, false),
		[]wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}}, s.rand); err == nil {
		st.nextID++
		_ = s.t.Send(raw, s.remote, s.encap)
	}
}

// close releases a session that never started its loop.
func (s *Session) close() {
	s.finish(ErrClosed)
}

// Abandon ends the session without telling the gateway (it is known dead,
// e.g. after a verified QCD token).
func (s *Session) Abandon(reason error) {
	s.finish(reason)
	s.wg.Wait()
}

func (s *Session) finish(err error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		started := s.started
		s.mu.Unlock()
		if !started {
			// A running loop unregisters its SAs itself when it ends;
			// before it starts only the first SA exists.
			s.t.unregister(s.cur.ourSPI())
		}
		close(s.done)
	})
}

func (s *Session) loop() {
	defer s.wg.Done()
	defer func() {
		for _, st := range []*ikeState{s.cur, s.old} {
			if st != nil {
				s.t.unregister(st.ourSPI())
			}
		}
	}()
	retx := time.NewTimer(time.Hour)
	retx.Stop()
	defer retx.Stop()
	tick := time.NewTimer(s.nextTick(time.Now()))
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			if s.out != nil && s.out.req.result != nil {
				s.out.req.result <- s.Err()
			}
			return
		case r := <-s.reqs:
			s.queue = append(s.queue, r)
		case f := <-s.cmds:
			f()
		case <-s.nudges:
			s.active = true
		case <-retx.C:
			if p := s.out; p != nil {
				if p.tries >= p.req.rt.Tries {
					s.out = nil
					if p.req.result != nil {
						p.req.result <- p.req.failErr
					}
					s.log.Info("request unanswered", "exchange", p.req.exch, "tries", p.tries)
					if p.req.quiet {
						if p.st == s.old {
							s.dropOld(p.st)
						}
						continue
					}
					s.finish(p.req.failErr)
					continue
				}
				p.tries++
				p.timeout = time.Duration(float64(p.timeout) * p.req.rt.Base)
				for _, m := range p.raw {
					_ = s.t.Send(m, s.remote, s.encap)
				}
				retx.Reset(p.timeout)
			}
		case <-s.hints:
			s.livenessCheck(true)
		case <-tick.C:
			s.wakeups.Add(1)
			s.periodic(time.Now())
		case d := <-s.ch:
			s.inbound(d, retx)
		}
		select {
		case <-s.done:
			continue // ended: the next pass returns
		default:
		}
		if s.out == nil && len(s.queue) > 0 {
			s.sendNext(retx)
		}
		// Any event may move a deadline (a finished rekey sets the next
		// one), so the wake-up is recomputed each time; Go 1.23 timers
		// need no draining.
		tick.Reset(s.nextTick(time.Now()))
	}
}

// sendNext starts the first queued request.
func (s *Session) sendNext(retx *time.Timer) {
	r := s.queue[0]
	s.queue = s.queue[1:]
	st := r.st
	if st == nil {
		st = s.cur
	}
	payloads, id := r.payloads, st.nextID
	if r.build != nil {
		payloads = r.build(st)
	}
	if r.id0 {
		id = 0
	}
	raw, err := s.sealFor(st, st.header(r.exch, id, false), payloads)
	if err != nil {
		if r.result != nil {
			r.result <- err
		}
		return
	}
	rt := r.rt
	if rt.Tries == 0 {
		rt = s.cfg.Retransmit
		r.rt = rt
	}
	if r.failErr == nil {
		r.failErr = ErrNoResponse
	}
	s.out = &pending{req: r, id: id, raw: raw, tries: 1, timeout: rt.Timeout, st: st}
	if !r.id0 {
		st.nextID++
	}
	for _, m := range raw {
		if err := s.t.Send(m, s.remote, s.encap); err != nil {
			s.log.Debug("sending a request", "exchange", r.exch, "id", id, "err", err)
		}
	}
	retx.Reset(rt.Timeout)
}

// stateFor finds which IKE SA (current or retiring) a message belongs to.
func (s *Session) stateFor(spii, spir uint64) *ikeState {
	for _, st := range []*ikeState{s.cur, s.old} {
		if st != nil && st.spii == spii && st.spir == spir {
			return st
		}
	}
	return nil
}

func (s *Session) inbound(d Datagram, retx *time.Timer) {
	if len(d.Data) < wire.HeaderLen {
		s.drops.malformed.Add(1)
		return
	}
	h0, err := wire.ParseHeader(d.Data)
	if err != nil {
		s.drops.malformed.Add(1)
		return
	}
	st := s.stateFor(h0.SPIi, h0.SPIr)
	if st == nil {
		s.drops.unknownSA.Add(1)
		return
	}
	if s.frags == nil {
		s.frags = newReassembler(0, 0)
	}
	h, ps, complete, err := s.frags.add(d.Data, st.keys)
	if errors.Is(err, errNotFragment) {
		h, ps, err = st.keys.open(d.Data)
		complete = true
	}
	if errors.Is(err, errNotEncrypted) && s.hooks.Unprotected != nil {
		if qerr := s.hooks.Unprotected(d.Data, d.From); qerr != nil {
			s.log.Info("IKE SA ended by an unprotected message", "from", d.From, "reason", qerr)
			s.finish(qerr)
			return
		}
		s.drops.unprotected.Add(1)
		return
	}
	if errors.Is(err, errNotEncrypted) {
		s.drops.unprotected.Add(1)
		return
	}
	if err != nil {
		s.drops.count(err)
		return
	}
	if !complete {
		// Unprotected, forged, or a fragment of more to come: never
		// changes state (RFC 7296 §2.21).
		return
	}
	s.alive(time.Now())
	if h.IsResponse() {
		p := s.out
		if p == nil || p.st != st || h.MessageID != p.id || (p.req.accept != nil && !p.req.accept(ps)) {
			s.drops.unexpected.Add(1)
			return
		}
		retx.Stop()
		s.out = nil
		if s.held != nil {
			// Let the peer finish with our request first.
			s.releaseHeldAfter(s.held, holdAfterAnswer)
		}
		if p.req.onResponse != nil {
			p.req.onResponse(ps)
		}
		if p.req.result != nil {
			p.req.result <- nil
		}
		if p.req.deletes && st == s.cur {
			s.finish(ErrClosed)
		}
		return
	}
	if h.MessageID == 0 && h.Exchange == wire.ExchangeInformational && s.haSyncRequest(st, d.Data, ps) {
		return // RFC 6311 message ID sync: outside the window
	}
	switch {
	case h.MessageID+1 == st.peerNext && st.lastResp != nil:
		for _, m := range st.lastResp {
			_ = s.t.Send(m, d.From, s.encap)
		}
		return
	case h.MessageID != st.peerNext:
		s.drops.replayed.Add(1)
		return
	}
	s.reqFrom = d.From
	resp, after := s.handleRequest(st, h, ps)
	raw, err := s.sealFor(st, st.header(h.Exchange, h.MessageID, true), resp)
	if err != nil {
		s.log.Warn("sealing response", "err", err)
		return
	}
	st.peerNext++
	st.lastResp = raw
	// RFC 7296 §2.11: the answer goes where the request came from (a
	// moved MOBIKE peer before its UPDATE_SA_ADDRESSES, a NAT's new
	// mapping).
	to := d.From
	if p := s.out; p != nil && p.st == st && p.id == h.MessageID {
		s.log.Debug("holding our answer until the peer answered our request of the same ID", "exchange", h.Exchange, "id", h.MessageID)
		s.holdResponse(raw, to)
	} else {
		for _, m := range raw {
			if err := s.t.Send(m, to, s.encap); err != nil {
				s.log.Debug("sending a response", "exchange", h.Exchange, "id", h.MessageID, "err", err)
			}
		}
	}
	if after != nil {
		after()
	}
}

// alive records a sign of life from the peer.
func (s *Session) alive(now time.Time) {
	s.lastIn = now
	s.outSince = time.Time{}
	s.mu.Lock()
	s.lastSeen = now
	s.mu.Unlock()
}

// handleRequest answers a request from the gateway. after runs once the
// response is sent.
func (s *Session) handleRequest(st *ikeState, h wire.Header, ps []wire.Payload) (resp []wire.Payload, after func()) {
	switch h.Exchange {
	case wire.ExchangeInformational:
		return s.informational(st, ps)
	case wire.ExchangeCreateChildSA:
		if st != s.cur {
			return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyTemporaryFailure}}, nil
		}
		return s.createChildRequest(ps)
	case wire.ExchangeIKEFollowupKE:
		return s.followupRequest(st, ps)
	default:
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidSyntax}}, nil
	}
}

// informational answers liveness checks, deletes and notifies.
func (s *Session) informational(st *ikeState, ps []wire.Payload) ([]wire.Payload, func()) {
	s.reportNotifies(st, ps)
	s.haInformational(st, ps)
	if n := wire.FindNotify(ps, wire.NotifyRedirect); n != nil && s.initiatorRole {
		// RFC 5685 §5: acknowledge, delete the SA, move on.
		if t, nonce, err := parseRedirect(n.Data); err == nil && len(nonce) == 0 {
			return nil, func() {
				s.sendDeleteOnce()
				s.finish(&RedirectError{To: t, Phase: "session"})
			}
		}
	}
	resp := s.respondNotifies(st, false, ps)
	resp = append(resp, s.mobikeRespond(st, ps)...)
	for _, p := range ps {
		del, ok := p.(*wire.Delete)
		if !ok {
			continue
		}
		switch del.Protocol {
		case wire.ProtoIKE:
			if st == s.old {
				// The gateway retires the SA it replaced.
				old := st
				return nil, func() { s.dropOld(old) }
			}
			return nil, func() { s.finish(ErrPeerDeleted) }
		case wire.ProtoESP:
			for _, spi := range del.SPIs {
				if c := s.childByOutSPI(spi); c != nil {
					resp = append(resp, &wire.Delete{Protocol: wire.ProtoESP, SPISize: 4, SPIs: [][]byte{spiBytes(c.SPIIn)}})
					gone := c
					defer func() { s.childDeleted(gone) }()
				}
			}
		}
	}
	return resp, nil
}

func (s *Session) childByOutSPI(spi []byte) *ChildSA {
	if len(spi) != 4 {
		return nil
	}
	v := uint32(spi[0])<<24 | uint32(spi[1])<<16 | uint32(spi[2])<<8 | uint32(spi[3])
	for _, c := range append([]*ChildSA{s.child, s.oldChild}, s.extra...) {
		if c != nil && c.SPIOut == v {
			return c
		}
	}
	return nil
}

// childDeleted handles a Child SA the gateway deleted. Losing the one in
// use ends the session: a VPN without a Child SA carries nothing.
func (s *Session) childDeleted(c *ChildSA) {
	if p := s.rekeys.peer; p != nil && c == s.child && c == s.rekeys.childOf {
		// The gateway resolved a simultaneous rekey before our response
		// arrived: its SA replaces the deleted one now.
		s.rekeys.peer = nil
		s.adoptPeerRekey(nil, p)
		s.rekeys.peer = p // still compared when our response comes
		if s.hooks.ChildGone != nil {
			s.hooks.ChildGone(c)
		}
		return
	}
	if s.hooks.ChildGone != nil {
		s.hooks.ChildGone(c)
	}
	for i, x := range s.extra {
		if x == c {
			s.extra = append(s.extra[:i:i], s.extra[i+1:]...)
			return
		}
	}
	switch c {
	case s.oldChild:
		s.oldChild = nil
		if w := s.sendWait; w != nil {
			s.sendWait = nil
			if s.hooks.ChildOutbound != nil {
				s.hooks.ChildOutbound(w)
			}
		}
	case s.child:
		s.child = nil
		s.finish(errors.New("gateway deleted the child SA"))
	}
}

func spiBytes(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

// periodic runs the timers: liveness and rekeying.
func (s *Session) periodic(now time.Time) {
	var in, out uint64
	if s.hooks.Traffic != nil {
		in, out = s.hooks.Traffic()
		if in != s.trafIn {
			s.alive(now)
		} else if out != s.trafOut && s.outSince.IsZero() {
			// Outbound without inbound since the last tick.
			s.outSince = now
		}
		quiet := in == s.trafIn && out == s.trafOut
		s.trafIn, s.trafOut = in, out
		if quiet && s.outSince.IsZero() && s.hooks.ArmTraffic != nil {
			s.active = false
			s.hooks.ArmTraffic()
			// A packet sent between the poll and arming nudged nobody.
			if _, o := s.hooks.Traffic(); o != out {
				s.active = true
			}
		} else {
			s.active = true
		}
	}
	switch {
	case !s.outSince.IsZero() && now.Sub(s.outSince) >= s.timers.FastLiveness && now.Sub(s.lastIn) >= s.timers.FastLiveness:
		s.livenessCheck(true)
	case now.Sub(s.lastIn) >= s.timers.Liveness:
		s.livenessCheck(false)
	}
	// Lifetimes are wall-clock time: Round(0) drops the monotonic
	// reading, which stops while the device sleeps, so time asleep counts
	// and an overdue rekey runs on the first wake-up.
	wall := now.Round(0)
	if !s.ikeRekey.IsZero() && !wall.Before(s.ikeRekey) {
		s.ikeRekey = time.Time{}
		s.startIKERekey()
	}
	if !s.chRekey.IsZero() && !wall.Before(s.chRekey) {
		s.chRekey = time.Time{}
		s.startChildRekey()
	}
}

// nextTick is when periodic must run next: soon while traffic flows (to
// notice an unanswered flow within the fast liveness time), otherwise at
// the next liveness or rekey deadline, so an idle tunnel sleeps.
func (s *Session) nextTick(now time.Time) time.Duration {
	d := s.lastIn.Add(s.timers.Liveness).Sub(now)
	if s.hooks.Traffic != nil && (s.active || s.hooks.ArmTraffic == nil) {
		d = min(d, s.timers.FastLiveness/2)
	}
	// Rekey deadlines in wall-clock time, as periodic compares them.
	wall := now.Round(0)
	for _, t := range []time.Time{s.ikeRekey, s.chRekey} {
		if !t.IsZero() {
			d = min(d, t.Sub(wall))
		}
	}
	if d < 50*time.Millisecond {
		d = 50 * time.Millisecond
	}
	return d
}

// livenessCheck sends an empty INFORMATIONAL unless one is already queued
// or outstanding; fast uses the short schedule.
func (s *Session) livenessCheck(fast bool) {
	for _, r := range s.queue {
		if r.exch == wire.ExchangeInformational && len(r.payloads) == 0 {
			return
		}
	}
	if s.out != nil && s.out.req.exch == wire.ExchangeInformational && len(s.out.req.payloads) == 0 {
		return
	}
	rt := s.cfg.Retransmit
	if fast {
		// 3 s with the 1 s default, so that with the detection delay a
		// dead gateway is replaced within 5 s; four lost round trips in a
		// row are still needed for a false alarm on a lossy path.
		rt = Retransmit{Timeout: s.timers.FastLiveness * 3 / 4, Base: 1, Tries: 4}
	}
	s.log.Debug("liveness check", "fast", fast)
	s.lastIn = time.Now() // one check per interval
	s.outSince = time.Time{}
	if fast && s.mobike && s.initiatorRole {
		s.livenessNATCheck(rt)
		return
	}
	s.queue = append(s.queue, &request{exch: wire.ExchangeInformational, rt: rt, failErr: ErrLivenessFailed})
}

// heldResponse is our answer to a peer request that has the message ID
// of our own outstanding request.
type heldResponse struct {
	raw [][]byte
	to  netip.AddrPort
}

// holdAnswerFor is how long an answer is held at most, holdAfterAnswer
// how long after the peer answered our request (see holdResponse).
const (
	holdAnswerFor   = 100 * time.Millisecond
	holdAfterAnswer = 10 * time.Millisecond
)

// holdResponse delays an answer until the peer answered our request of
// the same message ID (and a little longer), or briefly: strongSwan tells requests from
// responses only after checking an IKE SA out, and drops a message whose
// ID is the one it is processing, so an answer that arrives while it
// still works on our request (it starts a Child SA rekey from within a
// MOBIKE update) would be lost until its retransmission, seconds later.
// Loop only.
func (s *Session) holdResponse(raw [][]byte, to netip.AddrPort) {
	s.releaseHeld()
	h := &heldResponse{raw: raw, to: to}
	s.held = h
	s.releaseHeldAfter(h, holdAnswerFor)
}

// releaseHeldAfter sends h after d unless it went out already.
func (s *Session) releaseHeldAfter(h *heldResponse, d time.Duration) {
	time.AfterFunc(d, func() {
		select {
		case s.cmds <- func() {
			if s.held == h {
				s.releaseHeld()
			}
		}:
		case <-s.done:
		}
	})
}

// releaseHeld sends a held answer now; loop only.
func (s *Session) releaseHeld() {
	h := s.held
	if h == nil {
		return
	}
	s.held = nil
	for _, m := range h.raw {
		_ = s.t.Send(m, h.to, s.encap)
	}
}
