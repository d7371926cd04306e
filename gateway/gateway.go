// Package gateway is qcdvpn's own IKEv2 responder: the gateway behind
// `qcdvpn gateway`, used by the demo and the tests to rehearse failures.
// Unlike common gateways it is an RFC 6290 QCD token maker (its secret
// survives restarts, so after a crash it proves to clients that their SA
// is gone) and issues RFC 5723 resumption tickets sealed with a key all
// gateways of a domain share, so a client resumes on a backup in one
// round trip. Decrypted traffic goes to a TUN or to an in-process
// netstack serving echo and HTTP.
package gateway

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/qcdvpn/qcdvpn/esp"
	"github.com/qcdvpn/qcdvpn/ike"
	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/ike/wire"
	"github.com/qcdvpn/qcdvpn/qcd"
	"github.com/qcdvpn/qcdvpn/resume"
	"github.com/qcdvpn/qcdvpn/tun"
)

// Event is one thing the gateway reports (`--events json`).
type Event struct {
	Time      time.Time
	Type      string // listening, client_connected, client_roamed, client_gone, qcd_sent, ticket_issued, ticket_nack, redirect, stopped
	Peer      string // client identity
	Remote    string // client address
	SPIi      string
	SPIr      string
	VirtualIP string
	Resumed   bool
	Kind      string // qcd_sent: INVALID_IKE_SPI or INVALID_SPI
	Tokens    int    // qcd_sent: how many tokens
	Reason    string
	Listen    []string // listening
	// KeyExchanges of the client's IKE SA (client_connected), e.g.
	// [CURVE_25519 ML_KEM_768] for the post-quantum hybrid.
	KeyExchanges []string
}

// MarshalJSON writes one line: time (RFC 3339, ns), type, context fields.
func (e Event) MarshalJSON() ([]byte, error) {
	m := map[string]any{"time": e.Time.Format(time.RFC3339Nano), "type": e.Type}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("peer", e.Peer)
	put("remote", e.Remote)
	put("ike_spi_i", e.SPIi)
	put("ike_spi_r", e.SPIr)
	put("virtual_ip", e.VirtualIP)
	put("kind", e.Kind)
	put("reason", e.Reason)
	if e.Type == "client_connected" {
		m["resumed"] = e.Resumed
	}
	if len(e.KeyExchanges) > 0 {
		m["key_exchanges"] = e.KeyExchanges
	}
	if e.Tokens > 0 {
		m["tokens"] = e.Tokens
	}
	if len(e.Listen) > 0 {
		m["listen"] = e.Listen
	}
	return json.Marshal(m)
}

// Options are what the embedding program adds to a Config.
type Options struct {
	Logger  *slog.Logger
	OnEvent func(Event) // called from several goroutines; must not block
}

// Gateway is a running responder.
type Gateway struct {
	cfg     *Config
	log     *slog.Logger
	onEvent func(Event)

	secrets   *qcd.Secrets
	tickets   *resume.Authority
	children  *childMap
	limiter   *replyLimiter
	router    *Router
	transport []*ike.Transport
	resp      []*ike.Responder
	sender    *peerSender
	dev       tun.Device
	kernel    *tun.Kernel
	stopSvc   func()
	stopZone  func() // the dns_zone server
	ticketLT  time.Duration
	timers    ike.Timers
	espLimits esp.Limits

	mu       sync.Mutex
	sessions map[*ike.Session]struct{}
	wg       sync.WaitGroup

	crash     chan struct{} // closed by Crash
	crashOnce sync.Once

	haGateway // hot standby (standby.go, export.go)
}

