package e2e

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/resume"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// TestTicketOnOtherGateway: gateways A and B share the ticket key; the
// client connects to A (listed first), A crashes and stays dead, and the
// client fails over to B by resumption (one round trip, no
// Diffie-Hellman on B) and traffic flows through B.
func TestTicketOnOtherGateway(t *testing.T) {
	dir := t.TempDir()
	key := randomHex(32)
	a := startGateway(t, gatewayConfig(loopbackAddr(t), filepath.Join(dir, "a"), gwOpts{ticketKey: key}))
	b := startGateway(t, gatewayConfig(loopbackAddr(t), filepath.Join(dir, "b"), gwOpts{ticketKey: key}))
	c := startClient(t, profileJSON([]netip.AddrPort{a.addr, b.addr}, func(m map[string]any) {
		m["timers"].(map[string]any)["fast_liveness"] = "300ms"
	}), filepath.Join(dir, "client"))
	ev0, _ := c.connected(0, 5*time.Second)
	if ev0.Gateway != a.addr.Addr().String() || ev0.Resumed {
		t.Fatalf("first connect: gateway %s resumed=%v, want %s by a full exchange", ev0.Gateway, ev0.Resumed, a.addr.Addr())
	}
	if _, _, ok := a.ev.wait(2*time.Second, 0, gwOfType("ticket_issued")); !ok {
		t.Fatal("gateway A issued no ticket")
	}
	tr := startEcho(t, c.c, 50)
	deadline := time.Now().Add(5 * time.Second)
	for tr.Answered() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if tr.Answered() < 5 {
		t.Fatal("no traffic through A")
	}

	n0, nb := c.ev.len(), b.ev.len()
	crash := time.Now()
	a.crash()
	ev, _ := c.connected(n0, 20*time.Second)
	if ev.Gateway != b.addr.Addr().String() {
		t.Fatalf("after A's crash connected to %s, want B %s (events: %s)", ev.Gateway, b.addr.Addr(), eventTypes(c.ev.snapshot()[n0:]))
	}
	if !ev.Resumed {
		t.Errorf("connected to B with resumed=false, want a resumption with A's ticket (events: %s)", eventTypes(c.ev.snapshot()[n0:]))
	}
	if fo, _, ok := c.ev.wait(0, n0, ofType(sdk.EventFailover)); !ok {
		t.Error("no failover event")
	} else if fo.From != a.addr.Addr().String() || fo.To != b.addr.Addr().String() {
		t.Errorf("failover from %s to %s, want %s to %s", fo.From, fo.To, a.addr.Addr(), b.addr.Addr())
	}
	if ge, _, ok := b.ev.wait(2*time.Second, nb, gwOfType("client_connected")); !ok || !ge.Resumed {
		t.Errorf("gateway B: client_connected resumed=%v (seen %v), want resumed", ge.Resumed, ok)
	}
	if n := gwCount(b.ev.snapshot()[nb:], "ticket_nack"); n > 0 {
		t.Errorf("gateway B refused %d ticket(s)", n)
	}
	first := tr.waitAnsweredAfter(ev.Time, 5*time.Second)
	if first.IsZero() {
		t.Fatal("no echo answered through B")
	}
	t.Logf("A crashed: connected to B (resumed=%v) %v later, first echo through B %v after the crash; events: %s",
		ev.Resumed, ev.Time.Sub(crash).Round(time.Millisecond), first.Sub(crash).Round(time.Millisecond), eventTypes(c.ev.snapshot()[n0:]))
}

// TestTicketNackThenFull: a forged (bit-flipped) ticket and a reused one
// get TICKET_NACK from the gateway, and the client connects in the same
// attempt by a full exchange; an expired ticket is not even presented.
// The tickets are real ones, taken from the state directory of a client
// that died without Close (a child process).
func TestTicketNackThenFull(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, gatewayConfig(loopbackAddr(t), filepath.Join(dir, "gw"), gwOpts{}))
	prof := profileJSON([]netip.AddrPort{g.addr}, nil)
	state := filepath.Join(dir, "client")
	cc := runClientChild(t, prof, state)
	rec := storedTicket(t, state, cc)

	t.Run("forged", func(t *testing.T) {
		forged := rec
		forged.Ticket = bytes.Clone(rec.Ticket)
		forged.Ticket[len(forged.Ticket)-5] ^= 0x10
		putRecord(t, state, forged)
		nackThenFull(t, g, prof, state, "forged")
	})
	t.Run("genuine", func(t *testing.T) {
		// The same record unchanged resumes: what the other cases get
		// refused is the ticket, not the record.
		putRecord(t, state, rec)
		c := startClient(t, prof, state)
		if ev, _ := c.connected(0, 5*time.Second); !ev.Resumed {
			t.Fatalf("the genuine ticket did not resume (events: %s)", eventTypes(c.ev.snapshot()))
		}
		c.close()
	})
	t.Run("reused", func(t *testing.T) {
		putRecord(t, state, rec) // the ticket "genuine" just used
		nackThenFull(t, g, prof, state, "used")
	})
	t.Run("expired", func(t *testing.T) {
		g := startGateway(t, gatewayConfig(loopbackAddr(t), filepath.Join(dir, "gw-short"), gwOpts{lifetime: "1s"}))
		prof := profileJSON([]netip.AddrPort{g.addr}, nil)
		state := filepath.Join(dir, "client-short")
		cc := runClientChild(t, prof, state)
		rec := storedTicket(t, state, cc)
		if left := time.Until(rec.Expiry); left > time.Second || left < -time.Second {
			t.Fatalf("ticket of lifetime 1s expires in %v", left)
		}
		time.Sleep(time.Until(rec.Expiry) + time.Second)
		n0 := g.ev.len()
		c := startClient(t, prof, state)
		ev, _ := c.connected(0, 5*time.Second)
		evs := c.ev.snapshot()
		if ev.Resumed {
			t.Error("resumed with an expired ticket")
		}
		if n := countType(evs, sdk.EventConnecting); n != 1 || countType(evs, sdk.EventConnectFailed) > 0 {
			t.Errorf("events %s, want one connecting then connected", eventTypes(evs))
		}
		time.Sleep(100 * time.Millisecond)
		if n := gwCount(g.ev.snapshot()[n0:], "ticket_nack"); n > 0 {
			t.Errorf("the client presented the expired ticket (%d ticket_nack at the gateway)", n)
		}
	})
}

