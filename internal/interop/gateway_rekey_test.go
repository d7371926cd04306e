package interop

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// TestSwanClientRekeysWithQcdvpnGateway: strongSwan as the client rekeys
// its Child SA and then its IKE SA against our gateway (swanctl --rekey):
// the Child SA keeps the traffic selectors it had (our answer's TSi is
// the initiator's side, RFC 7296 §2.9) and carries the ping, with new
// ESP SPIs after the first rekey and new IKE SPIs after the second.
func TestSwanClientRekeysWithQcdvpnGateway(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	const prop, esp = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
	pair := testbed.NewPair(t)
	g := startQcdGateway(t, pair, qcdGatewayOpts{auth: "psk", ikeProposals: []string{prop}, espProposals: []string{esp}})
	sc := swanClientFor(t, g, prop, esp)
	swan := testbed.StartStrongSwan(t, pair.Client, sc.Config())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, err := swan.Up(ctx, sc)
	if err != nil {
		t.Fatalf("strongSwan client: %v", err)
	}
	vip := sa.LocalVIPs[0]
	wantL, wantR := []string{netip.PrefixFrom(vip, 32).String()}, []string{pair.ProtectedPrefix().String()}
	first, _ := sa.Child("net")
	ikeSPI := sa.InitiatorSPI
	host := hostBehind(pair)
	for _, what := range []string{"--child", "--ike"} {
		if out, err := swan.Swanctl(ctx, "--rekey", what, map[string]string{"--child": "net", "--ike": "cl"}[what]); err != nil {
			t.Fatalf("rekey %s: %v\n%s", what, err, out)
		}
		deadline := time.Now().Add(10 * time.Second)
		var ch testbed.ChildSA
		for time.Now().Before(deadline) {
			sas, err := swan.ListSAs(ctx)
			if err == nil && len(sas) == 1 {
				// A Child SA rekey brings new ESP SPIs; an IKE SA rekey new
				// IKE SPIs, the Child SA moving over as it is.
				c, ok := sas[0].Child("net")
				if ok && c.State == "INSTALLED" && (what == "--child" && c.SPIIn != first.SPIIn || what == "--ike" && sas[0].InitiatorSPI != ikeSPI) {
					ikeSPI = sas[0].InitiatorSPI
					ch = c
					break
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		if ch.SPIIn == "" {
			t.Fatalf("after rekey %s: no rekeyed SA installed (log:\n%s)", what, swan.Log())
		}
		if !slices.Equal(ch.LocalTS, wantL) || !slices.Equal(ch.RemoteTS, wantR) {
			t.Errorf("after rekey %s: child TS %v === %v, want %v === %v", what, ch.LocalTS, ch.RemoteTS, wantL, wantR)
		}
		if err := pair.Client.Ping(ctx, host); err != nil {
			t.Fatalf("after rekey %s: ping through the tunnel: %v", what, err)
		}
		first = ch
	}
}

// TestQcdvpnGatewayRekeysSwanClient: our gateway starts the Child SA
// rekey (timers.child_lifetime 10s) towards a strongSwan client: strongSwan
// accepts our CREATE_CHILD_SA (its TSi is the gateway's side, RFC 7296
// §2.9), the new Child SA has the old selectors and carries the ping.
func TestQcdvpnGatewayRekeysSwanClient(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	const prop, esp = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
	pair := testbed.NewPair(t)
	g := startQcdGateway(t, pair, qcdGatewayOpts{auth: "psk", ikeProposals: []string{prop}, espProposals: []string{esp},
		timers: map[string]any{"child_lifetime": "10s"}})
	sc := swanClientFor(t, g, prop, esp)
	swan := testbed.StartStrongSwan(t, pair.Client, sc.Config())
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	sa, err := swan.Up(ctx, sc)
	if err != nil {
		t.Fatalf("strongSwan client: %v", err)
	}
	first, _ := sa.Child("net")
	wantL, wantR := first.LocalTS, first.RemoteTS
	deadline := time.Now().Add(25 * time.Second)
	var ch testbed.ChildSA
	for time.Now().Before(deadline) && ch.SPIIn == "" {
		if sas, err := swan.ListSAs(ctx); err == nil && len(sas) == 1 {
			if c, ok := sas[0].Child("net"); ok && c.State == "INSTALLED" && c.SPIIn != first.SPIIn {
				ch = c
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if ch.SPIIn == "" {
		t.Fatalf("the gateway's rekey did not install a new Child SA in strongSwan (log:\n%s)", swan.Log())
	}
	if !slices.Equal(ch.LocalTS, wantL) || !slices.Equal(ch.RemoteTS, wantR) {
		t.Errorf("after the gateway's rekey: child TS %v === %v, want %v === %v", ch.LocalTS, ch.RemoteTS, wantL, wantR)
	}
	if err := pair.Client.Ping(ctx, hostBehind(pair)); err != nil {
		t.Fatalf("ping after the gateway's rekey: %v", err)
	}
}