// New opens the gateway's state, sockets and data plane; Run serves.
func New(cfg *Config, opts Options) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{cfg: cfg, log: log, onEvent: opts.OnEvent, sessions: map[*ike.Session]struct{}{}, timers: cfg.SessionTimers(),
		crash: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			g.close()
		}
	}()
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("gateway: state_dir: %w", err)
	}
	var err error
	if g.secrets, err = qcd.LoadOrCreate(cfg.QCDSecretFile(), nil); err != nil {
		return nil, fmt.Errorf("gateway: qcd.secret_file: %w", err)
	}
	keys, err := cfg.TicketKeys()
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		rk := make([]resume.TicketKey, len(keys))
		for i, k := range keys {
			rk[i] = resume.TicketKey{ID: k.ID, Key: k.Key}
		}
		g.ticketLT = cfg.TicketLifetime()
		if g.tickets, err = resume.NewAuthority(rk, g.ticketLT, nil); err != nil {
			return nil, fmt.Errorf("gateway: tickets: %w", err)
		}
	}
	if g.children, err = openChildMap(filepath.Join(cfg.StateDir, "children.db")); err != nil {
		return nil, err
	}
	g.limiter = newReplyLimiter(cfg.QCDReplyRate())
	if err := g.loadStandby(); err != nil {
		return nil, err
	}
	if err := g.openData(); err != nil {
		return nil, err
	}
	if err := g.openResponders(); err != nil {
		return nil, err
	}
	ok = true
	return g, nil
}

