package tun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Kernel is a kernel TUN interface together with the addresses, routes and rules Create
// installed for it. Close undoes all of it.
type Kernel struct {
	dev    Device
	name   string
	index  int32
	table  uint32
	fwmark uint32
	nl     *nlConn
	log    *slog.Logger

	mu     sync.Mutex
	undo   []undoStep // in set-up order; run in reverse
	closed bool
}

// undoStep removes one thing set-up added.
type undoStep struct {
	what string
	fn   func() error
}

// Create creates a kernel TUN device (wireguard-go's CreateTUN), assigns cfg.Addresses, sets
// the MTU, brings the link up and installs the policy routing described in the package
// documentation. Everything is recorded and undone by Close; if Create fails half way it
// undoes what it did before returning the error. It needs CAP_NET_ADMIN in the current
// network namespace (that of the calling thread).
func Create(ctx context.Context, cfg Config, log *slog.Logger) (*Kernel, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := plan(cfg)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tun: create: %w", err)
	}
	for _, d := range p.dropped {
		log.Debug("tun: include dropped, an exclude covers it", "prefix", d)
	}
	nl, err := openNetlink()
	if err != nil {
		return nil, err
	}
	k := &Kernel{nl: nl, log: log}
	if err := k.setUp(ctx, p); err != nil {
		if cerr := k.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("tun: undoing a failed set-up: %w", cerr))
		}
		return nil, err
	}
	log.Info("tun: interface ready", "name", k.name, "mtu", p.mtu, "addresses", p.addrs,
		"include", p.include, "throw", p.throw, "table", k.table, "fwmark", k.fwmark)
	return k, nil
}

