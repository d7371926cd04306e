package e2e

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/gateway"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// haPair is the configs of an active gateway and its hot standby on the
// same address: they share the QCD secret, the ticket key and the HA key;
// the active exports to stateFile, the standby imports it (and exports
// its own state to standbyFile).
type haPair struct {
	active, standby *gateway.Config
	stateFile       string
	standbyFile     string
	key             [32]byte
}

func newHAPair(t *testing.T, dir string) *haPair {
	t.Helper()
	addr := loopbackAddr(t)
	keyHex := randomHex(32)
	o := gwOpts{ticketKey: randomHex(32), secretFile: filepath.Join(dir, "qcd.secret")}
	p := &haPair{stateFile: filepath.Join(dir, "ha.state"), standbyFile: filepath.Join(dir, "ha2.state")}
	if _, err := hex.Decode(p.key[:], []byte(keyHex)); err != nil {
		t.Fatal(err)
	}
	p.active = gatewayConfig(addr, filepath.Join(dir, "active"), o)
	p.active.HA = gateway.HAConfig{ExportFile: p.stateFile, ExportInterval: "200ms", KeyHex: keyHex}
	p.standby = gatewayConfig(addr, filepath.Join(dir, "standby"), o)
	p.standby.HA = gateway.HAConfig{ImportFile: p.stateFile, ExportFile: p.standbyFile, ExportInterval: "200ms", KeyHex: keyHex}
	return p
}

// waitExported waits until the state file lists the client's IKE SA with
// ESP counters at least min (so the export is recent).
func (p *haPair) waitExported(t *testing.T, file string, spir uint64, minOut uint64) gateway.HASessionInfo {
	t.Helper()
	return p.waitExport(t, file, spir, func(s gateway.HASessionInfo) bool { return s.ESPOut >= minOut })
}