// openData builds the TUN or the netstack with its services.
func (g *Gateway) openData() error {
	local := g.cfg.LocalPrefixes()
	switch g.cfg.DataMode() {
	case "tun":
		v4, v6, err := g.cfg.Pools()
		if err != nil {
			return err
		}
		// The pools are routed into the TUN (so replies from hosts on
		// this namespace reach the clients). The interface itself gets
		// each pool's subnet address as a host address: the pool never
		// leases it, and tun.Create needs an address of each family.
		var include, addrs []netip.Prefix
		for _, p := range []netip.Prefix{v4, v6} {
			if p.IsValid() {
				p = p.Masked()
				include = append(include, p)
				addrs = append(addrs, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
			}
		}
		if len(include) == 0 {
			return errors.New("gateway: data \"tun\" needs a pool to route into the TUN")
		}
		k, err := tun.Create(context.Background(), tun.Config{Name: g.cfg.TUNName(), Addresses: addrs, Include: include}, g.log)
		if err != nil {
			return fmt.Errorf("gateway: creating TUN %s: %w", g.cfg.TUNName(), err)
		}
		g.kernel, g.dev = k, k.Device()
		if err := g.openZone(nil); err != nil {
			return err
		}
	default:
		var addrs []netip.Addr
		for _, p := range local {
			// The first host of each protected prefix stands for a host
			// behind the gateway.
			a := p.Masked().Addr().Next()
			if p.Bits() == p.Addr().BitLen() {
				a = p.Addr()
			}
			addrs = append(addrs, a)
		}
		addrs = g.zoneAddr(addrs)
		dev, tnet, err := tun.CreateNetstack(addrs, nil, 1420)
		if err != nil {
			return fmt.Errorf("gateway: netstack: %w", err)
		}
		g.dev = dev
		stop, err := StartServices(context.Background(), tnet, addrs, g.cfg.ID, g.log)
		if err != nil {
			return fmt.Errorf("gateway: services: %w", err)
		}
		g.stopSvc = stop
		if err := g.openZone(tnet); err != nil {
			return err
		}
	}
	g.sender = &peerSender{by: map[netip.AddrPort]*ike.Transport{}}
	g.router = NewRouter(g.dev, g.sender, g.log)
	g.router.SetUnknownSPI(g.unknownSPI)
	return nil
}

// openResponders binds every listen address; each gets its own share of
// the address pools so leases never collide.
func (g *Gateway) openResponders() error {
	addrs, err := g.cfg.ListenAddrs()
	if err != nil {
		return err
	}
	v4, v6, err := g.cfg.Pools()
	if err != nil {
		return err
	}
	ikeProps, espProps, err := g.cfg.Proposals()
	if err != nil {
		return err
	}
	id, err := g.cfg.Identity()
	if err != nil {
		return err
	}
	psk, err := g.cfg.PSKFunc()
	if err != nil {
		return err
	}
	signer, chain, cas, err := g.cfg.Credentials()
	if err != nil {
		return err
	}
	dns, err := g.cfg.DNSServers()
	if err != nil {
		return err
	}
	domains, err := g.cfg.DNSDomainList()
	if err != nil {
		return err
	}
	if lt := g.timers.ChildLifetime; lt > 0 {
		g.espLimits = esp.Limits{Lifetime: lt + lt/5}
	}
	for i, a := range addrs {
		t, err := ike.Listen(a.String(), g.log)
		if err != nil {
			return fmt.Errorf("gateway: listen[%d] %s: %w", i, a, err)
		}
		g.transport = append(g.transport, t)
		if a.Port() == ike.NATTPort {
			t.SetNATT(true)
		}
		t.SetESPHandler(g.router.HandleESP)
		rc := &ike.ResponderConfig{
			LocalID: id, PSK: psk, Signer: signer, CertChain: chain, CAs: cas,
			EAPUsers: g.cfg.EAPUsers(), EAPTLS: g.cfg.EAPTLS(),
			IKEProposals: ikeProps, ESPProposals: espProps,
			Pool4: splitPool(v4, i, len(addrs)), Pool6: splitPool(v6, i, len(addrs)),
			DNS: dns, DNSDomains: domains, LocalTS: g.cfg.LocalPrefixes(),
			CookieThreshold:      max(g.cfg.EffectiveCookieThreshold(), 0),
			Timers:               g.timers,
			Hooks:                g.hooks,
			AuthResponseNotifies: g.authNotifies,
			UnknownSA:            func(d ike.Datagram) { g.unknownSA(t, d) },
			MOBIKE:               true, // RFC 4555: clients may move (strongSwan's default too)
			OnTicketNack: func(from netip.AddrPort, why string) {
				g.emit(Event{Type: "ticket_nack", Remote: from.String(), Reason: why})
			},
			HASync: g.haEnabled(),
			Logger: g.log,
		}
		if g.tickets != nil {
			rc.Tickets = g.tickets
		}
		if to := g.cfg.Redirect.InitTo; to != "" {
			target, err := ike.ParseRedirectTarget(to)
			if err != nil {
				return fmt.Errorf("gateway: redirect.init_to: %w", err)
			}
			rc.RedirectInit = func(from netip.AddrPort) (ike.RedirectTarget, bool) {
				g.emit(Event{Type: "redirect", Remote: from.String(), Kind: "IKE_SA_INIT", Reason: "to " + target.String()})
				return target, true
			}
		}
		if to := g.cfg.Redirect.AuthTo; to != "" {
			target, err := ike.ParseRedirectTarget(to)
			if err != nil {
				return fmt.Errorf("gateway: redirect.auth_to: %w", err)
			}
			rc.RedirectAuth = func(peer auth.Identity, from netip.AddrPort) (ike.RedirectTarget, bool) {
				g.emit(Event{Type: "redirect", Peer: peer.String(), Remote: from.String(), Kind: "IKE_AUTH", Reason: "to " + target.String()})
				return target, true
			}
		}
		r, err := ike.NewResponder(rc, t)
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		g.resp = append(g.resp, r)
	}
	return nil
}

// splitPool gives listener i of n its part of p (p itself when n is 1).
func splitPool(p netip.Prefix, i, n int) netip.Prefix {
	if !p.IsValid() || n <= 1 {
		return p
	}
	extra := 0
	for 1<<extra < n {
		extra++
	}
	bits := p.Bits() + extra
	if bits > p.Addr().BitLen()-2 {
		return p
	}
	b := p.Masked().Addr().AsSlice()
	for k := 0; k < extra; k++ {
		if i&(1<<(extra-1-k)) != 0 {
			pos := p.Bits() + k
			b[pos/8] |= 0x80 >> (pos % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(a, bits)
}

// Addrs are the bound listen addresses.
func (g *Gateway) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(g.transport))
	for i, t := range g.transport {
		la := t.Conn().LocalAddr().(*net.UDPAddr).AddrPort()
		out[i] = netip.AddrPortFrom(la.Addr().Unmap(), la.Port())
	}
	return out
}

func (g *Gateway) emit(e Event) {
	if g.onEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	g.onEvent(e)
}

// Run serves until ctx ends, then deletes every IKE SA (a graceful stop;
// kill -9 is the crash drill) and releases everything.
func (g *Gateway) Run(ctx context.Context) error {
	var listen []string
	for _, a := range g.Addrs() {
		listen = append(listen, a.String())
	}
	g.emit(Event{Type: "listening", Listen: listen})
	g.log.Info("gateway listening", "addrs", listen, "id", g.cfg.ID)
	rctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- g.router.Run(rctx) }()
	for _, r := range g.resp {
		g.wg.Add(1)
		go g.collect(r)
	}
	g.takeOver()
	if g.kick != nil {
		g.wg.Add(1)
		go g.exportLoop(rctx)
	}
	if every := g.cfg.QCDRollover(); every > 0 {
		g.wg.Add(1)
		go g.rollover(rctx, every)
	}
	var err error
	select {
	case <-ctx.Done():
	case <-g.crash:
	case err = <-runDone:
		if err != nil {
			err = fmt.Errorf("gateway: data plane: %w", err)
		}
	}
	select {
	case <-g.crash:
		g.abandonSessions()
	default:
		g.stopSessions()
	}
	cancel()
	g.close()
	g.wg.Wait()
	g.emit(Event{Type: "stopped"})
	return err
}

// rollover replaces the QCD secret periodically, keeping 3 earlier
// generations (RFC 6290 §5.1): tokens of older SAs still verify, since
// unprotected replies carry one token per generation.
func (g *Gateway) rollover(ctx context.Context, every time.Duration) {
	defer g.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := g.secrets.Rollover(g.cfg.QCDSecretFile(), nil); err != nil {
				g.log.Warn("QCD secret rollover failed; keeping the current one", "err", err)
			}
		}
	}
}

