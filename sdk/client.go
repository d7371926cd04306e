package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// OnEvent receives every event in order, from one goroutine. It must
	// not block for long.
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
	return &Client{profile: p, opts: opts, log: log, ikeCfg: cfg}, nil
}

func (c *Client) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(e)
	}
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
			start := time.Now()
			c.emit(Event{Type: EventConnecting, Gateway: remote.String()})
			s, err := ike.Initiate(ctx, c.ikeCfg, t, remote)
			if err != nil {
				c.log.Info("connect failed", "gateway", remote, "err", err)
				c.emit(Event{Type: EventConnectFailed, Gateway: remote.String(), Error: err.Error()})
				errs = append(errs, fmt.Errorf("gateway %s: %w", remote, err))
				if ctx.Err() != nil {
					return ctx.Err()
				}
				continue
			}
			tn, err := c.startTunnel(s)
			if err != nil {
				closeCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				s.Close(closeCtx)
				cancel()
				return fmt.Errorf("gateway %s: %w", remote, err)
			}
			c.mu.Lock()
			c.session, c.gateway, c.tn = s, remote.String(), tn
			c.mu.Unlock()
			c.emit(c.connectedEvent(s, remote, time.Since(start)))
			return nil
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
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

// Wait blocks until the tunnel ends or ctx is done, then closes it.
func (c *Client) Wait(ctx context.Context) error {
	c.mu.Lock()
	s := c.session
	c.mu.Unlock()
	if s == nil {
		return errors.New("sdk: not connected")
	}
	select {
	case <-ctx.Done():
		return c.Close()
	case <-s.Done():
		err := s.Err()
		c.stopTunnel()
		c.emit(Event{Type: EventDisconnected, Gateway: c.gateway, Reason: err.Error()})
		c.closeTransport()
		return err
	}
}

// Close deletes the IKE SA at the gateway (waiting up to 3 s for its
// answer) and releases the socket.
func (c *Client) Close() error {
	c.mu.Lock()
	s := c.session
	c.session = nil
	c.mu.Unlock()
	var err error
	if s != nil {
		// Stop sending first: nothing leaves outside the tunnel while the
		// Delete goes out.
		c.stopTunnel()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = s.Close(ctx)
		cancel()
		c.emit(Event{Type: EventDisconnected, Gateway: c.gateway, Reason: "closed by user"})
	}
	c.closeTransport()
	return err
}

func (c *Client) stopTunnel() {
	c.mu.Lock()
	tn := c.tn
	c.tn = nil
	c.mu.Unlock()
	if tn != nil {
		st := tn.engine.Stats()
		tn.close()
		c.emit(statsEvent(st, c.gateway))
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
