package interop

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// roamNet is a client with two uplinks to one gateway namespace: the
// pair's link and a second veth pair on another subnet. The gateway's
// address stays pair.GatewayIP throughout; what changes is the client's.
type roamNet struct {
	pair  *testbed.Pair
	link2 *testbed.Link
	// moved is the client's address after the first change (on link 1).
	moved netip.Addr
	// up is when the links came up.
	up time.Time
}

func newRoamNet(t *testing.T) *roamNet {
	t.Helper()
	pair := testbed.NewPair(t)
	b := pair.Net.Addr().As4()
	x := b[1] + 1
	if x > 250 {
		x = 1
	}
	if x == 100 || x == 200 {
		x++
	}
	c2 := netip.AddrFrom4([4]byte{10, x, b[2], 1})
	g2 := netip.AddrFrom4([4]byte{10, x, b[2], 2})
	link2 := testbed.Connect(t, pair.Client, pair.Gateway, netip.PrefixFrom(c2, 24), netip.PrefixFrom(g2, 24))
	// Deleting the primary address must keep the one added beside it.
	pair.Client.SetSysctl(t, "net.ipv4.conf."+pair.Link.AIf+".promote_secondaries", "1")
	// The gateway answers on link 2 for its link 1 address.
	for _, k := range []string{"all", "default", link2.BIf, pair.Link.BIf} {
		pair.Gateway.SetSysctl(t, "net.ipv4.conf."+k+".rp_filter", "0")
	}
	return &roamNet{pair: pair, link2: link2, moved: netip.AddrFrom4([4]byte{10, b[1], b[2], 3}), up: time.Now()}
}

func ipIn(t *testing.T, ns *testbed.NS, args ...string) {
	t.Helper()
	if out, err := ns.Exec(context.Background(), "ip", args...); err != nil {
		t.Fatalf("ip %v: %v\n%s", args, err, out)
	}
}

// change1 moves the client's address on link 1: a new one beside it,
// then the old one goes (ip addr add / del).
func (n *roamNet) change1(t *testing.T) netip.Addr {
	ipIn(t, n.pair.Client, "addr", "add", netip.PrefixFrom(n.moved, 24).String(), "dev", n.pair.Link.AIf)
	ipIn(t, n.pair.Client, "addr", "del", netip.PrefixFrom(n.pair.ClientIP, 24).String(), "dev", n.pair.Link.AIf)
	return n.moved
}

// change2 switches to the second uplink: a host route to the gateway
// through link 2 (link 1 goes down once the client moved, see
// dropLink1).
func (n *roamNet) change2(t *testing.T) netip.Addr {
	ipIn(t, n.pair.Client, "route", "add", n.pair.GatewayIP.String()+"/32", "via", n.link2.BAddr.Addr().String(), "dev", n.link2.AIf)
	return n.link2.AAddr.Addr()
}

// dropLink1 takes the old uplink down for good. Not before the client
// moved: the gateway's end loses its carrier, and strongSwan then sends
// its address list (RFC 4555 §3.6) at once, to the client's old
// address if the update has not reached it yet; it retransmits that
// only after 4 s and holds its Child SA rekey (kernel-libipsec moves
// SAs by rekeying them) until it is answered.
func (n *roamNet) dropLink1(t *testing.T) {
	ipIn(t, n.pair.Client, "link", "set", n.pair.Link.AIf, "down")
}

// lossAround counts the pings sent in [at-200ms, until) and how many
// of them went unanswered, and the gap between the last answer before
// at and the first answer to a ping sent after it.
func lossAround(pg *pinger, at, until time.Time) (sent, lost int, gap time.Duration) {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	from := at.Add(-200 * time.Millisecond)
	var lastBefore, firstAfter time.Time
	for seq, s := range pg.sentAt {
		r, ok := pg.replies[seq&0xffff]
		if ok && r.Before(at) && r.After(lastBefore) {
			lastBefore = r
		}
		if ok && s.After(at) && (firstAfter.IsZero() || r.Before(firstAfter)) {
			firstAfter = r
		}
		if s.Before(from) || !s.Before(until) {
			continue
		}
		sent++
		if !ok {
			lost++
		}
	}
	if !firstAfter.IsZero() && !lastBefore.IsZero() {
		gap = firstAfter.Sub(lastBefore)
	}
	return sent, lost, gap
}

