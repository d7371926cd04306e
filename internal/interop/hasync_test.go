package interop

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHASyncNotifiesSwan: with ha_sync on (the default, set explicitly
// here) the client announces RFC 6311 message-ID and replay-counter sync
// in IKE_AUTH; strongSwan connects, carries a ping, rekeys nothing and
// shuts down cleanly, exactly as without them.
func TestHASyncNotifiesSwan(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	const prop = "aes256gcm16-prfsha256-x25519"
	e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: prop})
	p := profileFor(t, e, nil, prop)
	p["ha_sync"] = map[string]any{"enabled": true}
	c := startClient(t, e.pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdh0", "--log-level", "info")
	c.waitEvent("connected", 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.pair.Client.Ping(ctx, hostBehind(e.pair)); err != nil {
		t.Errorf("no ping through the tunnel: %v", err)
	}
	evs := types(c.pending())
	for _, bad := range []string{"ha_synced", "disconnected", "failover", "liveness_failed", "connect_failed"} {
		if slices.Contains(evs, bad) {
			t.Errorf("event %s against strongSwan; events after connected: %v", bad, evs)
		}
	}
	if err := c.stop(); err != nil {
		t.Fatalf("qcdvpn up exit: %v", err)
	}
	waitNoSA(t, e.swan)
	// strongSwan parsed the announcements; it does not announce them
	// itself (no HA plugin), so the client uses neither.
	l := logLine(e.swan.Log(), "parsed IKE_AUTH request 1")
	if l == "" {
		t.Fatal("no IKE_AUTH request in strongSwan's log")
	}
	t.Logf("strongSwan: %s", l)
	t.Logf("strongSwan: %s", logLine(e.swan.Log(), "generating IKE_AUTH response 1"))
	for _, n := range []string{"N(MSG_ID_SYN_SUP)", "N(RPL_CTR_SYN_SUP)"} {
		if !strings.Contains(l, n) {
			t.Errorf("strongSwan's log of the IKE_AUTH request shows no %s: %q", n, l)
		}
	}
}
