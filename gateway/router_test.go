package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/qcdvpn/qcdvpn/dataplane"
	"github.com/qcdvpn/qcdvpn/esp"
	"github.com/qcdvpn/qcdvpn/ike"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
	"github.com/qcdvpn/qcdvpn/internal/ippkt"
)

// fakeNet carries ESP between routers like UDP would: each attached
// address has a queue and one goroutine delivering to its router's
// HandleESP (the transport's read goroutine).
type fakeNet struct {
	mu   sync.Mutex
	eps  map[netip.AddrPort]chan []ike.ESPPacket
	stop chan struct{}
	wg   sync.WaitGroup
}

func newFakeNet(t *testing.T) *fakeNet {
	n := &fakeNet{eps: make(map[netip.AddrPort]chan []ike.ESPPacket), stop: make(chan struct{})}
	t.Cleanup(n.close)
	return n
}

func (n *fakeNet) close() {
	n.mu.Lock()
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	n.mu.Unlock()
	n.wg.Wait()
}

// attach delivers what is sent to addr to h.
func (n *fakeNet) attach(addr netip.AddrPort, h func([]ike.ESPPacket)) {
	q := make(chan []ike.ESPPacket, 1024)
	n.mu.Lock()
	n.eps[addr] = q
	n.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			select {
			case <-n.stop:
				return
			case b := <-q:
				h(b)
			}
		}
	}()
}

// inject delivers pkts to the host at to as if sent from from.
func (n *fakeNet) inject(to, from netip.AddrPort, pkts ...[]byte) {
	(&netSender{n: n, from: from}).SendESPBatch(pkts, net.UDPAddrFromAddrPort(to), nil)
}

// sender returns the Sender of the host at from.
func (n *fakeNet) sender(from netip.AddrPort) Sender { return &netSender{n: n, from: from} }

type netSender struct {
	n    *fakeNet
	from netip.AddrPort
	mu   sync.Mutex
	sent int
	last []byte // a copy of the last packet sent
}

func (s *netSender) SendESPBatch(pkts [][]byte, to *net.UDPAddr, _ []ipv4.Message) error {
	ap := to.AddrPort()
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	s.mu.Lock()
	s.sent += len(pkts)
	s.last = bytes.Clone(pkts[len(pkts)-1])
	s.mu.Unlock()
	s.n.mu.Lock()
	q := s.n.eps[ap]
	s.n.mu.Unlock()
	if q == nil {
		return nil // nobody there: lost
	}
	batch := make([]ike.ESPPacket, len(pkts))
	for i, p := range pkts {
		batch[i] = ike.ESPPacket{Data: bytes.Clone(p), From: s.from}
	}
	select {
	case q <- batch:
	default: // full: lost, as UDP would
	}
	return nil
}

// selectors turns a prefix into the traffic selector covering it.
func selectors(t testing.TB, prefixes ...string) []wire.Selector {
	t.Helper()
	var out []wire.Selector
	for _, s := range prefixes {
		p := netip.MustParsePrefix(s).Masked()
		start := p.Addr()
		b := start.AsSlice()
		for i := range b {
			hostBits := max(0, min(8, (i+1)*8-p.Bits()))
			b[i] |= byte(1<<hostBits - 1)
		}
		end, _ := netip.AddrFromSlice(b)
		typ := uint8(wire.TSIPv4AddrRange)
		if start.Is6() {
			typ = wire.TSIPv6AddrRange
		}
		out = append(out, wire.Selector{Type: typ, EndPort: 65535, Start: start, End: end})
	}
	return out
}

