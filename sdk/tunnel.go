package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/qcdvpn/qcdvpn/dataplane"
	"github.com/qcdvpn/qcdvpn/esp"
	"github.com/qcdvpn/qcdvpn/ike"
	"github.com/qcdvpn/qcdvpn/tun"
)

// DataPlane selects where tunnelled packets come from and go to.
type DataPlane int

const (
	// DataPlaneKernel creates a kernel TUN interface with addresses and
	// routes (needs privileges; Linux).
	DataPlaneKernel DataPlane = iota
	// DataPlaneNetstack runs an in-process network stack: no privileges,
	// the tunnel is reachable only through Client.Net.
	DataPlaneNetstack
	// DataPlaneDevice uses Options.Device, a TUN the app already has (the
	// file descriptor Android's VpnService or iOS's packet tunnel hands
	// over); addresses and routes are then the app's job.
	DataPlaneDevice
	// DataPlaneNone negotiates SAs but carries no traffic (diagnostics).
	DataPlaneNone
)

// tunnel is the data plane of one connection.
type tunnel struct {
	dev    tun.Device
	kernel *tun.Kernel
	net    *netstack.Net
	engine *dataplane.Engine
	cancel context.CancelFunc
	done   chan struct{}
	addrs  []netip.Prefix
}

func sameAddrs(a, b []netip.Prefix) bool {
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

// startTunnel brings up the data plane for an established session.
func (c *Client) startTunnel(s *ike.Session) (*tunnel, error) {
	r, err := c.profile.Resolve()
	if err != nil {
		return nil, err
	}
	if c.opts.DataPlane == DataPlaneNone {
		return nil, nil
	}
	if s.Child == nil {
		return nil, errors.New("sdk: no child SA to carry traffic")
	}
	// After a reconnect the TUN stays if the addresses did too: the new SAs
	// go into the same engine.
	c.mu.Lock()
	prev := c.tn
	c.mu.Unlock()
	if prev != nil && sameAddrs(prev.addrs, s.VirtualIPs) {
		if err := prev.engine.Install(s.Child, s.Remote(), c.espLimits()); err != nil {
			return nil, err
		}
		return prev, nil
	}
	if prev != nil && prev.kernel != nil {
		// Other addresses (another gateway's pool): the same TUN takes
		// them, so its routes stay and nothing leaves outside the tunnel
		// between the two SAs (the kill switch).
		err := prev.kernel.SetAddresses(s.VirtualIPs)
		if err == nil {
			if err := prev.engine.Install(s.Child, s.Remote(), c.espLimits()); err != nil {
				return nil, err
			}
			prev.addrs = s.VirtualIPs
			return prev, nil
		}
		c.log.Warn("re-creating the TUN for the new addresses", "err", err)
	}
	if prev != nil {
		c.stopTunnel()
	}
	var addrs []netip.Addr
	for _, p := range s.VirtualIPs {
		addrs = append(addrs, p.Addr())
	}
	tn := &tunnel{done: make(chan struct{}), addrs: s.VirtualIPs}
	switch c.opts.DataPlane {
	case DataPlaneKernel:
		if len(addrs) == 0 {
			return nil, errors.New("sdk: the gateway assigned no virtual IP")
		}
		k, err := tun.Create(context.Background(), tun.Config{
			Name:      c.opts.TUNName,
			Addresses: s.VirtualIPs,
			MTU:       r.MTU,
			Include:   r.Include,
			Exclude:   r.Exclude,
			Gateway:   s.Remote().Addr(),
		}, c.log)
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("%w (a kernel TUN needs root or CAP_NET_ADMIN; the netstack data plane does not)", err)
		}
		if err != nil {
			return nil, err
		}
		if err := tun.SetMark(s.Transport().Conn(), k.FwMark()); err != nil {
			k.Close()
			return nil, fmt.Errorf("sdk: marking the UDP socket to bypass the tunnel: %w", err)
		}
		tn.kernel, tn.dev = k, k.Device()
	case DataPlaneNetstack:
		if len(addrs) == 0 {
			return nil, errors.New("sdk: the gateway assigned no virtual IP")
		}
		dev, n, err := tun.CreateNetstack(addrs, s.DNS, r.MTU)
		if err != nil {
			return nil, err
		}
		tn.dev, tn.net = dev, n
	case DataPlaneDevice:
		if c.opts.Device == nil {
			return nil, errors.New("sdk: DataPlaneDevice needs Options.Device")
		}
		tn.dev = c.opts.Device
	default:
		return nil, fmt.Errorf("sdk: unknown data plane %d", c.opts.DataPlane)
	}
	tn.engine = dataplane.New(tn.dev, s.Transport(), c.log)
	if err := tn.engine.Install(s.Child, s.Remote(), c.espLimits()); err != nil {
		tn.close()
		return nil, err
	}
	s.Transport().SetESPHandler(tn.engine.HandleESP)
	ctx, cancel := context.WithCancel(context.Background())
	tn.cancel = cancel
	go func() {
		defer close(tn.done)
		if err := tn.engine.Run(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("data plane stopped", "err", err)
		}
	}()
	if ka := r.Timers.Keepalive; ka > 0 {
		go c.keepalive(ctx, ka)
	}
	return tn, nil
}

// keepalive sends NAT-T keepalives to the current gateway so NAT mappings
// outlive quiet periods: one wake-up per interval, the client's only
// periodic timer besides the IKE session's (see Wakeups).
func (c *Client) keepalive(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.keepalives.Add(1)
			if s := c.Session(); s != nil {
				_ = s.Transport().SendKeepalive(s.Remote())
			}
		}
	}
}

// close tears the data plane down: no packet is sent after it starts, and
// the TUN with its routes is gone when it returns.
func (tn *tunnel) close() {
	if tn == nil {
		return
	}
	if tn.engine != nil {
		tn.engine.Remove()
		tn.engine.Close()
	}
	if tn.cancel != nil {
		tn.cancel()
	}
	if tn.kernel != nil {
		tn.kernel.Close()
	} else if tn.dev != nil && tn.net != nil {
		tn.dev.Close()
	}
	// The reader ends once its device is closed; an app's own device
	// (DataPlaneDevice) is the app's to close, so do not wait for it.
	if tn.cancel != nil && (tn.kernel != nil || tn.net != nil) {
		select {
		case <-tn.done:
		case <-time.After(2 * time.Second):
		}
	}
}

// espLimits is the hard lifetime of a Child SA: 20 % past the rekey time,
// so an SA whose rekey keeps failing stops carrying traffic rather than
// living on unbounded.
func (c *Client) espLimits() esp.Limits {
	r, err := c.profile.Resolve()
	if err != nil || r.Timers.ChildLifetime <= 0 {
		return esp.Limits{}
	}
	return esp.Limits{Lifetime: r.Timers.ChildLifetime + r.Timers.ChildLifetime/5}
}
