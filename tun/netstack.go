package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"golang.zx2c4.com/wireguard/tun/netstack"
)

// CreateNetstack creates a rootless, in-process TCP/IP stack (gVisor) owning addrs. The
// returned Device carries its IP packets (what a kernel TUN would), and the *netstack.Net
// dials, listens and resolves (via dns) from inside the tunnel. mtu 0 means DefaultMTU.
// Closing the Device stops the stack; a second Close is a no-op.
func CreateNetstack(addrs []netip.Addr, dns []netip.Addr, mtu int) (Device, *netstack.Net, error) {
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < minMTU || mtu > maxMTU {
		return nil, nil, fmt.Errorf("tun: netstack MTU %d out of range [%d, %d]", mtu, minMTU, maxMTU)
	}
	if len(addrs) == 0 {
		return nil, nil, errors.New("tun: netstack: at least one address is required")
	}
	// Validate fully up front: on a late failure wireguard-go's constructor leaks the stack.
	local := make([]netip.Addr, 0, len(addrs))
	for i, a := range addrs {
		a = a.Unmap()
		switch {
		case !a.IsValid():
			return nil, nil, fmt.Errorf("tun: netstack address %d: invalid or missing", i)
		case a.Zone() != "":
			return nil, nil, fmt.Errorf("tun: netstack address %d: zoned address %s not supported", i, a)
		case a.IsUnspecified() || a.IsMulticast():
			return nil, nil, fmt.Errorf("tun: netstack address %d: %s is not a unicast address", i, a)
		case a.Is6() && mtu < minMTUv6:
			return nil, nil, fmt.Errorf("tun: netstack MTU %d below %d, the IPv6 minimum, but %s is IPv6", mtu, minMTUv6, a)
		}
		for _, b := range local {
			if a == b {
				return nil, nil, fmt.Errorf("tun: netstack address %d: duplicate %s", i, a)
			}
		}
		local = append(local, a)
	}
	servers := make([]netip.Addr, 0, len(dns))
	for i, d := range dns {
		if d = d.Unmap(); !d.IsValid() || d.IsUnspecified() {
			return nil, nil, fmt.Errorf("tun: netstack DNS server %d: invalid address", i)
		}
		servers = append(servers, d)
	}
	dev, tnet, err := netstack.CreateNetTUN(local, servers, mtu)
	if err != nil {
		return nil, nil, fmt.Errorf("tun: netstack: %w", err)
	}
	return &onceClose{Device: dev}, tnet, nil
}

// onceClose makes Close idempotent: wireguard-go's netstack device panics on a second Close.
type onceClose struct {
	Device
	once sync.Once
	err  error
}

// Close stops the device the first time it is called.
func (d *onceClose) Close() error {
	d.once.Do(func() { d.err = d.Device.Close() })
	return d.err
}