func randKey(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

var gcm256 = ike.Suite{Encr: ikecrypto.EncrAESGCM16, KeyBits: 256}

// saPair returns the gateway's Child SA for a client owning clientTS and
// the client's mirror image. The router reads TSi as the far side it sends
// to, so the client's copy has the selectors swapped.
func saPair(t testing.TB, spiGW, spiClient uint32, clientTS, gwTS []string) (gw, client *ike.ChildSA) {
	t.Helper()
	encLen, err := ikecrypto.EncrKeyLen(gcm256.Encr, gcm256.KeyBits)
	if err != nil {
		t.Fatal(err)
	}
	i2r, r2i := randKey(t, encLen), randKey(t, encLen)
	gw = &ike.ChildSA{Suite: gcm256, SPIIn: spiGW, SPIOut: spiClient, EncrIn: i2r, EncrOut: r2i,
		TSi: selectors(t, clientTS...), TSr: selectors(t, gwTS...), Encap: true}
	client = &ike.ChildSA{Suite: gcm256, SPIIn: spiClient, SPIOut: spiGW, EncrIn: r2i, EncrOut: i2r,
		TSi: gw.TSr, TSr: gw.TSi, Encap: true}
	return gw, client
}

// ipPacket builds an IPv4 or IPv6 UDP packet whose payload is seq.
func ipPacket(src, dst string, seq uint32) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	var pay [12]byte
	binary.BigEndian.PutUint16(pay[0:], 1000)
	binary.BigEndian.PutUint16(pay[2:], 2000)
	binary.BigEndian.PutUint16(pay[4:], 12)
	binary.BigEndian.PutUint32(pay[8:], seq)
	if s.Is4() {
		h := make([]byte, 20, 32)
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:], 32)
		h[8], h[9] = 64, 17
		copy(h[12:16], s.AsSlice())
		copy(h[16:20], d.AsSlice())
		return append(h, pay[:]...)
	}
	h := make([]byte, 40, 52)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], 12)
	h[6], h[7] = 17, 64
	copy(h[8:24], s.AsSlice())
	copy(h[24:40], d.AsSlice())
	return append(h, pay[:]...)
}

// node is a router on a channel TUN attached to the fake network.
type node struct {
	r    *Router
	tt   *tuntest.ChannelTUN
	addr netip.AddrPort
	snd  *netSender
	done chan error
}

func newNode(t *testing.T, n *fakeNet, addr string) *node {
	t.Helper()
	nd := &node{tt: tuntest.NewChannelTUN(), addr: netip.MustParseAddrPort(addr), done: make(chan error, 1)}
	nd.snd = n.sender(nd.addr).(*netSender)
	nd.r = NewRouter(nd.tt.TUN(), nd.snd, nil)
	n.attach(nd.addr, nd.r.HandleESP)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { nd.done <- nd.r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		nd.tt.TUN().Close() // unblocks writes into Inbound and the read
		nd.r.Close()
		select {
		case <-nd.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return")
		}
	})
	return nd
}

// send writes pkt into the node's TUN, as a host behind it would. Safe
// from any goroutine: it reports a stall with Error.
func (nd *node) send(t *testing.T, pkt []byte) bool {
	t.Helper()
	select {
	case nd.tt.Outbound <- pkt:
		return true
	case <-time.After(2 * time.Second):
		t.Error("TUN read stalled")
		return false
	}
}

// recv returns the next packet the router wrote to its TUN, or nil.
func (nd *node) recv(wait time.Duration) []byte {
	select {
	case p := <-nd.tt.Inbound:
		return p
	case <-time.After(wait):
		return nil
	}
}

func mustNoPacket(t *testing.T, nd *node, what string) {
	t.Helper()
	if p := nd.recv(150 * time.Millisecond); p != nil {
		t.Fatalf("%s: got a packet %x, want none", what, p)
	}
}

func mustPacket(t *testing.T, nd *node, want []byte, what string) {
	t.Helper()
	p := nd.recv(2 * time.Second)
	if p == nil {
		t.Fatalf("%s: no packet", what)
	}
	if !bytes.Equal(p, want) {
		t.Fatalf("%s: got %x, want %x", what, p, want)
	}
}

var gwTS = []string{"10.200.0.0/24", "fd00:200::/64"}

// setup is a gateway with two clients, one SA pair each.
type setup struct {
	net        *fakeNet
	gw, c1, c2 *node
	// g1, g2 are the gateway's SAs; cl1, cl2 the clients'.
	g1, g2, cl1, cl2 *ike.ChildSA
}

