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
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/qcdvpn/qcdvpn/ike"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
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

	mu      sync.Mutex
	t       *ike.Transport
	session *ike.Session
	gateway string
	tn      *tunnel
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
	return &Client{profile: p, opts: opts, log: log, ikeCfg: cfg,
		events: newEventQueue(opts.OnEvent), closing: make(chan struct{})}, nil
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

// Connect establishes the tunnel with the first gateway of the profile that
// answers, trying each address of each gateway in order.
func (c *Client) Connect(ctx context.Context) error {
	select {
	case <-c.closing:
		return ErrClosed
	default:
	}
	c.mu.Lock()
	if c.t == nil {
		laddr := c.opts.LocalAddr
		if laddr == "" {
			laddr = ":0"
		}
		t, err := ike.Listen(laddr, c.log)
		if err != nil {
			c.mu.Unlock()
			return fmt.Errorf("sdk: opening UDP socket: %w", err)
		}
		c.t = t
	}
	t := c.t
	c.mu.Unlock()

	gws, err := c.profile.GatewayEndpoints()
	if err != nil {
		return err
	}
	var errs []error
	for _, gw := range gws {
		addrs, err := resolve(ctx, gw.Host)
		if err != nil {
			errs = append(errs, fmt.Errorf("gateway %s: %w", gw.Host, err))
			continue
		}
		for _, a := range addrs {
			remote := netip.AddrPortFrom(a, gw.Port)
			err := c.connectTo(ctx, t, remote)
			if err == nil {
				return nil
			}
			errs = append(errs, fmt.Errorf("gateway %s: %w", remote, err))
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// connectTo runs one attempt with one gateway address.
func (c *Client) connectTo(ctx context.Context, t *ike.Transport, remote netip.AddrPort) error {
	start := time.Now()
	c.emit(Event{Type: EventConnecting, Gateway: remote.String()})
	s, err := ike.Initiate(ctx, c.ikeCfg, t, remote)
	if err != nil {
		c.log.Info("connect failed", "gateway", remote, "err", err)
		c.emit(Event{Type: EventConnectFailed, Gateway: remote.String(), Error: err.Error()})
		return err
	}
	tn, err := c.startTunnel(s)
	if err != nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s.Close(closeCtx)
		cancel()
		return err
	}
	c.mu.Lock()
	c.session, c.gateway, c.tn = s, remote.Addr().String(), tn
	c.mu.Unlock()
	c.startSession(s, tn)
	c.emit(c.connectedEvent(s, remote, time.Since(start)))
	return nil
}

// startSession connects the IKE session's lifecycle to the data plane and
// the event stream, then starts it.
func (c *Client) startSession(s *ike.Session, tn *tunnel) {
	r, _ := c.profile.Resolve()
	gw := s.Remote().Addr().String()
	h := ike.Hooks{
		IKERekeyed: func(spii, spir uint64) {
			c.emit(Event{Type: EventRekeyed, Gateway: gw, Reason: "ike", IKESPIi: fmt.Sprintf("%016x", spii), IKESPIr: fmt.Sprintf("%016x", spir)})
		},
		ChildRekeyed: func(prev, next *ike.ChildSA, sendNow bool) {
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
			if tn != nil && tn.engine != nil {
				if err := tn.engine.AddInbound(extra, s.Remote(), c.espLimits()); err != nil {
					c.log.Warn("adding child SA", "err", err)
				}
			}
		},
		ChildGone: func(old *ike.ChildSA) {
			if tn != nil && tn.engine != nil {
				tn.engine.Retire(old.SPIIn)
			}
		},
	}
	if tn != nil && tn.engine != nil {
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
		Type:     EventConnected,
		Gateway:  remote.Addr().String(),
		IKESPIi:  fmt.Sprintf("%016x", s.SPIi),
		IKESPIr:  fmt.Sprintf("%016x", s.SPIr),
		IKESuite: s.Suite.String(),
		Elapsed:  took,
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
	return e
}

// Wait keeps the tunnel up until ctx is done, then closes it. When the
// IKE SA ends (the gateway deleted it, stopped answering, …) it reconnects
// at once, then with growing, jittered pauses while every attempt fails.
// The TUN stays up meanwhile, so no packet leaves outside the tunnel.
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
		if errors.Is(err, ike.ErrLivenessFailed) {
			c.emit(Event{Type: EventLivenessFailed, Gateway: gw, Reason: err.Error()})
		}
		c.emit(Event{Type: EventDisconnected, Gateway: gw, Reason: err.Error()})
		c.mu.Lock()
		tn := c.tn
		c.mu.Unlock()
		if tn != nil && tn.engine != nil {
			tn.engine.Remove()
		}
		if err := c.reconnect(ctx); err != nil {
			c.stopTunnel()
			c.closeTransport()
			return err
		}
	}
}

// reconnect tries the gateways again: at once, then backing off with
// jitter up to 30 s between rounds, until one answers or ctx ends.
func (c *Client) reconnect(ctx context.Context) error {
	pause := time.Second
	for {
		err := c.Connect(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return err
		}
		wait := pause/2 + time.Duration(mrand.Int64N(int64(pause)))
		c.log.Info("reconnect failed, waiting", "err", err, "wait", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closing:
			return ErrClosed
		case <-time.After(wait):
		}
		pause = min(2*pause, 30*time.Second)
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
	var err error
	if s != nil {
		// Stop sending first: nothing leaves outside the tunnel while the
		// Delete goes out.
		c.stopTunnel()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = s.Close(ctx)
		cancel()
		c.emit(Event{Type: EventDisconnected, Gateway: gw, Reason: "closed by user"})
	}
	c.stopTunnel()
	c.closeTransport()
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

// resolve returns the addresses of host: the literal itself, or every A
// and AAAA record.
func resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return addrs, nil
}
