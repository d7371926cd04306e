// Package tun provides the TUN devices the VPN data plane reads from and writes to: a Linux
// kernel TUN configured with the tunnel's addresses, MTU and policy routes (all undone on
// Close), a TUN adopted from a file descriptor (Android VpnService, iOS NEPacketTunnelProvider)
// and a rootless in-process netstack (gVisor) that needs no privileges at all.
//
// Routing on Linux follows wg-quick: the included prefixes live in a dedicated routing table T,
// reached through the rules "not fwmark M lookup T" and "lookup main suppress_prefixlength 0".
// Sockets carrying IKE/ESP to the gateway set SO_MARK=M (see SetMark) and so never enter the
// tunnel; excluded prefixes and the gateway itself are "throw" routes in T, which make the
// lookup fall through to the main table.
package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Device is wireguard-go's TUN device: batched Read(bufs, sizes, offset) and
// Write(bufs, offset), where offset leaves headroom in front of every packet.
type Device = wgtun.Device

// Defaults used when the corresponding Config field is zero.
const (
	// DefaultName is the kernel interface name template; the kernel replaces %d with the
	// first free number (qcd0, qcd1, ...).
	DefaultName = "qcd%d"
	// DefaultMTU is used when Config.MTU is 0.
	DefaultMTU = 1400
	// BaseTable is the lowest routing table number picked when Config.Table is 0.
	BaseTable = 51821
	// DefaultRulePriority is the priority of the "lookup main suppress_prefixlength 0"
	// rule; the "not fwmark M lookup T" rule gets the next number. Both sit just before
	// the main table's own rule (32766), as wg-quick's rules do on a stock host.
	DefaultRulePriority = 32764
)

// MTU bounds: IPv4 requires 576, the kernel disables IPv6 on links below 1280.
const (
	minMTU   = 576
	minMTUv6 = 1280
	maxMTU   = 65535
	// ifNameSize is the kernel's IFNAMSIZ including the terminating NUL.
	ifNameSize = 16
)

// Config is what the tunnel negotiated plus the profile's routing wishes.
type Config struct {
	// Name requests an interface name; "" means DefaultName ("qcd%d").
	Name string
	// Addresses are the virtual IPs from the gateway (e.g. 10.100.3.1/32), assigned to the
	// interface as given (the prefix length decides the on-link route the kernel adds).
	Addresses []netip.Prefix
	// MTU of the interface; 0 means DefaultMTU.
	MTU int
	// Include lists prefixes routed into the tunnel (e.g. 10.200.0.0/24, 0.0.0.0/0, ::/0).
	Include []netip.Prefix
	// Exclude lists prefixes kept out of the tunnel even if inside Include. An Include
	// prefix lying wholly inside an Exclude prefix is dropped.
	Exclude []netip.Prefix
	// Gateway is the VPN gateway's public address; it never routes into the tunnel.
	Gateway netip.Addr

	// Table is the policy routing table holding the includes; 0 picks a free one at
	// random from BaseTable upwards.
	Table uint32
	// FwMark is the mark that exempts a socket from the tunnel; 0 means the table number
	// (as wg-quick does).
	FwMark uint32
	// RulePriority is the priority of the suppress rule; the fwmark rule uses
	// RulePriority+1. 0 means DefaultRulePriority. Must be below 32765 so that both rules
	// precede the main table's rule.
	RulePriority uint32
}

// routePlan is a validated, canonical Config: what Create installs, in order.
type routePlan struct {
	name     string
	mtu      int
	addrs    []netip.Prefix // interface addresses (unmapped, host bits kept)
	include  []netip.Prefix // unicast routes via the TUN in table T (masked, deduplicated)
	throw    []netip.Prefix // throw routes in table T (excludes, then the gateway host)
	families []int          // address families (4 or 6) that need rules and routes
	dropped  []netip.Prefix // includes dropped because an exclude covers them
	table    uint32         // 0: pick one at set-up time
	fwmark   uint32         // 0: same as the table
	prio     uint32         // suppress rule; the fwmark rule is prio+1
}

