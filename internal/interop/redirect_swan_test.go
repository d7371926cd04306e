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

// TestSwanRedirectEstablished: strongSwan redirects an established SA
// (RFC 5685 §5, `swanctl --redirect`) to a second strongSwan gateway in
// its own namespace, which is in none of the profile's gateways. While a
// ping runs through the tunnel, the client acknowledges the REDIRECT,
// deletes its SA at the first gateway, connects to the second with
// REDIRECTED_FROM naming the first, and the ping is answered again
// through the second gateway's Child SA. The event stream shows the
// redirect (failover, reason redirect) and then connected to the second
// gateway; the first gateway has no SA left.
func TestSwanRedirectEstablished(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	const prop = "aes256gcm16-prfsha256-x25519"
	first, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: prop})
	second, _ := gatewayOn(t, first.pair.AnotherGateway(t), gwOpts{auth: "psk", ikeProposal: prop})
	fIP, sIP := first.pair.GatewayIP.String(), second.pair.GatewayIP.String()
	p := profileFor(t, first, nil, prop) // lists the first gateway only
	p["state_dir"] = filepath.Join(first.dir, "state")
	c := startClient(t, first.pair.Client, writeProfile(t, first.dir, p), "--tun", "qcdrd0")
	up := c.waitEvent("connected", 20*time.Second)
	if up["gateway"] != fIP {
		t.Fatalf("first connected to %v, want %s", up["gateway"], fIP)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := first.swan.WaitSA(ctx, "rw", nil); err != nil {
		t.Fatal(err)
	}
	pg := startPinger(t, first.pair.Client, hostBehind(first.pair), 100*time.Millisecond)
	time.Sleep(time.Second)
	if _, answered := pg.counts(); answered == 0 {
		t.Fatal("no ping answered through the first gateway")
	}

	if sas, err := second.swan.ListSAs(ctx); err != nil || len(sas) != 0 {
		t.Fatalf("the second gateway has SAs before the redirect: %v %+v", err, sas)
	}
	redirected := time.Now()
	out, err := first.swan.Swanctl(ctx, "--redirect", "--ike", "rw", "--gateway", sIP)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("swanctl --redirect: %s", strings.TrimSpace(out))
	evs := c.eventsUntil("connected", 10*time.Second)
	t.Logf("events after swanctl --redirect: %v", types(evs))
	fo := slices.IndexFunc(evs, func(ev map[string]any) bool { return ev["type"] == "failover" })
	if fo < 0 {
		t.Fatalf("no failover event before connected: %v", types(evs))
	}
	if ev := evs[fo]; ev["reason"] != "redirect" || ev["from"] != fIP || ev["to"] != sIP {
		t.Errorf("failover = %v, want reason redirect from %s to %s", ev, fIP, sIP)
	}
	again := evs[len(evs)-1]
	if again["gateway"] != sIP {
		t.Fatalf("connected after the redirect = %v, want the second gateway %s", again, sIP)
	}
	t.Logf("swanctl --redirect → connected to the second gateway in %s", time.Since(redirected).Round(time.Millisecond))

	// Traffic flows again, through the second gateway.
	deadline := redirected.Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := pg.firstAnsweredAfter(redirected); ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	back, ok := pg.firstAnsweredAfter(redirected)
	if !ok || back.After(deadline) {
		t.Fatal("no ping answered within 5 s of the redirect")
	}
	t.Logf("pings answered again %s after the redirect", back.Sub(redirected).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	pg.halt()

	// strongSwan's side: the second gateway holds the client's new SA,
	// told where the client came from; the first has none left.
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sa, err := second.swan.WaitSA(ctx, "rw", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sa.RemoteID != "client.example" || !strings.EqualFold(sa.InitiatorSPI, fmt.Sprint(again["ike_spi_i"])) ||
		len(sa.RemoteVIPs) != 1 || sa.RemoteVIPs[0].String() != again["virtual_ip"] {
		t.Errorf("second gateway's SA %+v, client connected %v", sa, again)
	}
	if ch, ok := sa.Child("net"); !ok || ch.PacketsIn == 0 || ch.PacketsOut == 0 {
		t.Errorf("second gateway's child SA counters in %d out %d: the pings did not use it", ch.PacketsIn, ch.PacketsOut)
	}
	if l := logLine(second.swan.Log(), "parsed IKE_SA_INIT request 0"); !strings.Contains(l, "N(REDIR_FROM)") {
		t.Errorf("the client's IKE_SA_INIT to the second gateway has no REDIRECTED_FROM: %q", l)
	}
	if !strings.Contains(second.swan.Log(), "client got redirected from "+fIP) {
		t.Errorf("the second gateway did not see REDIRECTED_FROM %s", fIP)
	}
	for {
		sas, err := first.swan.ListSAs(ctx)
		if err == nil && len(sas) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the first gateway still has SAs after the redirect: %v %+v", err, sas)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The first gateway's log: the client offered redirects, strongSwan
	// sent the REDIRECT, the client acknowledged it and deleted its SA.
	log := first.swan.Log()
	if l := logLine(log, "parsed IKE_SA_INIT request 0"); !strings.Contains(l, "N(REDIR_SUP)") {
		t.Errorf("the client's IKE_SA_INIT has no REDIRECT_SUPPORTED: %q", l)
	}
	for _, want := range []string{"redirecting peer to " + sIP, "received DELETE for IKE_SA rw"} {
		if !strings.Contains(log, want) {
			t.Errorf("the first gateway's log lacks %q", want)
		}
	}
	// The REDIRECT's message ID depends on what strongSwan sent before
	// (with MOBIKE, an address list first), so match it and its answer.
	if m := regexp.MustCompile(`generating INFORMATIONAL request (\d+) \[ N\(REDIR\) \]`).FindStringSubmatch(log); m == nil {
		t.Errorf("the first gateway's log has no INFORMATIONAL request with N(REDIR)")
	} else if !strings.Contains(log, "parsed INFORMATIONAL response "+m[1]+" [ ]") {
		t.Errorf("the client did not acknowledge the REDIRECT (request %s)", m[1])
	}
	if err := c.stop(); err != nil {
		t.Fatalf("qcdvpn up exit: %v", err)
	}
}
