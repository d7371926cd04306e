package e2e

import (
	"encoding/binary"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/gateway"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// IKE exchange types, typed from RFC 7296, 9242 and 9370, not taken from
// the code under test.
const (
	exchIntermediate = 43
	exchFollowupKE   = 44
	ikeHeaderLen     = 28
	ikeVersion2      = 0x20
	ikeFlagResponse  = 0x20
	wantHybrid       = "CURVE_25519 ML_KEM_768"
)

// ikeRelay forwards UDP between one client and a gateway, counting the
// IKE requests by exchange type and the IKE bytes both ways (marker
// included), as they cross the wire.
type ikeRelay struct {
	front, back *net.UDPConn
	gw          netip.AddrPort
	mu          sync.Mutex
	client      netip.AddrPort
	requests    map[uint8]int // messages (fragment 1 or unfragmented)
	fragments   map[uint8]int // SKF datagrams of requests
	ikeBytes    int
}

func newIKERelay(t testing.TB, gw netip.AddrPort) *ikeRelay {
	t.Helper()
	front, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopbackAddr(t), 4500)))
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &ikeRelay{front: front, back: back, gw: gw, requests: map[uint8]int{}, fragments: map[uint8]int{}}
	var wg sync.WaitGroup
	wg.Add(2)
	go r.pump(&wg, front, false)
	go r.pump(&wg, back, true)
	t.Cleanup(func() { front.Close(); back.Close(); wg.Wait() })
	return r
}

func (r *ikeRelay) addr() netip.AddrPort { return r.front.LocalAddr().(*net.UDPAddr).AddrPort() }

func (r *ikeRelay) pump(wg *sync.WaitGroup, in *net.UDPConn, toClient bool) {
	defer wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := in.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		ike := b
		if len(ike) >= 4 && binary.BigEndian.Uint32(ike) == 0 {
			ike = ike[4:]
		} else if len(b) > 0 && !(len(b) >= ikeHeaderLen && b[17] == ikeVersion2) {
			ike = nil // ESP
		}
		r.mu.Lock()
		if !toClient {
			r.client = from
		}
		if len(ike) >= ikeHeaderLen && ike[17] == ikeVersion2 {
			r.ikeBytes += n
			if ike[19]&ikeFlagResponse == 0 {
				// RFC 7383 §2.5: SKF (53) carries Fragment Number first.
				skf := ike[16] == 53 && len(ike) >= ikeHeaderLen+6
				if skf {
					r.fragments[ike[18]]++
				}
				if !skf || binary.BigEndian.Uint16(ike[ikeHeaderLen+4:]) == 1 {
					r.requests[ike[18]]++
				}
			}
		}
		to := r.client
		r.mu.Unlock()
		if toClient {
			_, _ = r.front.WriteToUDPAddrPort(b, to)
		} else {
			_, _ = r.back.WriteToUDPAddrPort(b, r.gw)
		}
	}
}

func (r *ikeRelay) count(exch uint8) (messages, fragments int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[exch], r.fragments[exch]
}

func joinKE(ks []string) string {
	out := ""
	for i, k := range ks {
		if i > 0 {
			out += " "
		}
		out += k
	}
	return out
}