// collect takes established sessions and follows them to their end.
func (g *Gateway) collect(r *ike.Responder) {
	defer g.wg.Done()
	for s := range r.Sessions() {
		g.mu.Lock()
		g.sessions[s] = struct{}{}
		g.mu.Unlock()
		ev := Event{Type: "client_connected", Peer: s.PeerID.String(), Remote: s.Remote().String(), KeyExchanges: s.Suite.KeyExchanges(),
			SPIi: fmt.Sprintf("%016x", s.SPIi), SPIr: fmt.Sprintf("%016x", s.SPIr), Resumed: s.Resumed()}
		if s.Imported() {
			ev.Kind = "imported"
		}
		g.exportKick()
		if len(s.VirtualIPs) > 0 {
			ev.VirtualIP = s.VirtualIPs[0].Addr().String()
		}
		g.emit(ev)
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			<-s.Done()
			g.router.RemoveOwner(s)
			g.children.dropOwner(s)
			g.mu.Lock()
			delete(g.sessions, s)
			g.mu.Unlock()
			g.exportKick()
			spii, spir := s.SPIs()
			reason := ""
			if err := s.Err(); err != nil {
				reason = err.Error()
			}
			g.emit(Event{Type: "client_gone", Peer: s.PeerID.String(), Remote: s.Remote().String(),
				SPIi: fmt.Sprintf("%016x", spii), SPIr: fmt.Sprintf("%016x", spir), Reason: reason})
		}()
	}
}

// Crash is the crash drill for in-process tests (kill -9 is the one for
// processes): it closes the sockets at once, so nothing more is sent or
// received, and makes Run drop the sessions silently (no Delete) and
// release the data plane, leaving children.db as it was. A gateway made
// afterwards with the same config then starts as a restarted process
// would. Crash returns once the sockets and children.db are closed.
func (g *Gateway) Crash() {
	g.crashOnce.Do(func() {
		// No HA state is written from now on: the file keeps what the
		// standby must take over.
		g.exportMu.Lock()
		g.crashed = true
		g.exportMu.Unlock()
		// children.db first: sessions ending from now on cannot drop their
		// mappings, which the restarted gateway needs.
		g.children.close()
		for _, t := range g.transport {
			t.Close()
		}
		close(g.crash)
	})
}

