package ike

import (
	"net/netip"
	"slices"

	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// addrPool hands out virtual addresses. Leases are reclaimed lazily: an
// address is free again once its session has ended. Guarded by
// Responder.mu.
type addrPool struct {
	first, last netip.Addr
	leases      map[netip.Addr]*lease
}

// lease is one address given to a peer; s is nil while its IKE_AUTH is
// being answered.
type lease struct {
	peer string
	s    *Session
}

func newAddrPool(p netip.Prefix) *addrPool {
	p = p.Masked()
	first, last := p.Addr(), lastAddr(p)
	if p.Addr().BitLen()-p.Bits() >= 2 {
		// Not the subnet (router anycast) address, nor IPv4 broadcast.
		first = first.Next()
		if first.Is4() {
			last = last.Prev()
		}
	}
	return &addrPool{first: first, last: last, leases: make(map[netip.Addr]*lease)}
}

func (p *addrPool) contains(a netip.Addr) bool {
	return a.IsValid() && a.BitLen() == p.first.BitLen() && p.first.Compare(a) <= 0 && a.Compare(p.last) <= 0
}

func (p *addrPool) free(a netip.Addr) bool {
	l := p.leases[a]
	return l == nil || (l.s != nil && isDone(l.s))
}

// take leases an address to peer: the one it asks for if free, else the
// one it had before, else the lowest free one.
func (p *addrPool) take(peer string, want netip.Addr) (netip.Addr, *lease, bool) {
	grant := func(a netip.Addr) (netip.Addr, *lease, bool) {
		l := &lease{peer: peer}
		p.leases[a] = l
		return a, l, true
	}
	if p.contains(want) && p.free(want) {
		return grant(want)
	}
	for a, l := range p.leases {
		if l.peer == peer && l.s != nil && isDone(l.s) {
			return grant(a)
		}
	}
	for a := p.first; a.IsValid(); a = a.Next() {
		if p.free(a) {
			return grant(a)
		}
		if a == p.last {
			break
		}
	}
	return netip.Addr{}, nil, false
}

// leaseRef is a lease made for one IKE_AUTH.
type leaseRef struct {
	pool *addrPool
	addr netip.Addr
	l    *lease
}

// assignAddresses answers a CP request from the pools. It fails only
// when addresses were asked for and none could be given.
func (r *Responder) assignAddresses(req *wire.CP, peer string) ([]leaseRef, *wire.CP, bool) {
	var want4, want6, dns4, dns6, domains bool
	var pref4, pref6 netip.Addr
	for _, a := range req.Attributes {
		switch a.Type {
		case wire.CPInternalIP4Address:
			want4 = true
			if len(a.Value) == 4 {
				pref4, _ = netip.AddrFromSlice(a.Value)
			}
		case wire.CPInternalIP6Address:
			want6 = true
			if len(a.Value) == 17 {
				pref6, _ = netip.AddrFromSlice(a.Value[:16])
			}
		case wire.CPInternalIP4DNS:
			dns4 = true
		case wire.CPInternalIP6DNS:
			dns6 = true
		case wire.CPInternalDNSDomain:
			domains = true
		}
	}
	var refs []leaseRef
	reply := &wire.CP{CfgType: wire.CfgReply}
	r.mu.Lock()
	if want4 && r.pool4 != nil {
		if a, l, ok := r.pool4.take(peer, pref4); ok {
			refs = append(refs, leaseRef{r.pool4, a, l})
			reply.Attributes = append(reply.Attributes, wire.CPAttribute{Type: wire.CPInternalIP4Address, Value: a.AsSlice()})
		}
	}
	if want6 && r.pool6 != nil {
		if a, l, ok := r.pool6.take(peer, pref6); ok {
			refs = append(refs, leaseRef{r.pool6, a, l})
			reply.Attributes = append(reply.Attributes, wire.CPAttribute{Type: wire.CPInternalIP6Address, Value: append(a.AsSlice(), 128)})
		}
	}
	r.mu.Unlock()
	if (want4 || want6) && len(refs) == 0 {
		return nil, nil, false
	}
	for _, d := range r.cfg.DNS {
		switch {
		case d.Is4() && dns4:
			reply.Attributes = append(reply.Attributes, wire.CPAttribute{Type: wire.CPInternalIP4DNS, Value: d.AsSlice()})
		case d.Is6() && dns6:
			reply.Attributes = append(reply.Attributes, wire.CPAttribute{Type: wire.CPInternalIP6DNS, Value: d.AsSlice()})
		}
	}
	reply.Attributes = append(reply.Attributes, r.dnsDomainAttrs(reply, domains)...)
	return refs, reply, true
}

// attachLeases ties leases to their session, or releases them (s nil).
func (r *Responder) attachLeases(refs []leaseRef, s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ref := range refs {
		if s != nil {
			ref.l.s = s
		} else if ref.pool.leases[ref.addr] == ref.l {
			delete(ref.pool.leases, ref.addr)
		}
	}
}

// narrowTS intersects the peer's address-range selectors with ours,
// keeping the peer's protocol and ports (RFC 7296 §2.9).
func narrowTS(peer []wire.Selector, ours []netip.Prefix) []wire.Selector {
	var out []wire.Selector
	for _, s := range peer {
		if s.Type != wire.TSIPv4AddrRange && s.Type != wire.TSIPv6AddrRange {
			continue
		}
		for _, p := range ours {
			p = p.Masked()
			if !p.IsValid() || p.Addr().Is4() != s.Start.Is4() {
				continue
			}
			lo, hi := p.Addr(), lastAddr(p)
			if s.Start.Compare(lo) > 0 {
				lo = s.Start
			}
			if s.End.Compare(hi) < 0 {
				hi = s.End
			}
			if hi.Less(lo) {
				continue
			}
			n := wire.Selector{Type: s.Type, IPProtocol: s.IPProtocol, StartPort: s.StartPort, EndPort: s.EndPort, Start: lo, End: hi}
			if !slices.ContainsFunc(out, func(o wire.Selector) bool { return selectorEqual(o, n) }) {
				out = append(out, n)
			}
		}
	}
	return out
}

func selectorEqual(a, b wire.Selector) bool {
	return a.Type == b.Type && a.IPProtocol == b.IPProtocol && a.StartPort == b.StartPort &&
		a.EndPort == b.EndPort && a.Start == b.Start && a.End == b.End
}

// everything is the default LocalTS.
func everything() []netip.Prefix {
	return []netip.Prefix{netip.PrefixFrom(netip.IPv4Unspecified(), 0), netip.PrefixFrom(netip.IPv6Unspecified(), 0)}
}

func hostPrefixes(as []netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(as))
	for _, a := range as {
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}