// TestHybridEndToEnd: a client and a gateway with their default proposals
// negotiate x25519 + ML-KEM-768 (RFC 9370, IKE_INTERMEDIATE in fragments),
// carry traffic, rekey the IKE SA with IKE_FOLLOWUP_KE and carry traffic
// on the rekeyed SA; when the gateway crashes the client resumes on a
// second gateway with the ticket of the rekeyed hybrid SA.
func TestHybridEndToEnd(t *testing.T) {
	dir := t.TempDir()
	key := randomHex(32)
	cfgA := gatewayConfig(loopbackAddr(t), filepath.Join(dir, "a"), gwOpts{ticketKey: key})
	cfgB := gatewayConfig(loopbackAddr(t), filepath.Join(dir, "b"), gwOpts{ticketKey: key})
	cfgA.IKEProposals, cfgB.IKEProposals = nil, nil // the defaults
	a := startGateway(t, cfgA)
	b := startGateway(t, cfgB)
	relay := newIKERelay(t, a.addr)
	c := startClient(t, profileJSON([]netip.AddrPort{relay.addr(), b.addr}, func(m map[string]any) {
		delete(m, "ike_proposals") // the defaults
		m["timers"].(map[string]any)["fast_liveness"] = "300ms"
	}), filepath.Join(dir, "client"))
	ev, _ := c.connected(0, 10*time.Second)
	if got := joinKE(ev.KeyExchanges); got != wantHybrid || ev.Resumed {
		t.Fatalf("connected: key_exchanges %v resumed %v, want [%s] by a full exchange", ev.KeyExchanges, ev.Resumed, wantHybrid)
	}
	ge, _, ok := a.ev.wait(2*time.Second, 0, gwOfType("client_connected"))
	if !ok || joinKE(ge.KeyExchanges) != wantHybrid {
		t.Fatalf("gateway client_connected key_exchanges = %v (seen %v), want [%s]", ge.KeyExchanges, ok, wantHybrid)
	}
	inits, _ := relay.count(exchIKESAInit)
	if m, f := relay.count(exchIntermediate); inits != 1 || m != 1 || f < 2 {
		t.Errorf("requests on the wire: %d IKE_SA_INIT (want 1), %d IKE_INTERMEDIATE in %d fragments (want 1 in fragments)", inits, m, f)
	}
	tr := startEcho(t, c.c, 50)
	if tr.waitAnsweredAfter(time.Now(), 5*time.Second).IsZero() {
		t.Fatal("no traffic through the hybrid SA")
	}

	// IKE SA rekey with the additional key exchange.
	spii, _ := c.spis()
	nr := c.ev.len()
	c.c.Session().RekeyIKE()
	if _, _, ok := c.ev.wait(5*time.Second, nr, ofType(sdk.EventRekeyed)); !ok {
		t.Fatalf("no rekeyed event (events: %s)", eventTypes(c.ev.snapshot()[nr:]))
	}
	if now, _ := c.spis(); now == spii {
		t.Fatal("IKE SPIs unchanged after the rekey")
	}
	if m, f := relay.count(exchFollowupKE); m != 1 || f < 2 {
		t.Errorf("%d IKE_FOLLOWUP_KE requests in %d fragments on the wire, want 1 in fragments", m, f)
	}
	if tr.waitAnsweredAfter(time.Now(), 5*time.Second).IsZero() {
		t.Fatal("no traffic after the IKE SA rekey")
	}
	// The rekeyed SA's ticket arrives with the last IKE_FOLLOWUP_KE.
	if _, _, ok := a.ev.wait(3*time.Second, 1, gwOfType("ticket_issued")); !ok {
		t.Fatal("gateway A issued no ticket")
	}
	time.Sleep(200 * time.Millisecond) // the client stores it

	n0, nb := c.ev.len(), b.ev.len()
	a.crash()
	ev, _ = c.connected(n0, 20*time.Second)
	if ev.Gateway != b.addr.Addr().String() || !ev.Resumed {
		t.Fatalf("after A's crash: connected to %s resumed=%v, want %s by resumption (events: %s)", ev.Gateway, ev.Resumed, b.addr.Addr(), eventTypes(c.ev.snapshot()[n0:]))
	}
	if got := joinKE(ev.KeyExchanges); got != wantHybrid {
		t.Errorf("resumed SA reports key exchanges %v, want those of the hybrid SA [%s]", ev.KeyExchanges, wantHybrid)
	}
	if n := gwCount(b.ev.snapshot()[nb:], "ticket_nack"); n > 0 {
		t.Errorf("gateway B refused %d ticket(s)", n)
	}
	if tr.waitAnsweredAfter(ev.Time, 5*time.Second).IsZero() {
		t.Fatal("no traffic through B after resumption")
	}
}

// BenchmarkConnectHybrid measures a full connect (IKE_SA_INIT, any
// IKE_INTERMEDIATE, IKE_AUTH with the first Child SA) against an
// in-process gateway with its default proposals, classical and with
// ML-KEM-768, and the IKE bytes both ways on the wire (UDP payloads, as
// the relay in between sees them).
func BenchmarkConnectHybrid(b *testing.B) {
	g := startGateway(b, func() *gateway.Config {
		c := gatewayConfig(loopbackAddr(b), b.TempDir(), gwOpts{})
		c.IKEProposals = nil
		return c
	}())
	relay := newIKERelay(b, g.addr)
	for _, tc := range []struct{ name, proposal string }{
		{"x25519", "aes256gcm16-prfsha256-x25519"},
		{"x25519+mlkem768", "aes256gcm16-prfsha256-x25519-ke1_mlkem768"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			in := newInitiator(b, relay.addr())
			p, err := ikecrypto.ParseProposal(tc.proposal, false)
			if err != nil {
				b.Fatal(err)
			}
			in.cfg.IKEProposals = []ikecrypto.Proposal{p}
			in.full(b) // warm up
			relay.mu.Lock()
			before := relay.ikeBytes
			relay.mu.Unlock()
			b.ResetTimer()
			for range b.N {
				in.full(b)
			}
			b.StopTimer()
			relay.mu.Lock()
			bytes := relay.ikeBytes - before
			relay.mu.Unlock()
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/connect")
			b.ReportMetric(float64(bytes)/float64(b.N), "ike_bytes/connect")
		})
	}
}