// sessionList is a snapshot of the established sessions.
func (g *Gateway) sessionList() []*ike.Session {
	g.mu.Lock()
	defer g.mu.Unlock()
	ss := make([]*ike.Session, 0, len(g.sessions))
	for s := range g.sessions {
		ss = append(ss, s)
	}
	return ss
}

// abandonSessions ends every session without a Delete (after Crash).
func (g *Gateway) abandonSessions() {
	for _, r := range g.resp {
		r.Close()
	}
	ss := g.sessionList()
	for _, s := range ss {
		s.Abandon(errCrashed)
	}
}

var errCrashed = errors.New("gateway crashed (drill)")

// RedirectAll sends every client that supports it to target (RFC 5685
// §5) and returns how many were told.
func (g *Gateway) RedirectAll(target string) (int, error) {
	t, err := ike.ParseRedirectTarget(target)
	if err != nil {
		return 0, err
	}
	ss := g.sessionList()
	n := 0
	for _, s := range ss {
		if s.Redirect(t) {
			n++
			g.emit(Event{Type: "redirect", Peer: s.PeerID.String(), Remote: s.Remote().String(), Kind: "session", Reason: "to " + t.String()})
		}
	}
	return n, nil
}

// stopSessions deletes every IKE SA, waiting at most a second for answers.
func (g *Gateway) stopSessions() {
	for _, r := range g.resp {
		r.Close()
	}
	ss := g.sessionList()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Close(ctx) }()
	}
	wg.Wait()
}

func (g *Gateway) close() {
	if g.router != nil {
		g.router.Close()
	}
	for _, t := range g.transport {
		t.Close()
	}
	if g.stopSvc != nil {
		g.stopSvc()
	}
	if g.stopZone != nil {
		g.stopZone()
	}
	if g.kernel != nil {
		g.kernel.Close()
	} else if g.dev != nil {
		g.dev.Close()
	}
	if g.children != nil {
		g.children.close()
	}
}

// hooks wires a new session to the data plane and the token maker. It
// runs before the IKE_AUTH response leaves, so the first ESP packet
// already finds its SA.
func (g *Gateway) hooks(s *ike.Session) ike.Hooks {
	g.sender.set(s.Remote(), s.Transport())
	if err := g.router.Install(s, s.Child, s.Remote(), g.espLimits); err != nil {
		g.log.Warn("installing child SA", "err", err)
	}
	if s.Imported() {
		g.applyImportSeqs(s.Child)
	}
	g.children.put(s, s.Child.SPIIn, s.SPIi, s.SPIr)
	return ike.Hooks{
		ChildRekeyed: func(prev, next *ike.ChildSA, sendNow bool) {
			install := g.router.Install
			if !sendNow {
				install = g.router.Prepare
			}
			if err := install(s, next, s.Remote(), g.espLimits); err != nil {
				g.log.Warn("installing rekeyed child SA", "err", err)
			}
			spii, spir := s.SPIs()
			g.children.put(s, next.SPIIn, spii, spir)
			g.exportKick()
		},
		ChildOutbound: func(c *ike.ChildSA) {
			if err := g.router.SendOn(s, c, s.Remote(), g.espLimits); err != nil {
				g.log.Warn("sending on child SA", "err", err)
			}
		},
		ChildAdded: func(c *ike.ChildSA) {
			if err := g.router.AddInbound(s, c, s.Remote(), g.espLimits); err != nil {
				g.log.Warn("adding child SA", "err", err)
			}
			spii, spir := s.SPIs()
			g.children.put(s, c.SPIIn, spii, spir)
		},
		ChildGone: func(c *ike.ChildSA) {
			g.router.Retire(c.SPIIn)
			g.children.drop(c.SPIIn)
		},
		IKERekeyed: func(spii, spir uint64) {
			g.children.rekeyed(s, spii, spir)
			g.exportKick()
		},
		HASynced: func(r ike.HASync) { g.haSynced(s, r) },
		Traffic:  func() (in, out uint64) { return g.router.OwnerTraffic(s) },
		PeerMoved: func(from, to netip.AddrPort) {
			// MOBIKE: the client's ESP goes to its new address at once.
			g.sender.set(to, s.Transport())
			g.router.SetPeer(s, to)
			g.emit(Event{Type: "client_roamed", Peer: s.PeerID.String(), Remote: to.String(), Reason: "from " + from.String()})
		},
		Respond: func(spii, spir uint64, rekey bool, req []*wire.Notify, rs *ike.ResumeState) []*wire.Notify {
			var out []*wire.Notify
			if rekey {
				// RFC 6290 §4.3: the new SA's token in the rekey response.
				out = append(out, &wire.Notify{NotifyType: wire.NotifyQCDToken, Data: g.secrets.Token(spii, spir)})
			}
			if hasNotify(req, wire.NotifyTicketRequest) {
				out = append(out, g.ticketFor(s, rs))
			}
			return out
		},
		Announce: func(spii, spir uint64) []*wire.Notify {
			return []*wire.Notify{{NotifyType: wire.NotifyQCDToken, Data: g.secrets.Token(spii, spir)}}
		},
	}
}

