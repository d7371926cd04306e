package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/qcdvpn/qcdvpn/ike"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
	"github.com/qcdvpn/qcdvpn/qcd"
	"github.com/qcdvpn/qcdvpn/resume"
	"github.com/qcdvpn/qcdvpn/tun"
)

// Options are the parts of a client that come from the embedding app
// rather than from the profile.
type Options struct {
	// Logger receives diagnostics. Secrets are never logged. Nil: discard.
	Logger *slog.Logger
	// OnEvent receives every event in order, from one goroutine of the
	// client's own. It may call Close.
	OnEvent func(Event)
	// LocalAddr is the UDP address to send IKE and ESP from (default ":0").
	LocalAddr string
	// DataPlane selects the TUN: kernel (default), netstack, the app's
	// device, or none.
	DataPlane DataPlane
	// TUNName names the kernel TUN interface (default "qcd0").
	TUNName string
	// Device is the app's TUN, used with DataPlaneDevice.
	Device tun.Device
	// StateDir overrides the profile's state_dir (tickets and QCD tokens).
	StateDir string
	// KeyProvider gives the key that seals the state at rest (mobile
	// apps: one held by Keystore/Keychain). Nil: a 0600 key file in the
	// state directory.
	KeyProvider resume.KeyProvider
	// Protect, if set, is called with the file descriptor (a Windows
	// handle on Windows) of every socket the client opens — today the one
	// UDP socket for IKE and ESP — before anything is sent or received on
	// it, so that its traffic bypasses the tunnel: Android's
	// VpnService.protect. An error closes the socket and fails the
	// connect.
	//
	// The DNS sockets that resolve gateway names are protected too.
	Protect func(fd int) error
	// DNS controls how gateway names are resolved and how the tunnel's
	// DNS servers and split domains are applied (see DNSOptions).
	DNS DNSOptions
}

// Client is one VPN connection described by a Profile.
type Client struct {
	profile *Profile
	opts    Options
	log     *slog.Logger
	ikeCfg  *ike.Config

	events  *eventQueue
	closing chan struct{}
	closed  sync.Once

	rec *recovery
	dns *clientDNS

	mu      sync.Mutex
	t       *ike.Transport
	session *ike.Session
	gateway string
	tn      *tunnel
	// gwIndex is the candidate in use (see candidates), lastIPs the
	// tunnel addresses asked for again on the next connect.
	gwIndex int
	lastIPs []netip.Addr
	// redirects are when the gateways sent us elsewhere (RFC 5685 §7
	// loop protection); redirectedFrom goes into the next IKE_SA_INIT.
	redirects      []time.Time
	redirectedFrom netip.Addr

	// keepalives counts the keepalive timer's wake-ups (see Wakeups).
	keepalives atomic.Uint64
	// roam follows the device's address for MOBIKE (roam.go).
	roam roamState
}

// RFC 5685 §7 defaults: at most 5 redirects in 300 s.
const (
	maxRedirects       = 5
	redirectLoopPeriod = 300 * time.Second
)

// allowRedirect records a redirect and reports whether it may be followed.
func (c *Client) allowRedirect() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	keep := c.redirects[:0]
	for _, t := range c.redirects {
		if now.Sub(t) < redirectLoopPeriod {
			keep = append(keep, t)
		}
	}
	c.redirects = keep
	if len(keep) >= maxRedirects {
		return false
	}
	c.redirects = append(c.redirects, now)
	return true
}