// roamDrill runs the two changes while pg pings at 20/s, checking after
// each that the client reported roamed with the right addresses, that
// check(newAddr) holds for the gateway, and that at most 1 s of pings
// (20) was lost. With childKept no Child SA may be rekeyed either (a
// gateway that can move its ESP SAs; strongSwan with kernel-libipsec
// cannot, and rekeys them after each update).
func roamDrill(t *testing.T, n *roamNet, c *client, pg *pinger, childKept bool, check func(step int, addr netip.Addr)) {
	t.Helper()
	// strongSwan announces its own addresses when the new links' IPv6
	// link-local addresses appear (about 2 s after link up); a request
	// of its in flight to the old address would hold its Child SA rekey
	// for its 4 s retransmission (see dropLink1). Start after that.
	time.Sleep(max(1500*time.Millisecond, time.Until(n.up.Add(4*time.Second))))
	if _, answered := pg.counts(); answered == 0 {
		t.Fatal("no ping answered before the first change")
	}
	old := n.pair.ClientIP
	rekeys := 0
	for step, change := range []func(*testing.T) netip.Addr{n.change1, n.change2} {
		at := time.Now()
		addr := change(t)
		evs := c.eventsUntil("roamed", 5*time.Second)
		for _, ev := range evs {
			if ev["type"] == "disconnected" || ev["type"] == "connected" {
				t.Fatalf("change %d: the tunnel was renegotiated: %v", step+1, types(evs))
			}
			if ev["type"] == "rekeyed" {
				rekeys++
				if childKept {
					t.Errorf("change %d: %v", step+1, ev)
				}
			}
		}
		ev := evs[len(evs)-1]
		if ev["from"] != old.String() || ev["to"] != addr.String() {
			t.Errorf("change %d: roamed %v, want from %s to %s", step+1, ev, old, addr)
		}
		check(step+1, addr)
		if step == 1 {
			n.dropLink1(t)
		}
		time.Sleep(2500 * time.Millisecond)
		sent, lost, gap := lossAround(pg, at, time.Now().Add(-500*time.Millisecond))
		t.Logf("change %d (%s -> %s): update took %v ms; %d of %d pings lost (%.0f ms), longest gap between replies %s",
			step+1, old, addr, ev["elapsed_ms"], lost, sent, float64(lost)*50, gap.Round(time.Millisecond))
		if lost > 20 {
			t.Errorf("change %d: %d pings lost at 20/s, more than 1 s", step+1, lost)
		}
		old = addr
	}
	for _, ev := range c.pending() {
		if ev["type"] == "disconnected" || ev["type"] == "connected" {
			t.Errorf("tunnel renegotiated after the changes: %v", ev)
		}
		if ev["type"] == "rekeyed" {
			rekeys++
			if childKept {
				t.Errorf("after the changes: %v", ev)
			}
		}
	}
	t.Logf("%d Child SA rekeys during the drill", rekeys)
}