// setUp performs the steps of Create, recording an undo step after each success.
func (k *Kernel) setUp(ctx context.Context, p *routePlan) error {
	dev, err := wgtun.CreateTUN(p.name, p.mtu)
	if err != nil {
		return fmt.Errorf("tun: create TUN %q: %w", p.name, err)
	}
	k.dev = drainEvents(dev)
	k.record("TUN device", dev.Close)
	if k.name, err = dev.Name(); err != nil {
		return fmt.Errorf("tun: TUN name: %w", err)
	}
	ifc, err := net.InterfaceByName(k.name)
	if err != nil {
		return fmt.Errorf("tun: interface %s: %w", k.name, err)
	}
	k.index = int32(ifc.Index)

	for _, a := range p.addrs {
		msg := addrMsg(k.index, a)
		if err := k.nl.request(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, msg); err != nil {
			return fmt.Errorf("tun: add address %s to %s: %w", a, k.name, err)
		}
		k.record("address "+a.String(), func() error { return k.nl.request(unix.RTM_DELADDR, 0, msg) })
	}
	// Setting the MTU again is harmless and keeps Create correct whatever CreateTUN did.
	if err := k.nl.request(unix.RTM_NEWLINK, 0, linkMsg(k.index, p.mtu)); err != nil {
		return fmt.Errorf("tun: set %s up with MTU %d: %w", k.name, p.mtu, err)
	}
	if len(p.families) == 0 {
		return nil // nothing to route: addresses only
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tun: create: %w", err)
	}

	if k.table, err = k.pickTable(p.table); err != nil {
		return err
	}
	k.fwmark = p.fwmark
	if k.fwmark == 0 {
		k.fwmark = k.table
	}
	for _, in := range p.include {
		if err := k.addRoute(in, k.index); err != nil {
			return err
		}
	}
	for _, t := range p.throw {
		if err := k.addRoute(t, 0); err != nil {
			return err
		}
	}
	for _, fam := range p.families {
		// Rules last, so traffic is only steered once table T is complete.
		rules := []ruleSpec{
			{family: familyOf(fam), prio: p.prio, table: unix.RT_TABLE_MAIN, suppress: true},
			{family: familyOf(fam), prio: p.prio + 1, table: k.table, fwmark: k.fwmark, notMark: true},
		}
		for _, r := range rules {
			if err := k.addRule(r); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

func (k *Kernel) addRoute(dst netip.Prefix, oif int32) error {
	what := fmt.Sprintf("route %s dev %s table %d", dst, k.name, k.table)
	if oif == 0 {
		what = fmt.Sprintf("throw route %s table %d", dst, k.table)
	}
	err := k.nl.request(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, routeMsg(k.table, dst, oif, false))
	if err != nil {
		return fmt.Errorf("tun: add %s: %w", what, err)
	}
	del := routeMsg(k.table, dst, oif, true)
	k.record(what, func() error { return k.nl.request(unix.RTM_DELROUTE, 0, del) })
	return nil
}

func (k *Kernel) addRule(r ruleSpec) error {
	what := fmt.Sprintf("rule pref %d table %d", r.prio, r.table)
	if r.notMark {
		what = fmt.Sprintf("rule pref %d not fwmark %#x table %d", r.prio, r.fwmark, r.table)
	} else if r.suppress {
		what = fmt.Sprintf("rule pref %d table main suppress_prefixlength 0", r.prio)
	}
	if r.family == unix.AF_INET6 {
		what = "IPv6 " + what
	}
	msg := ruleMsg(r)
	err := k.nl.request(unix.RTM_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, msg)
	if r.suppress && errors.Is(err, unix.EEXIST) {
		// Another tunnel installed the identical, shareable rule; it is theirs to remove.
		k.log.Debug("tun: rule already present, sharing it", "rule", what)
		return nil
	}
	if err != nil {
		return fmt.Errorf("tun: add %s: %w", what, err)
	}
	k.record(what, func() error { return k.nl.request(unix.RTM_DELRULE, 0, msg) })
	return nil
}

// pickTable returns want, or if it is 0 a random table number from BaseTable upwards that no
// existing rule uses as table or fwmark (so leftovers of a crashed run are not reused).
func (k *Kernel) pickTable(want uint32) (uint32, error) {
	if want != 0 {
		return want, nil
	}
	used := map[uint32]bool{}
	err := k.nl.dump(unix.RTM_GETRULE, make([]byte, 12), func(typ uint16, body []byte) {
		if ri, ok := parseRule(body); ok && typ == unix.RTM_NEWRULE {
			used[ri.table], used[ri.fwmark] = true, true
		}
	})
	if err != nil {
		return 0, fmt.Errorf("tun: list routing rules: %w", err)
	}
	const span = 1 << 12
	for range 64 {
		if t := BaseTable + rand.Uint32N(span); !used[t] {
			return t, nil
		}
	}
	return 0, fmt.Errorf("tun: no free routing table in [%d, %d); set Config.Table", BaseTable, BaseTable+span)
}

func (k *Kernel) record(what string, fn func() error) {
	k.mu.Lock()
	k.undo = append(k.undo, undoStep{what: what, fn: fn})
	k.mu.Unlock()
}

// Device returns the TUN device. It belongs to k: close k, not the device.
func (k *Kernel) Device() Device { return k.dev }

// Name returns the kernel interface name (e.g. "qcd0").
func (k *Kernel) Name() string { return k.name }

// Table returns the policy routing table holding the includes (0 if none were routed).
func (k *Kernel) Table() uint32 { return k.table }

// FwMark returns the mark that exempts a socket from the tunnel: set it with SetMark on the
// UDP socket that carries IKE and ESP to the gateway. It is 0 if nothing was routed.
func (k *Kernel) FwMark() uint32 { return k.fwmark }

// Close removes the rules, routes and addresses Create added and the interface itself, in
// reverse order, carrying on past failures; it returns all failures joined. Objects that
// have already vanished are not failures. Close is safe to call more than once.
func (k *Kernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	var errs []error
	for i := len(k.undo) - 1; i >= 0; i-- {
		s := k.undo[i]
		if err := s.fn(); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("tun: remove %s: %w", s.what, err))
		} else {
			k.log.Debug("tun: removed", "what", s.what)
		}
	}
	k.undo = nil
	if err := k.nl.close(); err != nil {
		errs = append(errs, fmt.Errorf("tun: close netlink socket: %w", err))
	}
	return errors.Join(errs...)
}
