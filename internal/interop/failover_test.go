package interop

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFailoverSwanToSwan: two strongSwan gateways share the PSK, the
// identity and the pool; the profile lists the primary, then the backup.
// While a ping runs through the tunnel the primary's charon is killed
// with SIGKILL and never comes back. The client notices by its fast
// liveness check, fails over to the backup at once with a full exchange
// (strongSwan issues no tickets), and the ping is answered again within
// 10 s of the kill.
func TestFailoverSwanToSwan(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	const prop = "aes256gcm16-prfsha256-x25519"
	primary, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: prop})
	backup, _ := gatewayOn(t, primary.pair.AnotherGateway(t), gwOpts{auth: "psk", ikeProposal: prop})
	pIP, bIP := primary.pair.GatewayIP.String(), backup.pair.GatewayIP.String()
	p := profileFor(t, primary, nil, prop)
	p["gateways"] = []string{pIP, bIP}
	p["state_dir"] = filepath.Join(primary.dir, "state")
	c := startClient(t, primary.pair.Client, writeProfile(t, primary.dir, p), "--tun", "qcdfo0")
	first := c.waitEvent("connected", 20*time.Second)
	if first["gateway"] != pIP {
		t.Fatalf("first connected to %v, want the primary %s", first["gateway"], pIP)
	}
	behind := hostBehind(primary.pair)
	pg := startPinger(t, primary.pair.Client, behind, 100*time.Millisecond)
	time.Sleep(time.Second)
	if _, answered := pg.counts(); answered == 0 {
		t.Fatal("no ping answered through the primary")
	}
	if sas, err := backup.swan.ListSAs(context.Background()); err != nil || len(sas) != 0 {
		t.Fatalf("the backup has SAs before the failover: %v %+v", err, sas)
	}

	primary.swan.Kill()
	killed := time.Now()
	evs := c.eventsUntil("connected", 20*time.Second)
	t.Logf("events after kill -9 of the primary: %v", types(evs))
	at := func(typ string) int {
		return slices.IndexFunc(evs, func(ev map[string]any) bool { return ev["type"] == typ })
	}
	lf, fo, co := at("liveness_failed"), at("failover"), len(evs)-1
	if lf < 0 || fo < 0 || !(lf < fo && fo < co) {
		t.Fatalf("want liveness_failed, then failover, then connected; got %v", types(evs))
	}
	if i := at("qcd_verified"); i >= 0 {
		t.Errorf("qcd_verified from strongSwan, which sends no tokens: %v", evs[i])
	}
	if ev := evs[fo]; ev["from"] != pIP || ev["to"] != bIP {
		t.Errorf("failover = %v, want from %s to %s", ev, pIP, bIP)
	}
	again := evs[co]
	if again["gateway"] != bIP || again["resumed"] != false {
		t.Errorf("connected after failover = %v, want the backup %s with resumed false", again, bIP)
	}
	t.Logf("kill -9 → connected to the backup in %s (liveness_failed %v)", time.Since(killed).Round(time.Millisecond), evs[lf]["reason"])

	// Traffic flows again through the backup.
	deadline := killed.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := pg.firstAnsweredAfter(killed); ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	back, ok := pg.firstAnsweredAfter(killed)
	if !ok || back.After(deadline) {
		t.Fatalf("no ping answered within 10 s of the kill")
	}
	t.Logf("pings answered again %s after the kill", back.Sub(killed).Round(time.Millisecond))

	// The backup holds the client's SA, the primary stayed dead.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sa, err := backup.swan.WaitSA(ctx, "rw", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sa.RemoteID != "client.example" || !strings.EqualFold(sa.InitiatorSPI, fmt.Sprint(again["ike_spi_i"])) ||
		len(sa.RemoteVIPs) != 1 || sa.RemoteVIPs[0].String() != again["virtual_ip"] {
		t.Errorf("backup SA %+v, client connected %v", sa, again)
	}
	if ch, ok := sa.Child("net"); !ok || ch.PacketsIn == 0 || ch.PacketsOut == 0 {
		t.Errorf("backup child SA counters in %d out %d: the pings did not use it", ch.PacketsIn, ch.PacketsOut)
	}
	if primary.swan.Running() {
		t.Error("the primary's charon is running again")
	}
	if err := c.stop(); err != nil {
		t.Fatalf("qcdvpn up exit: %v", err)
	}
}

// TestNoTokenFromSwanNoError: strongSwan sends no QCD token and ignores
// TICKET_REQUEST. The client connects as usual, runs liveness checks
// and traffic for a few seconds and exits cleanly, and nothing it says
// at log level info looks like a failure: no error (nor warning) lines,
// no qcd_rejected.
func TestNoTokenFromSwanNoError(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	const prop = "aes256gcm16-prfsha256-x25519"
	e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: prop})
	p := profileFor(t, e, nil, prop)
	p["state_dir"] = filepath.Join(e.dir, "state")
	// Liveness checks every 2 s of silence.
	p["timers"] = map[string]any{"retransmit_timeout": "500ms", "retransmit_tries": 3, "liveness": "2s"}
	c := startClient(t, e.pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdq0", "--log-level", "info")
	c.waitEvent("connected", 20*time.Second)
	time.Sleep(5 * time.Second) // idle: liveness checks
	pg := startPinger(t, e.pair.Client, hostBehind(e.pair), 100*time.Millisecond)
	time.Sleep(2 * time.Second)
	pg.halt()
	if _, answered := pg.counts(); answered == 0 {
		t.Error("no ping answered")
	}
	evs := types(c.pending())
	for _, bad := range []string{"qcd_rejected", "qcd_verified", "liveness_failed", "disconnected", "connect_failed", "failover"} {
		if slices.Contains(evs, bad) {
			t.Errorf("event %s while connected to strongSwan; events after connected: %v", bad, evs)
		}
	}
	if err := c.stop(); err != nil {
		t.Fatalf("qcdvpn up exit: %v", err)
	}
	// The premise, from strongSwan's side: the client asked for a ticket,
	// strongSwan answered with neither token nor ticket, and the client
	// ran liveness checks (empty INFORMATIONAL requests).
	log := e.swan.Log()
	if l := logLine(log, "parsed IKE_AUTH request 1"); !strings.Contains(l, "N(TKT_REQ)") {
		t.Errorf("the client's IKE_AUTH request has no TICKET_REQUEST: %q", l)
	}
	if l := logLine(log, "generating IKE_AUTH response 1"); l == "" || strings.Contains(l, "CRASH_DET") || strings.Contains(l, "TKT_") {
		t.Errorf("strongSwan's IKE_AUTH response: %q", l)
	}
	if !regexp.MustCompile(`parsed INFORMATIONAL request \d+ \[ \]`).MatchString(log) {
		t.Errorf("strongSwan's log shows no liveness check from the client")
	}
	var bad []string
	for _, l := range strings.Split(c.Stderr(), "\n") {
		if strings.Contains(strings.ToLower(l), "error") || strings.Contains(l, "level=WARN") {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		t.Errorf("qcdvpn up logged errors or warnings against strongSwan:\n%s", strings.Join(bad, "\n"))
	}
	t.Logf("client stderr at level info:\n%s", c.Stderr())
}