func twoClients(t *testing.T) *setup {
	s := &setup{net: newFakeNet(t)}
	s.gw = newNode(t, s.net, "192.0.2.1:4500")
	s.c1 = newNode(t, s.net, "198.51.100.1:4500")
	s.c2 = newNode(t, s.net, "198.51.100.2:4501")
	s.g1, s.cl1 = saPair(t, 0x1001, 0xc001, []string{"10.100.0.1/32", "fd00:100::1/128"}, gwTS)
	s.g2, s.cl2 = saPair(t, 0x1002, 0xc002, []string{"10.100.0.2/32"}, gwTS)
	for _, err := range []error{
		s.gw.r.Install("client1", s.g1, s.c1.addr, esp.Limits{}),
		s.gw.r.Install("client2", s.g2, s.c2.addr, esp.Limits{}),
		s.c1.r.Install("gw", s.cl1, s.gw.addr, esp.Limits{}),
		s.c2.r.Install("gw", s.cl2, s.gw.addr, esp.Limits{}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// sealer seals packets by hand with a client's outbound keys, far ahead
// in sequence numbers of what the client's router uses.
type sealer struct{ out *esp.Outbound }

func newSealer(t *testing.T, c *ike.ChildSA) *sealer {
	t.Helper()
	out, err := esp.NewOutbound(c.SPIOut, esp.Suite{Encr: c.Suite.Encr, KeyBits: c.Suite.KeyBits}, c.EncrOut, nil, esp.Limits{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out.SetSeq(1 << 20)
	return &sealer{out: out}
}

func (s *sealer) seal(t *testing.T, inner []byte) []byte {
	t.Helper()
	buf := make([]byte, dataplane.ReadOffset+len(inner)+dataplane.Tailroom)
	copy(buf[dataplane.ReadOffset:], inner)
	nh := esp.NextHeaderIPv4
	if inner[0]>>4 == 6 {
		nh = esp.NextHeaderIPv6
	}
	p, err := s.out.Seal(buf, dataplane.ReadOffset, len(inner), nh)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(p)
}

func TestRouterTwoClientsBothWays(t *testing.T) {
	s := twoClients(t)
	gw, c1, c2 := s.gw, s.c1, s.c2

	const n = 40
	// Upstream from both clients at once; the gateway TUN sees all of them.
	var wg sync.WaitGroup
	for i, c := range []*node{c1, c2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := []string{"10.100.0.1", "10.100.0.2"}[i]
			for s := range uint32(n) {
				if !c.send(t, ipPacket(src, "10.200.0.7", uint32(i)<<16|s)) {
					return
				}
			}
		}()
	}
	got := map[string]int{}
	for range 2 * n {
		p := gw.recv(2 * time.Second)
		if p == nil {
			t.Fatalf("gateway got %v, want %d from each client", got, n)
		}
		_, src, _, _ := ippkt.Header(p)
		got[src.String()]++
	}
	wg.Wait()
	if got["10.100.0.1"] != n || got["10.100.0.2"] != n {
		t.Fatalf("gateway got %v, want %d from each client", got, n)
	}

	// Downstream: the destination picks the client, also for IPv6.
	down := []struct {
		dst     string
		to, not *node
		what    string
	}{
		{"10.100.0.1", c1, c2, "v4 to client 1"},
		{"10.100.0.2", c2, c1, "v4 to client 2"},
		{"fd00:100::1", c1, c2, "v6 to client 1"},
	}
	for i, d := range down {
		src := "10.200.0.7"
		if netip.MustParseAddr(d.dst).Is6() {
			src = "fd00:200::7"
		}
		pkt := ipPacket(src, d.dst, uint32(i))
		gw.send(t, pkt)
		mustPacket(t, d.to, pkt, d.what)
		mustNoPacket(t, d.not, d.what+" (other client)")
	}
	// Concurrent downstream to both.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for s := range uint32(n) {
			if !gw.send(t, ipPacket("10.200.0.7", "10.100.0.1", s)) || !gw.send(t, ipPacket("10.200.0.7", "10.100.0.2", s)) {
				return
			}
		}
	}()
	var recv sync.WaitGroup
	for _, c := range []*node{c1, c2} {
		recv.Add(1)
		go func() {
			defer recv.Done()
			for s := range uint32(n) {
				p := c.recv(2 * time.Second)
				if p == nil {
					t.Errorf("client got %d of %d packets", s, n)
					return
				}
				if _, _, dst, _ := ippkt.Header(p); (c == c1) != (dst.String() == "10.100.0.1") {
					t.Errorf("packet for %s reached the wrong client", dst)
				}
			}
		}()
	}
	recv.Wait()
	<-sent
	if t.Failed() {
		return
	}

	// No route, or a source outside the client's TSr: dropped and counted.
	gw.send(t, ipPacket("10.200.0.7", "10.100.0.99", 1))
	gw.send(t, ipPacket("10.201.0.7", "10.100.0.1", 1))
	mustNoPacket(t, c1, "no route")
	mustNoPacket(t, c2, "no route")
	st := gw.r.Stats()
	if st.PacketsIn != 2*n || st.PacketsOut != 2*n+3 || st.DropOutNoRoute != 1 || st.DropOutSelector != 1 {
		t.Errorf("stats %+v", st)
	}
	if in, out := gw.r.OwnerTraffic("client1"); in != n || out != n+2 {
		t.Errorf("client1 traffic in %d out %d, want %d, %d", in, out, n, n+2)
	}
	if in, out := gw.r.OwnerTraffic("nobody"); in != 0 || out != 0 {
		t.Errorf("unknown owner traffic %d, %d", in, out)
	}
	if in, out := gw.r.OwnerTraffic([]int{1}); in != 0 || out != 0 {
		t.Errorf("non-comparable owner traffic %d, %d", in, out)
	}
}

func TestRouterSelectorsReplayAndUnknownSPI(t *testing.T) {
	s := twoClients(t)
	gw, c1 := s.gw, s.c1
	type hit struct {
		spi  uint32
		from netip.AddrPort
	}
	hits := make(chan hit, 4)
	gw.r.SetUnknownSPI(func(spi uint32, from netip.AddrPort) { hits <- hit{spi, from} })
	sl := newSealer(t, s.cl1)
	deliver := func(pkt []byte) { s.net.inject(gw.addr, c1.addr, pkt) }

	// Inner source outside the client's TSi: client 1 spoofing client 2.
	deliver(sl.seal(t, ipPacket("10.100.0.2", "10.200.0.7", 1)))
	mustNoPacket(t, gw, "spoofed source")
	// Inner destination outside the gateway's TSr.
	deliver(sl.seal(t, ipPacket("10.100.0.1", "10.201.0.1", 2)))
	mustNoPacket(t, gw, "destination outside TSr")
	if st := gw.r.Stats(); st.DropSelector != 2 {
		t.Errorf("DropSelector = %d, want 2", st.DropSelector)
	}
	// A good one passes, its replay does not.
	good := sl.seal(t, ipPacket("10.100.0.1", "10.200.0.7", 3))
	deliver(bytes.Clone(good))
	mustPacket(t, gw, ipPacket("10.100.0.1", "10.200.0.7", 3), "good packet")
	deliver(good)
	mustNoPacket(t, gw, "replay")
	bad := sl.seal(t, ipPacket("10.100.0.1", "10.200.0.7", 4))
	bad[len(bad)-1] ^= 1
	deliver(bad)
	mustNoPacket(t, gw, "tampered")
	// Client 2's SA cannot carry client 1's traffic either.
	deliver(newSealer(t, s.cl2).seal(t, ipPacket("10.100.0.1", "10.200.0.7", 5)))
	mustNoPacket(t, gw, "client 1 source on client 2's SA")
	if st := gw.r.Stats(); st.DropReplay != 1 || st.DropAuth != 1 || st.DropSelector != 3 {
		t.Errorf("stats %+v, want 1 replay, 1 auth and 3 selector drops", st)
	}

	// Unknown SPI: the callback hears of it with the source.
	pkt := make([]byte, 64)
	binary.BigEndian.PutUint32(pkt, 0xdeadbeef)
	from := netip.MustParseAddrPort("203.0.113.5:4500")
	s.net.inject(gw.addr, from, pkt)
	select {
	case h := <-hits:
		if h.spi != 0xdeadbeef || h.from != from {
			t.Errorf("unknown SPI callback got %08x from %s", h.spi, h.from)
		}
	case <-time.After(time.Second):
		t.Fatal("no unknown-SPI callback")
	}
	// Too short to be ESP, or SPI 0: malformed, not an unknown SPI.
	s.net.inject(gw.addr, from, []byte{0xff}, make([]byte, 32))
	mustNoPacket(t, gw, "non-ESP")
	select {
	case h := <-hits:
		t.Errorf("callback for a non-ESP packet: %+v", h)
	default:
	}
	if st := gw.r.Stats(); st.DropNoSA != 1 || st.DropMalformed != 2 {
		t.Errorf("stats %+v, want DropNoSA 1 and DropMalformed 2", st)
	}
	gw.r.SetUnknownSPI(nil)
	s.net.inject(gw.addr, from, pkt)
	mustNoPacket(t, gw, "unknown SPI")
	select {
	case h := <-hits:
		t.Errorf("callback after removal: %+v", h)
	default:
	}
}

func TestRouterInstallErrors(t *testing.T) {
	r := NewRouter(tuntest.NewChannelTUN().TUN(), &netSender{n: newFakeNet(t)}, nil)
	defer r.Close()
	peer := netip.MustParseAddrPort("198.51.100.1:4500")
	sa := func(spi uint32, f func(*ike.ChildSA)) *ike.ChildSA {
		g, _ := saPair(t, spi, spi+0x100, []string{"10.100.0.1/32"}, gwTS)
		if f != nil {
			f(g)
		}
		return g
	}
	taken := sa(0x1001, nil)
	if err := r.Install("a", taken, peer, esp.Limits{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    func() error
	}{
		{"nil owner", func() error { return r.Install(nil, sa(0x2001, nil), peer, esp.Limits{}) }},
		{"slice owner", func() error { return r.Install([]int{1}, sa(0x2002, nil), peer, esp.Limits{}) }},
		{"nil SA", func() error { return r.Install("a", nil, peer, esp.Limits{}) }},
		{"SPI 0", func() error {
			return r.Install("a", sa(0x2003, func(c *ike.ChildSA) { c.SPIIn = 0 }), peer, esp.Limits{})
		}},
		{"no peer", func() error { return r.Install("a", sa(0x2004, nil), netip.AddrPort{}, esp.Limits{}) }},
		{"short key", func() error {
			return r.Install("a", sa(0x2005, func(c *ike.ChildSA) { c.EncrIn = c.EncrIn[:5] }), peer, esp.Limits{})
		}},
		{"short out key", func() error {
			return r.SendOn("a", sa(0x2006, func(c *ike.ChildSA) { c.EncrOut = c.EncrOut[:5] }), peer, esp.Limits{})
		}},
		{"unknown suite", func() error {
			return r.Install("a", sa(0x2007, func(c *ike.ChildSA) { c.Suite.Encr = 99 }), peer, esp.Limits{})
		}},
		{"SPI of another owner", func() error { return r.Install("b", taken, peer, esp.Limits{}) }},
	} {
		if err := c.f(); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	r.Close()
	if err := r.Install("a", sa(0x2008, nil), peer, esp.Limits{}); err == nil {
		t.Error("Install after Close: no error")
	}
	// None of this panics.
	r.Retire(12345)
	r.RemoveOwner(nil)
	r.RemoveOwner([]int{1})
	r.SetPeer([]int{1}, peer)
	r.HandleESP([]ike.ESPPacket{{Data: []byte{1, 2, 3}}})
}

func TestRouterPrepareSendOnRetire(t *testing.T) {
	s := twoClients(t)
	gw, c1 := s.gw, s.c1
	down := func(seq uint32) []byte { return ipPacket("10.200.0.7", "10.100.0.1", seq) }

	// The client starts a rekey: the gateway, as responder, prepares the
	// new SA and keeps sending on the old one.
	gNew, clNew := saPair(t, 0x2001, 0xd001, []string{"10.100.0.1/32", "fd00:100::1/128"}, gwTS)
	if err := gw.r.Prepare("client1", gNew, c1.addr, esp.Limits{}); err != nil {
		t.Fatal(err)
	}
	if err := c1.r.Install("gw", clNew, gw.addr, esp.Limits{}); err != nil {
		t.Fatal(err)
	}
	gw.send(t, down(1))
	mustPacket(t, c1, down(1), "before SendOn")
	if spi := lastSPI(t, s.gw); spi != s.g1.SPIOut {
		t.Fatalf("before SendOn the gateway sent on SPI %08x, want the old %08x", spi, s.g1.SPIOut)
	}
	// Both inbound SAs are accepted: the client sends on the new one now,
	// and a straggler on the old one still passes.
	c1.send(t, ipPacket("10.100.0.1", "10.200.0.7", 10))
	mustPacket(t, gw, ipPacket("10.100.0.1", "10.200.0.7", 10), "upstream on the new SA")
	s.net.inject(gw.addr, c1.addr, newSealer(t, s.cl1).seal(t, ipPacket("10.100.0.1", "10.200.0.7", 11)))
	mustPacket(t, gw, ipPacket("10.100.0.1", "10.200.0.7", 11), "upstream straggler on the old SA")

	if err := gw.r.SendOn("client1", gNew, c1.addr, esp.Limits{}); err != nil {
		t.Fatal(err)
	}
	gw.send(t, down(2))
	mustPacket(t, c1, down(2), "after SendOn")
	if spi := lastSPI(t, s.gw); spi != gNew.SPIOut {
		t.Fatalf("after SendOn the gateway sent on SPI %08x, want the new %08x", spi, gNew.SPIOut)
	}

	// The old SA is deleted: its inbound SPI is unknown from now on.
	gw.r.Retire(s.g1.SPIIn)
	sl := newSealer(t, s.cl1)
	sl.out.SetSeq(2 << 20)
	s.net.inject(gw.addr, c1.addr, sl.seal(t, ipPacket("10.100.0.1", "10.200.0.7", 12)))
	mustNoPacket(t, gw, "on the retired SA")
	gw.send(t, down(3))
	mustPacket(t, c1, down(3), "on the new SA after Retire")

	// AddInbound: accepted, but sending stays on the new SA.
	gAdd, _ := saPair(t, 0x3001, 0xe001, []string{"10.100.0.1/32"}, gwTS)
	if err := gw.r.AddInbound("client1", gAdd, c1.addr, esp.Limits{}); err != nil {
		t.Fatal(err)
	}
	gw.send(t, down(4))
	mustPacket(t, c1, down(4), "after AddInbound")
	if spi := lastSPI(t, s.gw); spi != gNew.SPIOut {
		t.Fatalf("after AddInbound the gateway sent on SPI %08x, want %08x", spi, gNew.SPIOut)
	}

	// Retiring the sending SA stops traffic to that client (nothing else
	// sends to it), and client 2 is untouched.
	gw.r.Retire(gNew.SPIIn)
	gw.send(t, down(5))
	mustNoPacket(t, c1, "after retiring the sending SA")
	gw.send(t, ipPacket("10.200.0.7", "10.100.0.2", 6))
	mustPacket(t, s.c2, ipPacket("10.200.0.7", "10.100.0.2", 6), "client 2 after client 1's retire")
}

// lastSPI returns the SPI of the last ESP packet nd's router sent, read
// from what the fake network's sender recorded.
func lastSPI(t *testing.T, nd *node) uint32 {
	t.Helper()
	nd.snd.mu.Lock()
	defer nd.snd.mu.Unlock()
	if nd.snd.last == nil {
		t.Fatal("nothing sent")
	}
	return binary.BigEndian.Uint32(nd.snd.last)
}

func TestRouterRemoveOwnerSetPeer(t *testing.T) {
	s := twoClients(t)
	gw := s.gw
	// SetPeer moves client 1's traffic to a new address (MOBIKE).
	moved := newNode(t, s.net, "198.51.100.9:4500")
	if err := moved.r.Install("gw", s.cl1, gw.addr, esp.Limits{}); err != nil {
		t.Fatal(err)
	}
	gw.r.SetPeer("client1", moved.addr)
	pkt := ipPacket("10.200.0.7", "10.100.0.1", 1)
	gw.send(t, pkt)
	mustPacket(t, moved, pkt, "after SetPeer")
	mustNoPacket(t, s.c1, "old address after SetPeer")

	gw.r.RemoveOwner("client1")
	gw.send(t, pkt)
	mustNoPacket(t, moved, "after RemoveOwner")
	s.c1.send(t, ipPacket("10.100.0.1", "10.200.0.7", 2))
	mustNoPacket(t, gw, "upstream after RemoveOwner")
	if in, out := gw.r.OwnerTraffic("client1"); in != 0 || out != 0 {
		t.Errorf("removed owner traffic %d, %d", in, out)
	}
	// Client 2 still works both ways.
	s.c2.send(t, ipPacket("10.100.0.2", "10.200.0.7", 3))
	mustPacket(t, gw, ipPacket("10.100.0.2", "10.200.0.7", 3), "client 2 upstream")
	gw.send(t, ipPacket("10.200.0.7", "10.100.0.2", 4))
	mustPacket(t, s.c2, ipPacket("10.200.0.7", "10.100.0.2", 4), "client 2 downstream")
	if st := gw.r.Stats(); st.DropNoSA != 1 || st.DropOutNoRoute != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestRouterCloseNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("inner", func(t *testing.T) {
		s := twoClients(t)
		s.c1.send(t, ipPacket("10.100.0.1", "10.200.0.7", 1))
		mustPacket(t, s.gw, ipPacket("10.100.0.1", "10.200.0.7", 1), "before Close")
		s.gw.r.Close()
		s.gw.r.Close() // twice is fine
		s.c1.send(t, ipPacket("10.100.0.1", "10.200.0.7", 2))
		mustNoPacket(t, s.gw, "after Close")
		// Run keeps draining the device after Close, so writers never block.
		s.gw.send(t, ipPacket("10.200.0.7", "10.100.0.1", 3))
		mustNoPacket(t, s.c1, "downstream after Close")
	})
	waitGoroutines(t, before)
}

// waitGoroutines fails unless the goroutine count drops to at most n soon.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := runtime.NumGoroutine()
		if got <= n {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want at most %d:\n%s", got, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
