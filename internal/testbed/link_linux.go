package testbed

import (
	"net/netip"
	"testing"
)

// Connect joins a and b with a new veth pair (created directly inside the
// namespaces, never in the host's), adds aAddr and bAddr (an invalid,
// zero-value prefix means "no address") and brings both ends and both lo
// up. The pair disappears with its namespaces; cleanup also deletes it.
func Connect(t testing.TB, a, b *NS, aAddr, bAddr netip.Prefix) *Link {
	t.Helper()
	id := randomHex(3)
	l := &Link{A: a, B: b, AIf: "tb" + id + "a", BIf: "tb" + id + "b", AAddr: aAddr, BAddr: bAddr}
	if err := runIP("-n", a.Name, "link", "add", l.AIf, "type", "veth",
		"peer", "name", l.BIf, "netns", b.Name); err != nil {
		t.Fatalf("testbed: create veth: %v", err)
	}
	t.Cleanup(func() {
		// Best effort: the namespace's own cleanup removes it anyway.
		_ = runIP("-n", a.Name, "link", "del", l.AIf)
	})
	for _, end := range []struct {
		ns   *NS
		dev  string
		addr netip.Prefix
	}{{a, l.AIf, aAddr}, {b, l.BIf, bAddr}} {
		if end.addr.IsValid() {
			if err := addAddr(end.ns, end.dev, end.addr); err != nil {
				t.Fatalf("testbed: %v", err)
			}
		}
		for _, dev := range []string{end.dev, "lo"} {
			if err := runIP("-n", end.ns.Name, "link", "set", dev, "up"); err != nil {
				t.Fatalf("testbed: %v", err)
			}
		}
	}
	return l
}

// NewPair builds a client namespace and a gateway namespace joined by a
// veth link: client 10.X.Y.1/24 and fd00:0:0:XXYY::1/64, gateway 10.X.Y.2/24
// and fd00:0:0:XXYY::2/64, lo up in both. X and Y are random (X avoids 100
// and 200, the first octets of PoolPrefix and ProtectedPrefix).
func NewPair(t testing.TB) *Pair {
	t.Helper()
	x := randomByte(1, 250)
	if x == 100 || x == 200 {
		x++
	}
	y := randomByte(0, 255)
	net4 := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, x, y, 0}), 24)
	c4 := netip.AddrFrom4([4]byte{10, x, y, 1})
	g4 := netip.AddrFrom4([4]byte{10, x, y, 2})
	c6 := netip.AddrFrom16([16]byte{0xfd, 0, 0, 0, 0, 0, x, y, 14: 0, 15: 1})
	g6 := netip.AddrFrom16([16]byte{0xfd, 0, 0, 0, 0, 0, x, y, 14: 0, 15: 2})

	p := &Pair{
		Client:   NewNS(t, "tbc"),
		Gateway:  NewNS(t, "tbg"),
		ClientIP: c4, GatewayIP: g4,
		ClientIP6: c6, GatewayIP6: g6,
		Net: net4,
	}
	p.Link = Connect(t, p.Client, p.Gateway, netip.PrefixFrom(c4, 24), netip.PrefixFrom(g4, 24))
	if err := addAddr(p.Client, p.Link.AIf, netip.PrefixFrom(c6, 64)); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	if err := addAddr(p.Gateway, p.Link.BIf, netip.PrefixFrom(g6, 64)); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return p
}

// AnotherGateway joins a further gateway namespace to p's client on a veth
// link of its own, for failover tests: a primary and a backup gateway
// both reachable from one client. The result shares p.Client; its Net
// differs from p's in the second octet only, so PoolPrefix and
// ProtectedPrefix are the same as p's (both gateways protect the same
// hosts and hand out the same pool).
func (p *Pair) AnotherGateway(t testing.TB) *Pair {
	t.Helper()
	b := p.Net.Addr().As4()
	x := b[1] + 1 // NewPair's X is 1..250, never 100 or 200
	if x > 250 {
		x = 1
	}
	if x == 100 || x == 200 {
		x++
	}
	y := b[2]
	net4 := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, x, y, 0}), 24)
	c4 := netip.AddrFrom4([4]byte{10, x, y, 1})
	g4 := netip.AddrFrom4([4]byte{10, x, y, 2})
	c6 := netip.AddrFrom16([16]byte{0xfd, 0, 0, 0, 0, 0, x, y, 14: 0, 15: 1})
	g6 := netip.AddrFrom16([16]byte{0xfd, 0, 0, 0, 0, 0, x, y, 14: 0, 15: 2})
	q := &Pair{
		Client:   p.Client,
		Gateway:  NewNS(t, "tbg"),
		ClientIP: c4, GatewayIP: g4,
		ClientIP6: c6, GatewayIP6: g6,
		Net: net4,
	}
	q.Link = Connect(t, q.Client, q.Gateway, netip.PrefixFrom(c4, 24), netip.PrefixFrom(g4, 24))
	if err := addAddr(q.Client, q.Link.AIf, netip.PrefixFrom(c6, 64)); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	if err := addAddr(q.Gateway, q.Link.BIf, netip.PrefixFrom(g6, 64)); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return q
}