func hasNotify(ns []*wire.Notify, t wire.NotifyType) bool {
	for _, n := range ns {
		if n.NotifyType == t {
			return true
		}
	}
	return false
}

// authNotifies adds the QCD token and, when asked for, a ticket to the
// IKE_AUTH response.
func (g *Gateway) authNotifies(s *ike.Session) []*wire.Notify {
	out := []*wire.Notify{{NotifyType: wire.NotifyQCDToken, Data: g.secrets.Token(s.SPIi, s.SPIr)}}
	if hasNotify(s.AuthNotifies, wire.NotifyTicketRequest) {
		out = append(out, g.ticketFor(s, s.ResumeState()))
	}
	return out
}

// ticketFor seals rs into TICKET_LT_OPAQUE, or says TICKET_NACK.
func (g *Gateway) ticketFor(s *ike.Session, rs *ike.ResumeState) *wire.Notify {
	if g.tickets == nil || rs == nil {
		return &wire.Notify{NotifyType: wire.NotifyTicketNack}
	}
	raw, err := rs.MarshalBinary()
	if err != nil {
		return &wire.Notify{NotifyType: wire.NotifyTicketNack}
	}
	ticket, life, err := g.tickets.Issue(raw)
	if err != nil {
		g.log.Warn("issuing a ticket", "err", err)
		return &wire.Notify{NotifyType: wire.NotifyTicketNack}
	}
	g.emit(Event{Type: "ticket_issued", Peer: s.PeerID.String(), Remote: s.Remote().String()})
	data := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(ticket)), life)
	return &wire.Notify{NotifyType: wire.NotifyTicketLTOpaque, Data: append(data, ticket...)}
}

// unknownSA answers a protected request naming an IKE SA we do not have
// (after a restart): N(INVALID_IKE_SPI) and our tokens, unprotected, with
// SPIs, message ID and exchange copied from the request (RFC 6290 §4.5).
func (g *Gateway) unknownSA(t *ike.Transport, d ike.Datagram) {
	h, err := wire.ParseHeader(d.Data)
	if err != nil || h.IsResponse() || h.SPIr == 0 ||
		(h.NextPayload != wire.PayloadSK && h.NextPayload != wire.PayloadSKF) {
		return
	}
	if g.isHeld(h.SPIr) {
		return // a standby's SA, not yet installed: no token (RFC 6311 takeover)
	}
	if !g.limiter.allow(d.From.Addr()) {
		return
	}
	ps := []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidIKESPI}}
	toks := g.secrets.Tokens(h.SPIi, h.SPIr)
	for _, tok := range toks {
		ps = append(ps, &wire.Notify{Protocol: wire.ProtoIKE, NotifyType: wire.NotifyQCDToken, Data: tok})
	}
	flags := uint8(wire.FlagResponse)
	if !h.IsInitiator() {
		flags |= wire.FlagInitiator
	}
	m := wire.Message{Header: wire.Header{SPIi: h.SPIi, SPIr: h.SPIr, Version: wire.Version2, Exchange: h.Exchange,
		Flags: flags, MessageID: h.MessageID}, Payloads: ps}
	raw, err := m.Encode()
	if err != nil {
		return
	}
	_ = t.Send(raw, d.From, d.Encap)
	g.emit(Event{Type: "qcd_sent", Remote: d.From.String(), Kind: "INVALID_IKE_SPI", Tokens: len(toks),
		SPIi: fmt.Sprintf("%016x", h.SPIi), SPIr: fmt.Sprintf("%016x", h.SPIr)})
}

