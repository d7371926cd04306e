package e2e

import (
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/qcdvpn/qcdvpn/gateway"
	"github.com/qcdvpn/qcdvpn/internal/dnstest"
	"github.com/qcdvpn/qcdvpn/sdk"
)

const zoneAddr = "10.200.0.53"

func withZone(cfg *gateway.Config) *gateway.Config {
	cfg.DNS = []string{zoneAddr}
	cfg.DNSDomains = []string{"corp.test"}
	cfg.DNSZone = &gateway.DNSZoneConfig{Listen: zoneAddr, Records: []string{
		"www.corp.test. 60 IN A 10.200.0.5",
		"www.corp.test. 60 IN AAAA fd00:200::5",
	}}
	return cfg
}

// askThroughTunnel sends one query to server over the client's netstack.
func askThroughTunnel(t *testing.T, c *sdk.Client, server netip.AddrPort, name string, qt uint16) *dns.Msg {
	t.Helper()
	n := c.Net()
	if n == nil {
		t.Fatal("client has no netstack")
	}
	conn, err := n.DialUDPAddrPort(netip.AddrPort{}, server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qt)
	dc := &dns.Conn{Conn: conn}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := dc.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	m, err := dc.ReadMsg()
	if err != nil {
		t.Fatalf("query %s through the tunnel: %v", name, err)
	}
	return m
}

// TestGatewaySplitDNSNetstack: the gateway hands out its DNS server and
// split domain (RFC 8598), the connected event carries both for the app,
// and the gateway's zone answers through the tunnel on its netstack.
func TestGatewaySplitDNSNetstack(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, withZone(gatewayConfig(loopbackAddr(t), filepath.Join(dir, "gw"), gwOpts{})))
	c := startClient(t, profileJSON([]netip.AddrPort{g.addr}, nil), filepath.Join(dir, "client"))
	ev, _ := c.connected(0, 5*time.Second)
	if !slices.Equal(ev.DNS, []string{zoneAddr}) || !slices.Equal(ev.Domains, []string{"corp.test"}) {
		t.Fatalf("connected event: dns %v dns_domains %v", ev.DNS, ev.Domains)
	}
	srv := netip.AddrPortFrom(netip.MustParseAddr(zoneAddr), 53)
	m := askThroughTunnel(t, c.c, srv, "WWW.corp.test", dns.TypeA)
	if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "10.200.0.5" || !m.Authoritative {
		t.Fatalf("www.corp.test A: %v", m)
	}
	if m := askThroughTunnel(t, c.c, srv, "nope.corp.test", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Fatalf("nope.corp.test: %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
	if m := askThroughTunnel(t, c.c, srv, "example.org", dns.TypeA); m.Rcode != dns.RcodeRefused {
		t.Fatalf("example.org: %s, want REFUSED", dns.RcodeToString[m.Rcode])
	}
}

// TestFailoverToNextAddressWithoutLookup: a gateway name with two A
// records; the first address dies and the client moves to the second
// without asking the resolver again (the cache holds every address).
func TestFailoverToNextAddressWithoutLookup(t *testing.T) {
	dir := t.TempDir()
	shared := gwOpts{ticketKey: randomHex(32), secretFile: filepath.Join(dir, "qcd.secret")}
	g1 := startGateway(t, gatewayConfig(loopbackAddr(t), filepath.Join(dir, "gw1"), shared))
	g2 := startGateway(t, gatewayConfig(loopbackAddr(t), filepath.Join(dir, "gw2"), shared))
	res, err := dnstest.New("gw.test. 300 IN A "+g1.addr.Addr().String(), "gw.test. 300 IN A "+g2.addr.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	res.Start(pc, nil)
	defer res.Close()

	prof := profileJSON(nil, func(m map[string]any) {
		m["gateways"] = []string{"gw.test:4500"}
		m["timers"] = map[string]any{"retransmit_timeout": "300ms", "retransmit_tries": 3, "fast_liveness": "1s"}
	})
	cl := &cli{t: t, ev: newRecorder[sdk.Event](), wait: make(chan error, 1)}
	sc, err := sdk.NewClient(parseProfile(t, prof), sdk.Options{
		Logger: testLogger(), OnEvent: cl.ev.add, LocalAddr: "127.0.0.1:0",
		DataPlane: sdk.DataPlaneNetstack, StateDir: filepath.Join(dir, "client"),
		DNS: sdk.DNSOptions{NetworkServers: []netip.AddrPort{netip.MustParseAddrPort(pc.LocalAddr().String())}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl.c = sc
	t.Cleanup(cl.close)
	cl.connect()
	ev, i := cl.connected(0, 5*time.Second)
	if ev.Gateway != g1.addr.Addr().String() {
		t.Fatalf("connected to %s, want the first A record %s", ev.Gateway, g1.addr.Addr())
	}
	asked := res.Count("gw.test")
	if asked != 2 {
		t.Fatalf("%d queries for gw.test, want 2 (A and AAAA)", asked)
	}
	e := startEcho(t, sc, 20)
	g1.crash()
	ev, _ = cl.connected(i+1, 20*time.Second)
	if ev.Gateway != g2.addr.Addr().String() {
		t.Fatalf("failed over to %s, want the second A record %s", ev.Gateway, g2.addr.Addr())
	}
	e.waitAnsweredAfter(time.Now(), 10*time.Second)
	if n := res.Count("gw.test"); n != asked {
		t.Fatalf("the failover asked the resolver again: %d queries, had %d", n, asked)
	}
}