// followRedirect connects to every address of the redirect target in
// turn, on the port we used, saying where we came from.
func (c *Client) followRedirect(ctx context.Context, t *ike.Transport, from netip.AddrPort, re *ike.RedirectError, short bool) error {
	if !c.allowRedirect() {
		return fmt.Errorf("%w; not followed: more than %d redirects in %s", re, maxRedirects, redirectLoopPeriod)
	}
	var addrs []netip.Addr
	if re.To.Addr.IsValid() {
		addrs = []netip.Addr{re.To.Addr.Unmap()}
	} else {
		var err error
		if addrs, err = c.lookup(ctx, re.To.FQDN); err != nil {
			return fmt.Errorf("redirect target %s: %w", re.To.FQDN, err)
		}
	}
	var errs []error
	for _, a := range addrs {
		to := netip.AddrPortFrom(a, from.Port())
		c.emit(Event{Type: EventFailover, From: from.Addr().String(), To: a.String(), Gateway: a.String(), Reason: "redirect"})
		c.mu.Lock()
		c.redirectedFrom = from.Addr()
		c.mu.Unlock()
		err := c.connectTo(ctx, t, to, short)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("redirected to %s: %w", to, err))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// NewClient checks the profile and prepares a client; nothing is sent yet.
func NewClient(p *Profile, opts Options) (*Client, error) {
	if p == nil {
		return nil, errors.New("sdk: nil profile")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := ikeConfig(p, log)
	if err != nil {
		return nil, err
	}
	r, err := p.Resolve()
	if err != nil {
		return nil, err
	}
	c := &Client{profile: p, opts: opts, log: log, ikeCfg: cfg,
		events: newEventQueue(opts.OnEvent), closing: make(chan struct{})}
	c.openRecovery(r)
	c.openDNS(r)
	return c, nil
}

func (c *Client) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	c.events.push(e)
}

// ikeConfig turns a validated profile into the IKE engine's configuration.
func ikeConfig(p *Profile, log *slog.Logger) (*ike.Config, error) {
	r, err := p.Resolve()
	if err != nil {
		return nil, err
	}
	cfg := &ike.Config{
		LocalID:     r.LocalID,
		RemoteID:    r.RemoteID,
		OmitIDr:     !p.SendsRemoteID(),
		ForceEncap:  true,
		RequestIPv4: true,
		RequestIPv6: true,
		// Ask for a ticket only where it can be used.
		RequestTicket: p.ResumptionEnabled(),
		HASync:        p.HASyncEnabled(),
		MOBIKE:        p.MOBIKEEnabled(),
		Retransmit: ike.Retransmit{
			Timeout: r.Timers.RetransmitTimeout,
			Base:    r.Timers.RetransmitBase,
			Tries:   r.Timers.RetransmitTries,
		},
		Logger: log,
	}
	for i, s := range r.IKEProposals {
		pr, err := ikecrypto.ParseProposal(s, false)
		if err != nil {
			return nil, fmt.Errorf("profile: ike_proposals[%d]: %v", i, err)
		}
		cfg.IKEProposals = append(cfg.IKEProposals, pr)
	}
	for i, s := range r.ESPProposals {
		pr, err := ikecrypto.ParseProposal(s, true)
		if err != nil {
			return nil, fmt.Errorf("profile: esp_proposals[%d]: %v", i, err)
		}
		cfg.ESPProposals = append(cfg.ESPProposals, pr)
	}
	creds, err := p.LoadCredentials()
	if err != nil {
		return nil, err
	}
	cfg.CAs = creds.CAs
	switch r.AuthMethod {
	case AuthPSK:
		if cfg.PSK, err = p.Auth.PSKBytes(); err != nil {
			return nil, err
		}
	case AuthPubkey:
		for _, c := range creds.Chain {
			cfg.CertChain = append(cfg.CertChain, c.Raw)
		}
		cfg.Signer = creds.Key
	case AuthEAPMSCHAPv2, AuthEAPTLS:
		applyEAP(cfg, p, creds)
	default:
		return nil, fmt.Errorf("profile: auth.method: %q is not supported yet", r.AuthMethod)
	}
	if len(cfg.PSK) == 0 && len(cfg.CAs) == 0 {
		return nil, errors.New("profile: ca: required to verify the gateway's certificate")
	}
	cfg.TSi = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	cfg.TSr = r.Include
	return cfg, nil
}

// candidate is one gateway address to try.
type candidate struct {
	host   string // as the profile names it
	remote netip.AddrPort
}

// candidates lists every address of every gateway, primary first, in
// the profile's order (all A/AAAA records of a name, each in turn).
func (c *Client) candidates(ctx context.Context) ([]candidate, []error) {
	gws, err := c.profile.GatewayEndpoints()
	if err != nil {
		return nil, []error{err}
	}
	var out []candidate
	var errs []error
	for _, gw := range gws {
		addrs, err := c.lookup(ctx, gw.Host)
		if err != nil {
			errs = append(errs, fmt.Errorf("gateway %s: %w", gw.Host, err))
			continue
		}
		for _, a := range addrs {
			out = append(out, candidate{host: gw.Host, remote: netip.AddrPortFrom(a, gw.Port)})
		}
	}
	return out, errs
}

func (c *Client) transport() (*ike.Transport, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t == nil {
		laddr := c.opts.LocalAddr
		if laddr == "" {
			laddr = ":0"
		}
		t, err := c.listen(laddr)
		if err != nil {
			return nil, err
		}
		t.SetUnknownHandler(c.onUnknown)
		t.SetUnprotectedHandler(c.onUnknown)
		c.t = t
	}
	return c.t, nil
}

// listen opens the client's UDP socket on laddr, protected (see
// Options.Protect) before the transport starts using it.
func (c *Client) listen(laddr string) (*ike.Transport, error) {
	if c.opts.Protect == nil {
		t, err := ike.Listen(laddr, c.log)
		if err != nil {
			return nil, fmt.Errorf("sdk: opening UDP socket: %w", err)
		}
		return t, nil
	}
	ua, err := net.ResolveUDPAddr("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("sdk: opening UDP socket: %w", err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("sdk: opening UDP socket: %w", err)
	}
	rc, err := conn.SyscallConn()
	if err == nil {
		perr := error(nil)
		if err = rc.Control(func(fd uintptr) { perr = c.opts.Protect(int(fd)) }); err == nil {
			err = perr
		}
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("sdk: protecting the UDP socket: %w", err)
	}
	return ike.NewTransport(conn, c.log), nil
}

// Connect establishes the tunnel with the first gateway of the profile that
// answers, trying each address of each gateway in order.
func (c *Client) Connect(ctx context.Context) error {
	return c.connectRound(ctx, 0, "")
}

// connectRound tries every candidate once, starting at index first; why
// is the failover reason ("" for the first connect).
func (c *Client) connectRound(ctx context.Context, first int, why string) error {
	select {
	case <-c.closing:
		return ErrClosed
	default:
	}
	t, err := c.transport()
	if err != nil {
		return err
	}
	cands, errs := c.candidates(ctx)
	if len(cands) == 0 {
		if len(errs) == 1 {
			return errs[0]
		}
		return errors.Join(errs...)
	}
	prev := c.gatewayNow()
	for i := range cands {
		idx := (first + i) % len(cands)
		cand := cands[idx]
		if why != "" && cand.remote.Addr().String() != prev {
			c.emit(Event{Type: EventFailover, From: prev, To: cand.remote.Addr().String(), Gateway: cand.remote.Addr().String(), Reason: why})
		}
		// While other gateways remain, give up on a dead one sooner.
		more := i < len(cands)-1
		err := c.connectTo(ctx, t, cand.remote, more)
		if err == nil {
			c.mu.Lock()
			c.gwIndex = idx
			c.mu.Unlock()
			return nil
		}
		errs = append(errs, fmt.Errorf("gateway %s: %w", cand.remote, err))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ike.ErrCredentialsRejected) {
			// The same credentials fail on every gateway of the service:
			// no retry, no next gateway (the user must fix them).
			return errs[len(errs)-1]
		}
		select {
		case <-c.closing:
			return ErrClosed
		default:
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// attemptConfig is the IKE configuration of one attempt: the addresses
// we had, and a shorter schedule when another gateway could be tried.
func (c *Client) attemptConfig(short bool) *ike.Config {
	cfg := *c.ikeCfg
	c.mu.Lock()
	cfg.PreviousIPs = c.lastIPs
	cfg.RedirectedFrom, c.redirectedFrom = c.redirectedFrom, netip.Addr{}
	c.mu.Unlock()
	if short && cfg.Retransmit.Tries > 3 {
		cfg.Retransmit.Tries = 3
	}
	return &cfg
}

// connectTo runs one attempt with one gateway address: resumption where
// a ticket is held (one round trip, no Diffie-Hellman on the gateway),
// else — or after TICKET_NACK or no answer — a full exchange.
func (c *Client) connectTo(ctx context.Context, t *ike.Transport, remote netip.AddrPort, short bool) error {
	start := time.Now()
	c.emit(Event{Type: EventConnecting, Gateway: remote.String()})
	var s *ike.Session
	var err error
	var used *resume.Record
	if rec, rs := c.takeTicket(); rec != nil {
		rcfg := c.attemptConfig(true) // at most 3 tries: a full exchange follows
		s, err = ike.Resume(ctx, rcfg, t, remote, rs, rec.Ticket)
		switch {
		case err == nil:
			used = rec
		case errors.Is(err, ike.ErrTicketRejected):
			c.log.Info("ticket refused, running a full exchange", "gateway", remote)
			c.forgetRecord(rec.ID)
		case errors.As(err, new(*ike.RedirectError)):
			c.forgetRecord(rec.ID) // the gateway took the ticket before redirecting
		case ctx.Err() != nil:
			c.putBack(rec)
			return ctx.Err()
		default:
			c.log.Info("resumption failed, running a full exchange", "gateway", remote, "err", err)
			c.putBack(rec)
		}
	}
	if s == nil && !errors.As(err, new(*ike.RedirectError)) {
		s, err = ike.Initiate(ctx, c.attemptConfig(short), t, remote)
	}
	if re := (*ike.RedirectError)(nil); errors.As(err, &re) {
		c.log.Info("redirected", "gateway", remote, "to", re.To.String(), "phase", re.Phase)
		c.emit(Event{Type: EventConnectFailed, Gateway: remote.String(), Error: err.Error()})
		return c.followRedirect(ctx, t, remote, re, short)
	}
	if err != nil {
		c.log.Info("connect failed", "gateway", remote, "err", err)
		ev := Event{Type: EventConnectFailed, Gateway: remote.String(), Error: err.Error()}
		if errors.Is(err, ike.ErrAuthenticationFailed) {
			ev.Reason = ReasonAuthenticationFailed
		}
		c.emit(ev)
		return err
	}
	c.adopt(s, remote)
	tn, err := c.startTunnel(s)
	if err != nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s.Close(closeCtx)
		cancel()
		return err
	}
	c.mu.Lock()
	c.session, c.gateway, c.tn = s, remote.Addr().String(), tn
	c.lastIPs = c.lastIPs[:0:0]
	for _, v := range s.VirtualIPs {
		c.lastIPs = append(c.lastIPs, v.Addr())
	}
	c.mu.Unlock()
	c.startSession(s, tn)
	c.dnsUp(s, tn)
	c.watchNetwork()
	ev := c.connectedEvent(s, remote, time.Since(start))
	c.emit(ev)
	if s.Resumed() {
		c.emit(Event{Type: EventResumed, Gateway: ev.Gateway, IKESPIi: ev.IKESPIi, IKESPIr: ev.IKESPIr, Elapsed: ev.Elapsed})
	}
	if used != nil {
		// The ticket is used and its old SA gone: drop the record, after
		// traffic flows again.
		c.forgetRecord(used.ID)
	}
	return nil
}

// startSession connects the IKE session's lifecycle to the data plane and
// the event stream, then starts it.
func (c *Client) startSession(s *ike.Session, tn *tunnel) {
	r, _ := c.profile.Resolve()
	gw := s.Remote().Addr().String()
	h := ike.Hooks{
		IKERekeyed: func(spii, spir uint64) {
			c.rekeyed(spii, spir)
			c.emit(Event{Type: EventRekeyed, Gateway: gw, Reason: "ike", IKESPIi: fmt.Sprintf("%016x", spii), IKESPIr: fmt.Sprintf("%016x", spir)})
		},
		ChildRekeyed: func(prev, next *ike.ChildSA, sendNow bool) {
			c.childChanged(next, nil)
			if tn != nil && tn.engine != nil {
				install := tn.engine.Install
				if !sendNow {
					install = tn.engine.Prepare
				}
				if err := install(next, s.Remote(), c.espLimits()); err != nil {
					c.log.Warn("installing rekeyed child SA", "err", err)
				}
			}
			c.emit(Event{Type: EventRekeyed, Gateway: gw, Reason: "child", ESPSuite: next.Suite.String()})
		},
		ChildOutbound: func(next *ike.ChildSA) {
			if tn != nil && tn.engine != nil {
				if err := tn.engine.SendOn(next, s.Remote(), c.espLimits()); err != nil {
					c.log.Warn("sending on rekeyed child SA", "err", err)
				}
			}
		},
		ChildAdded: func(extra *ike.ChildSA) {
			c.childChanged(extra, nil)
			if tn != nil && tn.engine != nil {
				if err := tn.engine.AddInbound(extra, s.Remote(), c.espLimits()); err != nil {
					c.log.Warn("adding child SA", "err", err)
				}
			}
		},
		ChildGone: func(old *ike.ChildSA) {
			c.childChanged(nil, old)
			if tn != nil && tn.engine != nil {
				tn.engine.Retire(old.SPIIn)
			}
		},
		Unprotected: c.unprotected,
		PeerMoved: func(_, to netip.AddrPort) {
			if tn != nil && tn.engine != nil {
				tn.engine.SetPeer(to)
			}
		},
		Notifies: func(spii, spir uint64, ns []*wire.Notify, rs *ike.ResumeState) {
			c.takeNotifies(qcd.SAKey{SPIi: spii, SPIr: spir}, ns, rs)
		},
	}
	h.HASynced = func(r ike.HASync) { c.emit(haSyncedEvent(gw, r)) }
	if tn != nil && tn.engine != nil {
		h.SkipOutbound = tn.engine.SkipOutbound
		h.Traffic = func() (in, out uint64) {
			st := tn.engine.Stats()
			return st.PacketsIn, st.PacketsOut
		}
		h.ArmTraffic = func() { tn.engine.Arm(s.Nudge) }
	}
	s.Start(h, ike.Timers{
		Liveness:      r.Timers.Liveness,
		FastLiveness:  r.Timers.FastLiveness,
		IKELifetime:   r.Timers.IKELifetime,
		ChildLifetime: r.Timers.ChildLifetime,
	})
}

func (c *Client) connectedEvent(s *ike.Session, remote netip.AddrPort, took time.Duration) Event {
	e := Event{
		Type:         EventConnected,
		Gateway:      remote.Addr().String(),
		IKESPIi:      fmt.Sprintf("%016x", s.SPIi),
		IKESPIr:      fmt.Sprintf("%016x", s.SPIr),
		IKESuite:     s.Suite.String(),
		KeyExchanges: s.Suite.KeyExchanges(),
		Elapsed:      took,
		Resumed:      s.Resumed(),
	}
	if s.Child != nil {
		e.ESPSuite = s.Child.Suite.String()
	}
	for _, v := range s.VirtualIPs {
		if e.VirtualIP == "" {
			e.VirtualIP = v.Addr().String()
		}
	}
	for _, d := range s.DNS {
		e.DNS = append(e.DNS, d.String())
	}
	e.Domains = c.splitDomains(s)
	return e
}

// Wait keeps the tunnel up until ctx is done, then closes it. When the
// IKE SA ends (a verified QCD token, failed liveness check, the gateway's
// Delete, …) it fails over at once to the next gateway of the profile (or
// the same one first after a crash, with failover.after_crash "same"),
// resuming with a ticket where it holds one; only when every gateway has
// failed once does it back off, with jitter. The TUN stays up meanwhile,
// so no packet leaves outside the tunnel.
func (c *Client) Wait(ctx context.Context) error {
	for {
		c.mu.Lock()
		s := c.session
		c.mu.Unlock()
		if s == nil {
			return errors.New("sdk: not connected")
		}
		select {
		case <-ctx.Done():
			return c.Close()
		case <-c.closing:
			return nil
		case <-s.Done():
		}
		err := s.Err()
		if errors.Is(err, ike.ErrClosed) {
			return nil
		}
		gw := c.gatewayNow()
		why := "gateway failed"
		switch {
		case errors.Is(err, ike.ErrLivenessFailed):
			why = "liveness_failed"
			c.emit(Event{Type: EventLivenessFailed, Gateway: gw, Reason: err.Error()})
		case errors.Is(err, ErrQCDVerified):
			why = "qcd_verified"
		case errors.Is(err, ike.ErrPeerDeleted):
			why = "gateway_deleted"
		case errors.Is(err, ike.ErrRoamFailed):
			why = "roam_failed"
		}
		var re *ike.RedirectError
		redirected := errors.As(err, &re)
		c.emit(Event{Type: EventDisconnected, Gateway: gw, Reason: err.Error()})
		c.mu.Lock()
		tn := c.tn
		next := c.gwIndex + 1
		c.mu.Unlock()
		if tn != nil && tn.engine != nil {
			// Nothing is sent until the next SA is in: no packet leaves
			// outside the tunnel.
			tn.engine.Remove()
		}
		c.dnsHold()
		if why == "qcd_verified" && c.resolved().FailoverSame {
			next = c.gwIndex
		}
		if redirected {
			// RFC 5685 §5: the gateway sends us elsewhere; the list is
			// the fallback.
			if t, terr := c.transport(); terr == nil {
				remote := s.Remote()
				if c.followRedirect(ctx, t, remote, re, true) == nil {
					continue
				}
			}
			why = "redirect"
		}
		if err := c.reconnect(ctx, next, why); err != nil {
			c.stopTunnel()
			c.closeDNS()
			c.closeTransport()
			return err
		}
	}
}

func (c *Client) resolved() *ResolvedProfile {
	r, err := c.profile.Resolve()
	if err != nil {
		return &ResolvedProfile{}
	}
	return r
}

// reconnect fails over: every candidate once from first, at once; then
// rounds from the primary with growing, jittered pauses (up to 30 s)
// until one answers or ctx ends.
func (c *Client) reconnect(ctx context.Context, first int, why string) error {
	pause := time.Second
	for {
		err := c.connectRound(ctx, first, why)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrClosed) || errors.Is(err, ike.ErrCredentialsRejected) {
			return err
		}
		wait := pause/2 + time.Duration(mrand.Int64N(int64(pause)))
		c.log.Info("every gateway failed, waiting", "err", err, "wait", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closing:
			return ErrClosed
		case <-time.After(wait):
		}
		pause = min(2*pause, 30*time.Second)
		first = 0
	}
}

// ErrClosed is returned by Connect after Close.
var ErrClosed = errors.New("sdk: client closed")

// Close deletes the IKE SA at the gateway (waiting up to 3 s for its
// answer), removes the TUN and releases the socket. It also stops Wait
// from reconnecting; the client cannot be used again.
func (c *Client) Close() error {
	c.closed.Do(func() { close(c.closing) })
	c.mu.Lock()
	s := c.session
	c.session = nil
	gw := c.gateway
	c.mu.Unlock()
	c.rec.mu.Lock()
	c.rec.closing = s
	c.rec.mu.Unlock()
	var err error
	if s != nil {
		// Stop sending first: nothing leaves outside the tunnel while the
		// Delete goes out.
		c.stopTunnel()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = s.Close(ctx)
		cancel()
		// The user ended the SA: its ticket and tokens go with it.
		spii, spir := s.SPIs()
		c.forgetRecord(saKeyID(qcd.SAKey{SPIi: spii, SPIr: spir}))
		c.emit(Event{Type: EventDisconnected, Gateway: gw, Reason: "closed by user"})
	}
	c.stopTunnel()
	c.closeDNS()
	c.stopWatch()
	c.closeTransport()
	c.closeRecovery()
	c.events.stop()
	return err
}

func (c *Client) gatewayNow() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gateway
}

func (c *Client) stopTunnel() {
	c.mu.Lock()
	tn := c.tn
	c.tn = nil
	c.mu.Unlock()
	if tn != nil {
		st := tn.engine.Stats()
		tn.close()
		c.emit(statsEvent(st, c.gatewayNow()))
	}
}

// Net is the in-process network stack of a DataPlaneNetstack client while
// it is connected, nil otherwise. Dial and Listen on it go through the
// tunnel.
func (c *Client) Net() *netstack.Net {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tn == nil {
		return nil
	}
	return c.tn.net
}

// Stats returns the data plane counters of the current tunnel.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tn == nil || c.tn.engine == nil {
		return Stats{}
	}
	return Stats(c.tn.engine.Stats())
}

func (c *Client) closeTransport() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t != nil {
		c.t.Close()
		c.t = nil
	}
}

// Session returns the current IKE session, or nil.
func (c *Client) Session() *ike.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}
