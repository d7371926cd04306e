package e2e

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// TestRedirectFailover: a gateway that redirects (RFC 5685) in
// IKE_SA_INIT, in IKE_AUTH, or for an established SA sends the client to
// the target, which is in none of the profile's gateways; the failover
// event says why, and traffic flows through the target.
func TestRedirectFailover(t *testing.T) {
	for _, phase := range []string{"IKE_SA_INIT", "IKE_AUTH", "session"} {
		t.Run(phase, func(t *testing.T) {
			dir := t.TempDir()
			target := startGateway(t, gatewayConfig(loopbackAddr(t), filepath.Join(dir, "b"), gwOpts{}))
			cfg := gatewayConfig(loopbackAddr(t), filepath.Join(dir, "a"), gwOpts{})
			switch phase {
			case "IKE_SA_INIT":
				cfg.Redirect.InitTo = target.addr.Addr().String()
			case "IKE_AUTH":
				cfg.Redirect.AuthTo = target.addr.Addr().String()
			}
			a := startGateway(t, cfg)
			c := newClient(t, profileJSON([]netip.AddrPort{a.addr}, nil), filepath.Join(dir, "client"))
			c.connect()
			if phase == "session" {
				echoOnce(t, c.c)
				if n, err := a.g.RedirectAll(target.addr.Addr().String()); err != nil || n != 1 {
					t.Fatalf("RedirectAll: %d, %v", n, err)
				}
			}
			_, _, ok := c.ev.wait(10*time.Second, 0, func(e sdk.Event) bool {
				return e.Type == sdk.EventConnected && e.Gateway == target.addr.Addr().String()
			})
			if !ok {
				t.Fatalf("not connected to the redirect target; events: %s", eventTypes(c.ev.snapshot()))
			}
			f, _, ok := c.ev.wait(time.Second, 0, ofType(sdk.EventFailover))
			if !ok || f.Reason != "redirect" || f.To != target.addr.Addr().String() || f.From != a.addr.Addr().String() {
				t.Errorf("failover event %+v, want from %s to %s, reason redirect", f, a.addr.Addr(), target.addr.Addr())
			}
			echoOnce(t, c.c)
			if _, _, ok := a.ev.wait(2*time.Second, 0, gwOfType("redirect")); !ok {
				t.Error("the redirecting gateway reported no redirect event")
			}
		})
	}
}