// unknownSPI answers ESP for an SA we do not have with N(INVALID_SPI);
// where the child SPI's IKE SA survived the restart in children.db, with
// that SA's SPIs and tokens (RFC 6290 §4.5, §9.2). It runs on the read
// goroutine: the reply is small and rate-limited.
func (g *Gateway) unknownSPI(spi uint32, from netip.AddrPort) {
	if g.isHeldChild(spi) {
		return // a standby's SA, not yet installed: no token
	}
	if !g.limiter.allow(from.Addr()) {
		return
	}
	spii, spir, known := g.children.lookup(spi)
	ps := []wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: binary.BigEndian.AppendUint32(nil, spi), NotifyType: wire.NotifyInvalidSPI}}
	var toks [][]byte
	if known {
		toks = g.secrets.Tokens(spii, spir)
		for _, tok := range toks {
			ps = append(ps, &wire.Notify{Protocol: wire.ProtoIKE, NotifyType: wire.NotifyQCDToken, Data: tok})
		}
	}
	m := wire.Message{Header: wire.Header{SPIi: spii, SPIr: spir, Version: wire.Version2, Exchange: wire.ExchangeInformational,
		Flags: wire.FlagResponse}, Payloads: ps}
	raw, err := m.Encode()
	if err != nil || len(g.transport) == 0 {
		return
	}
	t := g.sender.get(from)
	if t == nil {
		t = g.transport[0]
	}
	_ = t.Send(raw, from, true)
	g.emit(Event{Type: "qcd_sent", Remote: from.String(), Kind: "INVALID_SPI", Tokens: len(toks),
		SPIi: fmt.Sprintf("%016x", spii), SPIr: fmt.Sprintf("%016x", spir)})
}

// peerSender sends ESP through the socket each client talks to.
type peerSender struct {
	mu sync.RWMutex
	by map[netip.AddrPort]*ike.Transport
}

func (p *peerSender) set(peer netip.AddrPort, t *ike.Transport) {
	p.mu.Lock()
	p.by[peer] = t
	p.mu.Unlock()
}

func (p *peerSender) get(peer netip.AddrPort) *ike.Transport {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.by[peer]
}

// SendESPBatch implements Sender.
func (p *peerSender) SendESPBatch(pkts [][]byte, to *net.UDPAddr, scratch []ipv4.Message) error {
	ap := to.AddrPort()
	t := p.get(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	if t == nil {
		return errors.New("gateway: no socket for peer")
	}
	return t.SendESPBatch(pkts, to, scratch)
}

// replyLimiter bounds unprotected replies per source (RFC 6290 §8.1) in
// a fixed table, so spoofed floods cannot grow memory.
type replyLimiter struct {
	mu    sync.Mutex
	rate  float64
	burst float64
	seed  maphash.Seed
	slots [1024]struct {
		tokens float64
		last   time.Time
	}
}

func newReplyLimiter(rate float64) *replyLimiter {
	return &replyLimiter{rate: rate, burst: max(rate, 1), seed: maphash.MakeSeed()}
}

func (l *replyLimiter) allow(a netip.Addr) bool {
	b := a.As16()
	i := maphash.Bytes(l.seed, b[:]) % uint64(len(l.slots))
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.slots[i]
	if s.last.IsZero() {
		s.tokens = l.burst
	} else {
		s.tokens = min(l.burst, s.tokens+now.Sub(s.last).Seconds()*l.rate)
	}
	s.last = now
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}