// nackThenFull connects a client whose store holds a bad ticket and
// checks the gateway refused it (reason containing why) and the client
// connected by a full exchange in the same attempt.
func nackThenFull(t *testing.T, g *gw, prof []byte, state, why string) {
	t.Helper()
	n0 := g.ev.len()
	c := startClient(t, prof, state)
	ev, _ := c.connected(0, 10*time.Second)
	evs := c.ev.snapshot()
	if ev.Resumed {
		t.Errorf("connected with resumed=true on a %s ticket", why)
	}
	if n := countType(evs, sdk.EventConnecting); n != 1 || countType(evs, sdk.EventConnectFailed) > 0 {
		t.Errorf("events %s, want one connecting then connected (the full exchange in the same attempt)", eventTypes(evs))
	}
	nack, _, ok := g.ev.wait(2*time.Second, n0, gwOfType("ticket_nack"))
	if !ok {
		t.Fatalf("the gateway sent no TICKET_NACK for the %s ticket", why)
	}
	if !strings.Contains(nack.Reason, why) {
		t.Errorf("ticket_nack reason %q, want one about %q", nack.Reason, why)
	}
	if ge, _, ok := g.ev.wait(2*time.Second, n0, gwOfType("client_connected")); !ok || ge.Resumed {
		t.Errorf("gateway: client_connected seen=%v resumed=%v, want a full exchange", ok, ge.Resumed)
	}
	echoOnce(t, c.c)
	c.close()
}

// TestClientRestartResumes: a client killed without Close (a child
// process that exits right after connecting) leaves its ticket in the
// state directory; a new client with that directory resumes at the same
// gateway.
func TestClientRestartResumes(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, gatewayConfig(loopbackAddr(t), filepath.Join(dir, "gw"), gwOpts{}))
	prof := profileJSON([]netip.AddrPort{g.addr}, nil)
	state := filepath.Join(dir, "client")
	cc := runClientChild(t, prof, state)
	if cc.Resumed {
		t.Fatal("the first connect resumed")
	}
	// Killed, not closed: the gateway still holds the SA.
	time.Sleep(100 * time.Millisecond)
	for _, e := range g.ev.snapshot() {
		if e.Type == "client_gone" && e.SPIi == hex16(cc.SPIi) {
			t.Fatalf("the gateway saw the killed client's SA end (%s): it was closed, not killed", e.Reason)
		}
	}
	n0 := g.ev.len()
	c := startClient(t, prof, state)
	ev, _ := c.connected(0, 5*time.Second)
	if !ev.Resumed {
		t.Fatalf("the restarted client connected with resumed=false (events: %s)", eventTypes(c.ev.snapshot()))
	}
	if ev.Gateway != g.addr.Addr().String() {
		t.Errorf("resumed at %s, want %s", ev.Gateway, g.addr.Addr())
	}
	if countType(c.ev.snapshot(), sdk.EventResumed) != 1 {
		t.Errorf("no resumed event (events: %s)", eventTypes(c.ev.snapshot()))
	}
	if ge, _, ok := g.ev.wait(2*time.Second, n0, gwOfType("client_connected")); !ok || !ge.Resumed {
		t.Errorf("gateway: client_connected seen=%v resumed=%v, want resumed", ok, ge.Resumed)
	}
	echoOnce(t, c.c)
}

// storedTicket reads the record of the child's IKE SA from a state
// directory no process holds, and checks it carries a ticket.
func storedTicket(t *testing.T, dir string, cc childConnected) resume.Record {
	t.Helper()
	st := openStore(t, dir)
	defer st.Close()
	want := hex16(cc.SPIi) + hex16(cc.SPIr)
	recs, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.ID == want {
			if len(r.Ticket) == 0 || len(r.State) == 0 {
				t.Fatalf("record %s holds no ticket", r.ID)
			}
			return r
		}
	}
	t.Fatalf("no record %s in %s (%d records)", want, dir, len(recs))
	return resume.Record{}
}

func putRecord(t *testing.T, dir string, r resume.Record) {
	t.Helper()
	st := openStore(t, dir)
	defer st.Close()
	if err := st.Put(r); err != nil {
		t.Fatal(err)
	}
}

func openStore(t *testing.T, dir string) *resume.Store {
	t.Helper()
	st, err := resume.OpenStore(dir, resume.FileKey{Path: filepath.Join(dir, "store.key")}, resume.StoreOptions{})
	if err != nil {
		t.Fatalf("opening the client's store: %v", err)
	}
	return st
}
