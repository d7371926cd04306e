package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"
)

// addrStep names an address's undo step.
const addrStep = "address "

// SetAddresses gives the interface new addresses (a reconnect brought other
// virtual IPs) without taking it, its routes or its rules down: traffic
// keeps going into the TUN, where the data plane drops it until the new SAs
// are in, and never out of the underlay (the kill switch). The new
// addresses must be of the families the interface had, whose routing is
// already in place; else it returns an error and changes nothing.
func (k *Kernel) SetAddresses(addrs []netip.Prefix) error {
	cfg, err := plan(Config{Addresses: addrs})
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return errors.New("tun: SetAddresses: interface closed")
	}
	want := map[netip.Prefix]bool{}
	for _, a := range cfg.addrs {
		want[a] = true
	}
	have := map[netip.Prefix]bool{}
	var fams [2]bool // had v4, v6
	for _, s := range k.undo {
		if p, ok := strings.CutPrefix(s.what, addrStep); ok {
			a := netip.MustParsePrefix(p)
			have[a] = true
			fams[b2i(a.Addr().Is6())] = true
		}
	}
	for a := range want {
		if !fams[b2i(a.Addr().Is6())] {
			return fmt.Errorf("tun: SetAddresses: %s is of a family %s had no address of", a, k.name)
		}
	}
	// Add first, then remove: the interface never has no address.
	var steps []undoStep
	for _, a := range cfg.addrs {
		if have[a] {
			continue
		}
		msg := addrMsg(k.index, a)
		if err := k.nl.request(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, msg); err != nil {
			for _, s := range steps {
				_ = s.fn()
			}
			return fmt.Errorf("tun: add address %s to %s: %w", a, k.name, err)
		}
		steps = append(steps, undoStep{what: addrStep + a.String(), fn: func() error { return k.nl.request(unix.RTM_DELADDR, 0, msg) }})
	}
	var errs []error
	kept := k.undo[:0:0]
	for _, s := range k.undo {
		if p, ok := strings.CutPrefix(s.what, addrStep); ok && !want[netip.MustParsePrefix(p)] {
			if err := s.fn(); err != nil && !isGone(err) {
				errs = append(errs, fmt.Errorf("tun: remove %s: %w", s.what, err))
			}
			continue
		}
		kept = append(kept, s)
		if s.what == "TUN device" {
			kept = append(kept, steps...) // addresses go right after the device, as in Create
		}
	}
	k.undo = kept
	k.log.Info("tun: addresses changed", "name", k.name, "addresses", cfg.addrs)
	return errors.Join(errs...)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