// TestInteropMOBIKE: strongSwan (mobike = yes, its default) as the
// gateway; while a ping runs at 20/s through the tunnel, the client's
// address moves on its link, then the client switches to a second
// uplink. Each time the client sends UPDATE_SA_ADDRESSES: strongSwan's
// IKE SA keeps its SPIs and follows the client to its new address, and
// at most 1 s of pings is lost per change.
func TestInteropMOBIKE(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	n := newRoamNet(t)
	const prop = "aes256gcm16-prfsha256-x25519"
	e, _ := gatewayOn(t, n.pair, gwOpts{auth: "psk", ikeProposal: prop})
	p := profileFor(t, e, nil, prop)
	c := startClient(t, n.pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdr0")
	conn := c.waitEvent("connected", 20*time.Second)
	sa, err := e.swan.WaitSA(context.Background(), "rw", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sa.LocalPort != 4500 {
		t.Errorf("IKE SA on the gateway's port %d, want 4500 (RFC 4555 §3.3)", sa.LocalPort)
	}
	spiI, spiR := sa.InitiatorSPI, sa.ResponderSPI
	if spiI != conn["ike_spi_i"] || spiR != conn["ike_spi_r"] {
		t.Fatalf("strongSwan lists SPIs %s/%s, client connected with %v/%v", spiI, spiR, conn["ike_spi_i"], conn["ike_spi_r"])
	}
	pg := startPinger(t, n.pair.Client, hostBehind(n.pair), 50*time.Millisecond)
	roamDrill(t, n, c, pg, false, func(step int, addr netip.Addr) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		sa, err := e.swan.WaitSA(ctx, "rw", func(sa testbed.SA) bool { return sa.RemoteHost == addr.String() })
		if err != nil {
			sas, _ := e.swan.ListSAs(context.Background())
			t.Fatalf("change %d: strongSwan does not see the client at %s: %v (%+v)", step, addr, err, sas)
		}
		if sa.InitiatorSPI != spiI || sa.ResponderSPI != spiR {
			t.Errorf("change %d: IKE SPIs %s/%s, want %s/%s", step, sa.InitiatorSPI, sa.ResponderSPI, spiI, spiR)
		}
		if sas, _ := e.swan.ListSAs(context.Background()); len(sas) != 1 {
			t.Errorf("change %d: strongSwan lists %d IKE SAs", step, len(sas))
		}
	})
	c.stop()
}

// TestQcdvpnMOBIKE: the same drill between a qcdvpn client and `qcdvpn
// gateway`: the gateway's session follows the client (client_roamed,
// same SA) and ESP goes to the new address.
func TestQcdvpnMOBIKE(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	n := newRoamNet(t)
	const prop = "aes256gcm16-prfsha256-x25519"
	g := startQcdGateway(t, n.pair, qcdGatewayOpts{auth: "psk", ikeProposals: []string{prop}})
	e := &env{pair: n.pair, dir: t.TempDir()}
	p := profileFor(t, e, nil, prop)
	p["gateways"] = []string{g.addr.String()}
	p["state_dir"] = filepath.Join(e.dir, "state")
	c := startClient(t, n.pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdr1")
	conn := c.waitEvent("connected", 20*time.Second)
	gev := g.waitEvent("client_connected", 5*time.Second)
	if gev["ike_spi_i"] != conn["ike_spi_i"] {
		t.Fatalf("gateway %v, client %v", gev, conn)
	}
	pg := startPinger(t, n.pair.Client, hostBehind(n.pair), 50*time.Millisecond)
	roamDrill(t, n, c, pg, true, func(step int, addr netip.Addr) {
		evs := g.eventsUntil("client_roamed", 3*time.Second)
		ev := evs[len(evs)-1]
		if want := fmt.Sprintf("%s:", addr); len(fmt.Sprint(ev["remote"])) < len(want) || fmt.Sprint(ev["remote"])[:len(want)] != want {
			t.Errorf("change %d: client_roamed %v, want the client at %s", step, ev, addr)
		}
		for _, ev := range evs {
			if ev["type"] == "client_connected" || ev["type"] == "client_gone" {
				t.Errorf("change %d: gateway renegotiated: %v", step, types(evs))
			}
		}
	})
	c.stop()
}

// TestInteropMOBIKEFallback: the client's address moves while the
// gateway is unreachable (all UDP to and from port 4500 dropped for 3 s):
// the UPDATE_SA_ADDRESSES goes unanswered, the client gives up on the SA
// within a few seconds and reconnects (disconnected, then connected
// with new SPIs) once the path works, and traffic flows again.
func TestInteropMOBIKEFallback(t *testing.T) {
	requireEnv(t)
	testbed.RequireNFTables(t)
	t.Parallel()
	n := newRoamNet(t)
	const prop = "aes256gcm16-prfsha256-x25519"
	e, _ := gatewayOn(t, n.pair, gwOpts{auth: "psk", ikeProposal: prop})
	p := profileFor(t, e, nil, prop)
	c := startClient(t, n.pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdr2")
	first := c.waitEvent("connected", 20*time.Second)
	testbed.SetLoss(t, n.pair.Gateway, 100, 4500)
	at := time.Now()
	addr := n.change1(t)
	time.Sleep(3 * time.Second)
	testbed.SetLoss(t, n.pair.Gateway, 0)
	evs := c.eventsUntil("disconnected", 10*time.Second)
	for _, ev := range evs {
		if ev["type"] == "roamed" {
			t.Errorf("roamed over a dead path: %v", ev)
		}
	}
	gone := evs[len(evs)-1]
	if r := fmt.Sprint(gone["reason"]); !strings.Contains(r, "MOBIKE") {
		t.Errorf("disconnected for %q, want the failed MOBIKE update", r)
	}
	t.Logf("gave up on the new path %s after %s", addr, time.Since(at).Round(time.Millisecond))
	again := c.waitEvent("connected", 15*time.Second)
	if again["ike_spi_i"] == first["ike_spi_i"] {
		t.Errorf("reconnected with the old SPIs %v", again["ike_spi_i"])
	}
	t.Logf("reconnected %s after the change", time.Since(at).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.pair.Client.Ping(ctx, hostBehind(n.pair)); err != nil {
		t.Fatalf("ping after the reconnect: %v", err)
	}
	sa, err := e.swan.WaitSA(ctx, "rw", func(sa testbed.SA) bool { return sa.InitiatorSPI == again["ike_spi_i"] })
	if err != nil || sa.RemoteHost != addr.String() {
		t.Errorf("strongSwan's new SA: %+v, %v; want the client at %s", sa, err, addr)
	}
	c.stop()
}
