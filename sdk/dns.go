package sdk

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/qcdvpn/qcdvpn/dnsconfig"
	"github.com/qcdvpn/qcdvpn/ike"
	"github.com/qcdvpn/qcdvpn/resolver"
)

// DNSOptions control the two sides of DNS: gateway names, resolved with
// the underlying network's servers and never through the tunnel, and
// the tunnel's DNS (RFC 8598 split DNS), applied to the system on Linux
// with the kernel data plane. On mobile the app applies the servers and
// domains of the connected event itself.
type DNSOptions struct {
	// ResolvConf is the resolver file: the underlying network's servers
	// are read from it before the tunnel changes anything, and with the
	// kernel data plane it points at the tunnel's forwarder while
	// connected. Default /etc/resolv.conf.
	ResolvConf string
	// Backend applies the tunnel's DNS: "auto" (default: systemd-resolved
	// when it runs, else the forwarder), "resolved", "forwarder", or
	// "off" to leave the system's DNS alone.
	Backend string
	// Listen is the forwarder's address (default 127.0.0.153:53).
	Listen netip.AddrPort
	// NetworkServers are the underlying network's DNS servers when the
	// app knows them (Android: LinkProperties.getDnsServers); they win
	// over ResolvConf. Port 0 means 53.
	NetworkServers []netip.AddrPort
	// Hold bounds how long a query for the tunnel waits during a
	// failover before it is answered SERVFAIL (default 3 s).
	Hold time.Duration
	// MinTTL is the least time a gateway name's addresses are kept before
	// they are refreshed (default and lowest 5 s): each refresh wakes the
	// device, so mobile apps use more (package mobile: 1 min).
	MinTTL time.Duration
}

// clientDNS is a client's DNS state.
type clientDNS struct {
	res *resolver.Resolver
	mgr *dnsconfig.Manager // nil: the system's DNS is not ours to change

	mu      sync.Mutex
	cancel  context.CancelFunc // the refresh loop's
	closed  bool
	protect func(fd int) error
}

// openDNS captures the underlay's resolvers (after undoing what a crashed
// run left in the resolver file) and prepares the gateway-name cache.
func (c *Client) openDNS(r *ResolvedProfile) {
	o := c.opts.DNS
	d := &clientDNS{protect: c.opts.Protect}
	c.dns = d
	var servers []netip.AddrPort
	for _, a := range o.NetworkServers {
		if a.Port() == 0 {
			a = netip.AddrPortFrom(a.Addr(), 53)
		}
		servers = append(servers, netip.AddrPortFrom(a.Addr().Unmap(), a.Port()))
	}
	if c.opts.DataPlane == DataPlaneKernel && r.UseDNS && o.Backend != "off" && runtime.GOOS == "linux" {
		dir := c.stateDir()
		m, err := dnsconfig.New(dnsconfig.Options{StateDir: dir, ResolvConf: o.ResolvConf, Backend: o.Backend,
			Listen: o.Listen, Underlay: servers, Hold: o.Hold, Logger: c.log})
		if err != nil {
			c.log.Warn("the tunnel's DNS will not be applied", "err", err)
		} else {
			d.mgr = m
			if len(servers) == 0 {
				servers = m.Underlay()
			}
		}
	}
	if len(servers) == 0 {
		var err error
		if servers, err = resolver.SystemServers(o.ResolvConf); err != nil {
			c.log.Info("no resolver file; gateway names go to the system resolver", "err", err)
		}
	}
	d.res = resolver.New(resolver.Options{Servers: servers, Control: c.opts.Protect, MinTTL: o.MinTTL, Logger: c.log})
}

// lookup returns every address of a gateway name from the cache (see
// resolver.Resolver.Lookup): a failover asks nobody.
func (c *Client) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return c.dns.res.Lookup(ctx, host)
}

// fullTunnel reports whether the profile sends all traffic through the
// tunnel (then split domains are ignored, RFC 8598 §2).
func fullTunnel(r *ResolvedProfile) bool {
	for _, p := range r.Include {
		if p.Bits() == 0 {
			return true
		}
	}
	return false
}

// splitDomains are the session's domains that apply: none in a full tunnel.
func (c *Client) splitDomains(s *ike.Session) []string {
	if fullTunnel(c.resolved()) {
		return nil
	}
	return s.Domains
}

// dnsUp runs once a session carries traffic: gateway-name lookups now
// bypass the tunnel by its fwmark, they are refreshed in the background,
// and the tunnel's DNS is applied (held queries are released).
func (c *Client) dnsUp(s *ike.Session, tn *tunnel) {
	d := c.dns
	d.mu.Lock()
	if d.closed {
		// Close ran while this connect finished: nothing more to set up.
		d.mu.Unlock()
		return
	}
	if d.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		d.cancel = cancel
		go d.res.Run(ctx)
	}
	d.mu.Unlock()
	underlay := d.protect
	link := ""
	if tn != nil && tn.kernel != nil {
		underlay = withMark(d.protect, tn.kernel.FwMark())
		link = tn.kernel.Name()
	}
	d.res.SetControl(underlay)
	r := c.resolved()
	if d.mgr == nil || link == "" || !r.UseDNS {
		return
	}
	if len(s.DNS) == 0 {
		c.log.Info("the gateway assigned no DNS server; the system's DNS is unchanged")
		return
	}
	d.mgr.SetControls(underlay, nil)
	domains := c.splitDomains(s)
	err := d.mgr.Apply(dnsconfig.Settings{Servers: s.DNS, Domains: domains, All: len(domains) == 0, Link: link})
	if err != nil {
		c.log.Warn("applying the tunnel's DNS", "err", err)
	}
}

// dnsHold runs when the IKE SA is gone and a failover starts: queries
// for the tunnel wait for the next SA instead of leaking.
func (c *Client) dnsHold() {
	if c.dns.mgr != nil {
		c.dns.mgr.Hold()
	}
}

// closeDNS restores the system's DNS and stops refreshing names.
func (c *Client) closeDNS() {
	d := c.dns
	d.mu.Lock()
	d.closed = true
	if d.cancel != nil {
		d.cancel()
		d.cancel = nil
	}
	d.mu.Unlock()
	if d.mgr != nil {
		if err := d.mgr.Close(); err != nil {
			c.log.Warn("restoring the system's DNS", "err", err)
		}
	}
}

// withMark adds the tunnel's fwmark to protect, so that a socket bypasses
// the tunnel's routing table.
func withMark(protect func(fd int) error, mark uint32) func(fd int) error {
	if mark == 0 {
		return protect
	}
	return func(fd int) error {
		if protect != nil {
			if err := protect(fd); err != nil {
				return err
			}
		}
		return setMarkFD(fd, mark)
	}
}

// RestoreSystemDNS undoes what a client of profile p that did not exit
// cleanly (kill -9, a power cut) left in the system's DNS configuration:
// the resolver file's original bytes and mode, or systemd-resolved's link
// settings, as recorded in the state directory before they were changed.
// NewClient does this itself; `qcdvpn down` calls it when no client runs.
// It returns an error wrapping dnsconfig.ErrBusy while that client still
// runs.
func RestoreSystemDNS(p *Profile, opts Options) error {
	if p == nil {
		return errors.New("sdk: nil profile")
	}
	c := &Client{profile: p, opts: opts}
	dir := c.stateDir()
	if dir == "" {
		return nil
	}
	return dnsconfig.RestoreLeftover(dir, nil, opts.Logger)
}