// plan validates cfg and computes the routes and rules it implies. It is pure so that it can
// be tested on every OS.
func plan(cfg Config) (*routePlan, error) {
	p := &routePlan{name: cfg.Name, mtu: cfg.MTU}
	if p.name == "" {
		p.name = DefaultName
	}
	if err := checkName(p.name); err != nil {
		return nil, err
	}
	if p.mtu == 0 {
		p.mtu = DefaultMTU
	}
	if p.mtu < minMTU || p.mtu > maxMTU {
		return nil, fmt.Errorf("tun: Config.MTU %d out of range [%d, %d]", p.mtu, minMTU, maxMTU)
	}
	switch cfg.Table {
	case 253, 254, 255: // default, main, local
		return nil, fmt.Errorf("tun: Config.Table %d is a reserved kernel table", cfg.Table)
	}
	p.table, p.fwmark, p.prio = cfg.Table, cfg.FwMark, cfg.RulePriority
	if p.prio == 0 {
		p.prio = DefaultRulePriority
	}
	if p.prio > DefaultRulePriority {
		return nil, fmt.Errorf("tun: Config.RulePriority %d must be at most %d to precede the main table's rule", p.prio, DefaultRulePriority)
	}
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("tun: Config.Addresses: at least one virtual address is required")
	}
	hasV6 := false
	seen := map[netip.Addr]bool{}
	for i, a := range cfg.Addresses {
		a, err := canonPrefix(a, false)
		if err != nil {
			return nil, fmt.Errorf("tun: Config.Addresses[%d]: %w", i, err)
		}
		if a.Addr().IsUnspecified() || a.Addr().IsMulticast() {
			return nil, fmt.Errorf("tun: Config.Addresses[%d]: %s is not a unicast address", i, a.Addr())
		}
		if seen[a.Addr()] {
			return nil, fmt.Errorf("tun: Config.Addresses[%d]: duplicate address %s", i, a.Addr())
		}
		seen[a.Addr()] = true
		hasV6 = hasV6 || a.Addr().Is6()
		p.addrs = append(p.addrs, a)
	}

	var excl []netip.Prefix
	for i, e := range cfg.Exclude {
		e, err := canonPrefix(e, true)
		if err != nil {
			return nil, fmt.Errorf("tun: Config.Exclude[%d]: %w", i, err)
		}
		excl = appendUnique(excl, e)
	}
	if cfg.Gateway.IsValid() {
		gw := cfg.Gateway.Unmap()
		if gw.Zone() != "" {
			return nil, fmt.Errorf("tun: Config.Gateway %s: zoned addresses are not supported", cfg.Gateway)
		}
		if gw.IsUnspecified() {
			return nil, fmt.Errorf("tun: Config.Gateway %s: not a unicast address", cfg.Gateway)
		}
		excl = appendUnique(excl, netip.PrefixFrom(gw, gw.BitLen()))
	}
	var fam4, fam6 bool
	for i, in := range cfg.Include {
		in, err := canonPrefix(in, true)
		if err != nil {
			return nil, fmt.Errorf("tun: Config.Include[%d]: %w", i, err)
		}
		if coveredBy(in, excl) {
			p.dropped = append(p.dropped, in)
			continue
		}
		if in.Addr().Is6() {
			fam6 = true
		} else {
			fam4 = true
		}
		p.include = appendUnique(p.include, in)
	}
	if fam6 {
		hasV6 = true
	}
	if hasV6 && p.mtu < minMTUv6 {
		return nil, fmt.Errorf("tun: Config.MTU %d below %d, the IPv6 minimum, but IPv6 is in use", p.mtu, minMTUv6)
	}
	if fam4 {
		p.families = append(p.families, 4)
	}
	if fam6 {
		p.families = append(p.families, 6)
	}
	// Throw routes only matter in families that have includes in table T.
	for _, e := range excl {
		if (e.Addr().Is4() && fam4) || (e.Addr().Is6() && fam6) {
			p.throw = append(p.throw, e)
		}
	}
	return p, nil
}

// checkName rejects names the kernel would refuse or misread.
func checkName(name string) error {
	if len(name) >= ifNameSize {
		return fmt.Errorf("tun: Config.Name %q longer than %d bytes", name, ifNameSize-1)
	}
	if name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n\x00") {
		return fmt.Errorf("tun: Config.Name %q is not a valid interface name", name)
	}
	if strings.Count(name, "%") > 1 || (strings.Contains(name, "%") && !strings.Contains(name, "%d")) {
		return fmt.Errorf("tun: Config.Name %q: only a single %%d template is allowed", name)
	}
	return nil
}

// canonPrefix unmaps IPv4-mapped IPv6 prefixes and, for routes, masks the host bits.
func canonPrefix(p netip.Prefix, mask bool) (netip.Prefix, error) {
	if !p.IsValid() {
		return netip.Prefix{}, errors.New("invalid or missing prefix")
	}
	a := p.Addr()
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%s: zoned addresses are not supported", p)
	}
	bits := p.Bits()
	if a.Is4In6() {
		if bits < 96 {
			return netip.Prefix{}, fmt.Errorf("%s: IPv4-mapped prefix shorter than /96", p)
		}
		a, bits = a.Unmap(), bits-96
	}
	p = netip.PrefixFrom(a, bits)
	if mask {
		p = p.Masked()
	}
	return p, nil
}

// coveredBy reports whether p lies wholly inside one of set.
func coveredBy(p netip.Prefix, set []netip.Prefix) bool {
	for _, s := range set {
		if s.Addr().BitLen() == p.Addr().BitLen() && s.Bits() <= p.Bits() && s.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

func appendUnique(list []netip.Prefix, p netip.Prefix) []netip.Prefix {
	for _, q := range list {
		if q == p {
			return list
		}
	}
	return append(list, p)
}