// waitExport waits until the state file lists the client's IKE SA as ok
// wants it.
func (p *haPair) waitExport(t *testing.T, file string, spir uint64, ok func(gateway.HASessionInfo) bool) gateway.HASessionInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		_, ss, err := gateway.InspectHAState(file, p.key)
		last = err
		for _, s := range ss {
			if s.SPIr == spir && ok(s) {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never listed IKE SA %016x as wanted (last error %v)", file, spir, last)
	return gateway.HASessionInfo{}
}

// haClient connects a client (QCD on, resumption on, HA sync default) with
// 50 echoes a second through the tunnel.
func haClient(t *testing.T, gw netip.AddrPort, dir string) (*cli, *echo) {
	t.Helper()
	c := startClient(t, profileJSON([]netip.AddrPort{gw}, nil), dir)
	tr := startEcho(t, c.c, 50)
	deadline := time.Now().Add(5 * time.Second)
	for tr.Answered() < 10 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if tr.Answered() < 10 {
		t.Fatalf("only %d echoes answered before the takeover", tr.Answered())
	}
	return c, tr
}

// checkClientKept checks the client side of a takeover: same SPIs, an
// ha_synced event with both syncs, no reconnect of any kind.
func checkClientKept(t *testing.T, c *cli, n0 int, spii, spir uint64, skip uint64) sdk.Event {
	t.Helper()
	e, _, ok := c.ev.wait(5*time.Second, n0, ofType(sdk.EventHASynced))
	if !ok {
		t.Fatalf("no ha_synced event (events: %s)", eventTypes(c.ev.snapshot()[n0:]))
	}
	if e.IKESPIi != hex16(spii) || e.IKESPIr != hex16(spir) || e.HASync == nil || !e.HASync.MessageIDs || e.HASync.ReplayDelta != skip {
		b, _ := json.Marshal(e)
		t.Errorf("ha_synced = %s, want SPIs %016x/%016x, message IDs and replay delta %d", b, spii, spir, skip)
	}
	evs := c.ev.snapshot()[n0:]
	for _, bad := range []sdk.EventType{sdk.EventFailover, sdk.EventConnecting, sdk.EventConnected, sdk.EventQCDVerified,
		sdk.EventLivenessFailed, sdk.EventDisconnected, sdk.EventResumed} {
		if n := countType(evs, bad); n > 0 {
			t.Errorf("%d %s events during the takeover (events: %s)", n, bad, eventTypes(evs))
		}
	}
	if a, b := c.spis(); a != spii || b != spir {
		t.Errorf("client moved to IKE SA %016x/%016x, want %016x/%016x", a, b, spii, spir)
	}
	return e
}

// TestHATakeover: the active gateway crashes (in-process drill: sockets
// closed, nothing more written), 2.2 s later, while the client's fast
// liveness check is still retransmitting, a standby on the same address
// starts from the last exported state. The client keeps its IKE SA (no
// IKE_SA_INIT, no failover, no QCD verdict: the standby sends no tokens
// for SAs it holds), answers the RFC 6311 sync, and the echo traffic
// resumes both ways: the standby's ESP is accepted (its counters skipped
// ahead) and the client's after it skipped its own.
func TestHATakeover(t *testing.T) {
	dir := t.TempDir()
	p := newHAPair(t, dir)
	a := startGateway(t, p.active)
	c, tr := haClient(t, a.addr, filepath.Join(dir, "client"))
	spii, spir := c.spis()
	// An export that has seen this traffic.
	before := p.waitExport(t, p.stateFile, spir, func(s gateway.HASessionInfo) bool { return s.ESPOut >= 20 && s.InRate > 0 })
	if before.InRate < 10 || before.OutRate < 10 {
		t.Errorf("exported packet rates out %.0f/s, in %.0f/s; the echo runs at 50/s", before.OutRate, before.InRate)
	}
	n0 := c.ev.len()
	crash := time.Now()
	a.crash()
	// Past the client's fast liveness start (1 s of unanswered traffic,
	// polled every 0.5 s), well before it gives up (4 tries, 3 s).
	time.Sleep(2200 * time.Millisecond)
	start := time.Now()
	b := startGateway(t, p.standby)
	started := time.Now()
	first := tr.waitAnsweredAfter(start, 10*time.Second)
	if first.IsZero() {
		t.Fatalf("no echo answered within 10 s of the standby's start (client events: %s; standby events: %v)",
			eventTypes(c.ev.snapshot()[n0:]), gwTypes(b.ev.snapshot()))
	}
	ev := checkClientKept(t, c, n0, spii, spir, gateway.DefaultHACounterSkip)
	t.Logf("client's liveness check outstanding at the sync and sent again under the new ID: %v", ev.HASync.Retried)
	gevs := b.ev.snapshot()
	if gwCount(gevs, "qcd_sent") > 0 {
		t.Errorf("the standby sent QCD tokens: %v", gwTypes(gevs))
	}
	if gwCount(gevs, "ha_takeover") != 1 || gwCount(gevs, "ha_synced") != 1 {
		t.Errorf("standby events %v, want one ha_takeover and one ha_synced", gwTypes(gevs))
	}
	// The standby's own export shows its counters skipped past the
	// active's and traffic carried after the takeover.
	after := p.waitExport(t, p.standbyFile, spir, func(s gateway.HASessionInfo) bool {
		return s.ESPOut > before.ESPOut+gateway.DefaultHACounterSkip && s.ESPIn > before.ESPIn+gateway.DefaultHACounterSkip &&
			(!ev.HASync.Retried || s.PeerNext > before.PeerNext)
	})
	if after.ESPIn <= before.ESPIn+gateway.DefaultHACounterSkip {
		t.Errorf("standby inbound top %d, want above %d (the client skipped too)", after.ESPIn, before.ESPIn+gateway.DefaultHACounterSkip)
	}
	if (ev.HASync.Retried && after.PeerNext <= before.PeerNext) || after.NextID < before.NextID+8 {
		t.Errorf("message IDs before %d/%d, after %d/%d", before.NextID, before.PeerNext, after.NextID, after.PeerNext)
	}
	st := c.c.Stats()
	t.Logf("outage: crash→answer %v; standby start %v; start→answer %v; client drops: replay %d auth %d; exported ESP out/in %d/%d, standby's %d/%d",
		first.Sub(crash).Round(time.Millisecond), started.Sub(start).Round(time.Millisecond), first.Sub(start).Round(time.Millisecond),
		st.DropReplay, st.DropAuth, before.ESPOut, before.ESPIn, after.ESPOut, after.ESPIn)
	if st.DropReplay > 0 {
		t.Errorf("client dropped %d packets of the standby as replays", st.DropReplay)
	}
}

func gwTypes(evs []gateway.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// TestHATakeoverProcess is the same drill with real processes: the active
// gateway is killed with SIGKILL, the standby process is started on the
// same address with the state file the active left.
func TestHATakeoverProcess(t *testing.T) {
	dir := t.TempDir()
	p := newHAPair(t, dir)
	write := func(name string, cfg *gateway.Config) string {
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ap, sp := write("active.json", p.active), write("standby.json", p.standby)
	a := startChild(t, "gateway", "QCDVPN_E2E_CONFIG="+ap)
	addr, err := a.out.next("listening ", 15*time.Second)
	if err != nil {
		t.Fatalf("active gateway: %v", err)
	}
	c, tr := haClient(t, netip.MustParseAddrPort(addr), filepath.Join(dir, "client"))
	spii, spir := c.spis()
	before := p.waitExported(t, p.stateFile, spir, 20)
	if fi, err := os.Stat(p.stateFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode: %v %v, want 0600", fi.Mode(), err)
	}
	n0 := c.ev.len()
	kill := time.Now()
	a.kill()
	time.Sleep(time.Second)
	start := time.Now()
	s := startChild(t, "gateway", "QCDVPN_E2E_CONFIG="+sp, "QCDVPN_E2E_GW_EVENTS=1")
	if _, err := s.out.next("listening ", 15*time.Second); err != nil {
		t.Fatalf("standby gateway: %v", err)
	}
	listening := time.Now()
	first := tr.waitAnsweredAfter(start, 10*time.Second)
	if first.IsZero() {
		t.Fatalf("no echo answered within 10 s of the standby's start (client events: %s)", eventTypes(c.ev.snapshot()[n0:]))
	}
	checkClientKept(t, c, n0, spii, spir, gateway.DefaultHACounterSkip)
	after := p.waitExported(t, p.standbyFile, spir, before.ESPOut+gateway.DefaultHACounterSkip+1)
	sync, _, _ := c.ev.wait(0, n0, ofType(sdk.EventHASynced))
	t.Logf("outage: kill→answer %v; standby process start→listening %v; start→ha_synced %v; start→answer %v; ESP out %d→%d, in %d→%d",
		first.Sub(kill).Round(time.Millisecond), listening.Sub(start).Round(time.Millisecond),
		sync.Time.Sub(start).Round(time.Millisecond), first.Sub(start).Round(time.Millisecond),
		before.ESPOut, after.ESPOut, before.ESPIn, after.ESPIn)
	// The standby's event stream shows the takeover and no token.
	s.in.Close()
	var lines []string
	for {
		l, err := s.out.nextMatch(func(l string) bool { return strings.HasPrefix(l, "event ") }, 5*time.Second)
		if err != nil {
			break
		}
		lines = append(lines, l)
		if strings.Contains(l, `"type":"stopped"`) {
			break
		}
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{`"type":"ha_takeover"`, `"type":"ha_synced"`} {
		if !strings.Contains(all, want) {
			t.Errorf("standby events lack %s:\n%s", want, all)
		}
	}
	if strings.Contains(all, `"type":"qcd_sent"`) {
		t.Errorf("the standby sent QCD tokens:\n%s", all)
	}
}

// TestHATakeoverAfterLiveness: a standby that starts only after the
// client's fast liveness check gave up (about 4 s) is too late to keep
// the SA: the client reports liveness_failed and reconnects to the same
// address, by resumption since both members share the ticket key; the
// standby's takeover of the stale SA gets no answer and does no harm.
func TestHATakeoverAfterLiveness(t *testing.T) {
	dir := t.TempDir()
	p := newHAPair(t, dir)
	a := startGateway(t, p.active)
	c, tr := haClient(t, a.addr, filepath.Join(dir, "client"))
	spii, spir := c.spis()
	p.waitExported(t, p.stateFile, spir, 20)
	n0 := c.ev.len()
	crash := time.Now()
	a.crash()
	if _, _, ok := c.ev.wait(10*time.Second, n0, ofType(sdk.EventLivenessFailed)); !ok {
		t.Fatalf("no liveness_failed (events: %s)", eventTypes(c.ev.snapshot()[n0:]))
	}
	failed := time.Now()
	b := startGateway(t, p.standby)
	start := time.Now()
	ev, _ := c.connected(n0, 15*time.Second)
	first := tr.waitAnsweredAfter(start, 10*time.Second)
	if first.IsZero() {
		t.Fatalf("no echo answered after the late standby started (events: %s)", eventTypes(c.ev.snapshot()[n0:]))
	}
	if ev.IKESPIi == hex16(spii) {
		t.Errorf("reconnected on the lost IKE SA %s", ev.IKESPIi)
	}
	if !ev.Resumed {
		t.Errorf("reconnected without resumption; both members share the ticket key")
	}
	evs := c.ev.snapshot()[n0:]
	if countType(evs, sdk.EventHASynced) > 0 {
		t.Errorf("ha_synced for an SA the client had given up (events: %s)", eventTypes(evs))
	}
	if gwCount(b.ev.snapshot(), "ha_takeover") != 1 {
		t.Errorf("standby events %v, want one ha_takeover", gwTypes(b.ev.snapshot()))
	}
	t.Logf("crash→liveness_failed %v, standby start→answer %v; client events: %s", failed.Sub(crash).Round(time.Millisecond),
		first.Sub(start).Round(time.Millisecond), eventTypes(evs))
}

// TestHAStandbySilentBeforeTakeover: a standby whose sockets are open a
// second before it takes the SAs over (New, then Run) receives the
// client's liveness retransmissions and ESP for SAs it holds but has not
// installed yet. It must not answer them with INVALID_IKE_SPI or
// INVALID_SPI and QCD tokens (the members share the QCD secret, so the
// client would verify the token and drop the SA): it stays silent, and
// the takeover then keeps the SA.
func TestHAStandbySilentBeforeTakeover(t *testing.T) {
	dir := t.TempDir()
	p := newHAPair(t, dir)
	a := startGateway(t, p.active)
	c, tr := haClient(t, a.addr, filepath.Join(dir, "client"))
	spii, spir := c.spis()
	p.waitExported(t, p.stateFile, spir, 20)
	n0 := c.ev.len()
	a.crash()
	time.Sleep(1600 * time.Millisecond) // the client's liveness check is running
	ev := newRecorder[gateway.Event]()
	cfg := *p.standby
	g, err := gateway.New(&cfg, gateway.Options{Logger: testLogger(), OnEvent: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // sockets open, SAs not yet taken over
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("standby Run did not return")
		}
	})
	start := time.Now()
	if tr.waitAnsweredAfter(start, 10*time.Second).IsZero() {
		t.Fatalf("no echo answered after the takeover (client events: %s; standby: %v)", eventTypes(c.ev.snapshot()[n0:]), gwTypes(ev.snapshot()))
	}
	checkClientKept(t, c, n0, spii, spir, gateway.DefaultHACounterSkip)
	if n := gwCount(ev.snapshot(), "qcd_sent"); n > 0 {
		t.Errorf("the standby answered %d times with QCD replies for SAs it holds", n)
	}
}

// TestHADoubleTakeover: a multiple failover (RFC 6311 §2): the standby
// that took over exports in turn, dies, and a third member takes over
// from its file. The client accepts the second sync (its M1 is above the
// first one's) and keeps the same IKE SA through both.
func TestHADoubleTakeover(t *testing.T) {
	dir := t.TempDir()
	p := newHAPair(t, dir)
	a := startGateway(t, p.active)
	c, tr := haClient(t, a.addr, filepath.Join(dir, "client"))
	spii, spir := c.spis()
	p.waitExported(t, p.stateFile, spir, 20)
	n0 := c.ev.len()
	a.crash()
	b := startGateway(t, p.standby)
	first, _, ok := c.ev.wait(10*time.Second, n0, ofType(sdk.EventHASynced))
	if !ok {
		t.Fatalf("no first ha_synced (events: %s)", eventTypes(c.ev.snapshot()[n0:]))
	}
	// The second member's export after its sync: message IDs in step.
	mid := p.waitExport(t, p.standbyFile, spir, func(s gateway.HASessionInfo) bool {
		return s.NextID >= first.HASync.PeerNext && s.ESPOut > gateway.DefaultHACounterSkip
	})
	n1 := c.ev.len()
	b.crash()
	third := *p.standby
	third.StateDir = filepath.Join(dir, "third")
	third.HA = gateway.HAConfig{ImportFile: p.standbyFile, KeyHex: p.standby.HA.KeyHex}
	start := time.Now()
	startGateway(t, &third)
	if tr.waitAnsweredAfter(start, 10*time.Second).IsZero() {
		t.Fatalf("no echo answered after the second takeover (events: %s)", eventTypes(c.ev.snapshot()[n1:]))
	}
	second := checkClientKept(t, c, n1, spii, spir, gateway.DefaultHACounterSkip)
	if second.HASync.PeerNext <= first.HASync.PeerNext {
		t.Errorf("second sync's gateway ID %d not above the first's %d", second.HASync.PeerNext, first.HASync.PeerNext)
	}
	checkClientKept(t, c, n0, spii, spir, gateway.DefaultHACounterSkip)
	t.Logf("first sync %+v, second %+v; second member exported ESP out %d", *first.HASync, *second.HASync, mid.ESPOut)
}
