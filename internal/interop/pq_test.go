package interop

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// TestInteropHybridFallback: with its default proposals (x25519 +
// ML-KEM-768 first, plain x25519 next) the client connects to Debian's
// strongSwan 5.9, which knows no RFC 9370, with plain x25519: no error,
// one IKE_SA_INIT (the KE payload is x25519 either way, so no
// INVALID_KE_PAYLOAD), no IKE_INTERMEDIATE, and the connected event says
// which key exchange was used.
func TestInteropHybridFallback(t *testing.T) {
	requireEnv(t)
	for _, gwProposal := range []string{"aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-ecp384-x25519"} {
		t.Run(gwProposal, func(t *testing.T) {
			t.Parallel()
			e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: gwProposal})
			p := profileFor(t, e, nil, "")
			delete(p, "ike_proposals") // the SDK's defaults
			c := startClient(t, e.pair.Client, writeProfile(t, e.dir, p))
			ev := c.waitEvent("connected", 20*time.Second)
			if ke := fmt.Sprint(ev["key_exchanges"]); ke != "[CURVE_25519]" {
				t.Errorf("connected.key_exchanges = %s, want [CURVE_25519]", ke)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sa, err := e.swan.WaitSA(ctx, "rw", nil)
			if err != nil {
				t.Fatalf("strongSwan has no established SA: %v", err)
			}
			if sa.DHGroup != "CURVE_25519" || sa.EncrAlg != "AES_GCM_16" {
				t.Errorf("strongSwan's IKE SA: %s/%s, want AES_GCM_16 with CURVE_25519", sa.EncrAlg, sa.DHGroup)
			}
			log := e.swan.Log()
			if n := strings.Count(log, "parsed IKE_SA_INIT request 0"); n != 1 {
				t.Errorf("strongSwan parsed %d IKE_SA_INIT requests, want 1", n)
			}
			for _, bad := range []string{"N(INVAL_KE)", "IKE_INTERMEDIATE", "NO_PROP"} {
				if strings.Contains(log, bad) {
					t.Errorf("strongSwan's log shows %s", bad)
				}
			}
			for _, l := range strings.Split(log, "\n") {
				if strings.Contains(l, "proposal") || strings.Contains(l, "IKE_SA_INIT") {
					t.Log(strings.TrimSpace(l))
				}
			}
			if err := c.stop(); err != nil {
				t.Fatalf("qcdvpn up exit: %v", err)
			}
		})
	}
}

// TestQcdvpnHybridCLI: `qcdvpn up` with a kernel TUN against `qcdvpn
// gateway`, both with their default proposals, negotiate x25519 +
// ML-KEM-768: the client's connected event, the gateway's
// client_connected event and the gateway's log say so, and a ping
// crosses the tunnel.
func TestQcdvpnHybridCLI(t *testing.T) {
	requireEnv(t)
	pair := testbed.NewPair(t)
	g := startQcdGateway(t, pair, qcdGatewayOpts{auth: "psk", espProposals: []string{"aes256gcm16"}})
	e := &env{pair: pair, dir: t.TempDir()}
	p := profileFor(t, e, g.pki, "")
	delete(p, "ike_proposals")
	p["gateways"] = []string{g.addr.String()}
	p["state_dir"] = filepath.Join(e.dir, "state")
	c := startClient(t, pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdpq0")
	ev := c.waitEvent("connected", 20*time.Second)
	if ke := fmt.Sprint(ev["key_exchanges"]); ke != "[CURVE_25519 ML_KEM_768]" {
		t.Errorf("connected.key_exchanges = %s, want [CURVE_25519 ML_KEM_768]", ke)
	}
	gev := g.waitEvent("client_connected", 5*time.Second)
	if ke := fmt.Sprint(gev["key_exchanges"]); ke != "[CURVE_25519 ML_KEM_768]" {
		t.Errorf("gateway client_connected.key_exchanges = %s", ke)
	}
	if log := g.client.Stderr(); !strings.Contains(log, "ML_KEM_768") {
		t.Errorf("the gateway's log does not name ML_KEM_768:\n%s", log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pair.Client.Ping(ctx, hostBehind(pair)); err != nil {
		t.Fatalf("ping %s through the hybrid tunnel: %v", hostBehind(pair), err)
	}
	t.Logf("connected: %v", ev["ike_suite"])
	if err := c.stop(); err != nil {
		t.Fatalf("qcdvpn up exit: %v", err)
	}
}

// TestSwanClientToHybridGateway: `qcdvpn gateway` with its default
// proposals (x25519 + ML-KEM-768 first) serves strongSwan 5.9, which
// offers plain x25519, with plain x25519.
func TestSwanClientToHybridGateway(t *testing.T) {
	requireEnv(t)
	const prop, esp = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
	pair := testbed.NewPair(t)
	g := startQcdGateway(t, pair, qcdGatewayOpts{auth: "psk", espProposals: []string{esp}})
	sc := swanClientFor(t, g, prop, esp)
	swan := testbed.StartStrongSwan(t, pair.Client, sc.Config())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sa, err := swan.Up(ctx, sc)
	if err != nil {
		t.Fatalf("strongSwan client: %v", err)
	}
	if sa.DHGroup != "CURVE_25519" {
		t.Errorf("strongSwan's SA uses %s, want CURVE_25519", sa.DHGroup)
	}
	ev := g.waitEvent("client_connected", 5*time.Second)
	if ke := fmt.Sprint(ev["key_exchanges"]); ke != "[CURVE_25519]" {
		t.Errorf("gateway client_connected.key_exchanges = %s, want [CURVE_25519]", ke)
	}
}
