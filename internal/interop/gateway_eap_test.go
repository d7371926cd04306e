package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

const (
	eapUser     = "alice"
	eapPassword = "Pa55 w0rd-MSCHAPv2"
)

// startQcdEAPGateway is startQcdGateway with auth.eap: the gateway proves
// itself with an ECDSA certificate (gw.example) and lets EAP-MSCHAPv2
// users in; no client CA is configured. With withTLS, EAP-TLS clients
// with certificates of the same CA get in too (auth.eap.tls, auth.ca).
func startQcdEAPGateway(t *testing.T, pair *testbed.Pair, prop, esp string, withTLS bool) *qcdGateway {
	t.Helper()
	pair.Gateway.AddLoopbackAddr(t, netip.PrefixFrom(hostBehind(pair), 32))
	g := &qcdGateway{pair: pair, dir: t.TempDir(), addr: netip.AddrPortFrom(pair.GatewayIP, 4500)}
	g.pki = testbed.NewPKI(t, "ecdsa")
	cert, key := g.pki.Issue(t, "gw.example", "gw.example")
	writeFile(t, filepath.Join(g.dir, "gw.pem"), cert)
	writeFile(t, filepath.Join(g.dir, "gw.key"), key)
	cfg := map[string]any{
		"listen":        []string{pair.GatewayIP.String()},
		"id":            "gw.example",
		"pool":          []string{pair.PoolPrefix().String()},
		"local_ts":      []string{pair.ProtectedPrefix().String()},
		"data":          "tun",
		"state_dir":     filepath.Join(g.dir, "state"),
		"ike_proposals": []string{prop},
		"esp_proposals": []string{esp},
		"auth": map[string]any{"method": "pubkey",
			"cert": filepath.Join(g.dir, "gw.pem"), "key": filepath.Join(g.dir, "gw.key"),
			"eap": map[string]any{"users": map[string]string{eapUser: eapPassword, "bob": "other secret"}}},
	}
	if withTLS {
		a := cfg["auth"].(map[string]any)
		writeFile(t, filepath.Join(g.dir, "ca.pem"), g.pki.CAPEM)
		a["ca"] = filepath.Join(g.dir, "ca.pem")
		a["eap"].(map[string]any)["tls"] = true
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(g.dir, "gateway.json")
	writeFile(t, path, b)
	g.client = startQcdvpn(t, pair.Gateway, "gateway", "-c", path, "--events", "json", "--log-level", "debug")
	g.waitEvent("listening", 15*time.Second)
	return g
}

// TestSwanEAPClientToQcdvpnGateway: strongSwan as the client
// authenticates with EAP-MSCHAPv2 (eap_id alice) against `qcdvpn
// gateway`, which authenticates with its certificate; the client gets a
// virtual IP and pings a host behind the gateway. A wrong password is
// refused with EAP-Failure and no session.
func TestSwanEAPClientToQcdvpnGateway(t *testing.T) {
	requireEnv(t)
	testbed.RequireSwanPlugin(t, "eap-mschapv2", "libcharon-extauth-plugins")
	const prop, esp = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{
		{"ok", eapPassword, true},
		{"wrong_password", eapPassword + "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pair := testbed.NewPair(t)
			g := startQcdEAPGateway(t, pair, prop, esp, false)
			sc := testbed.SwanClient{
				Remote: pair.GatewayIP, NATT: true,
				Proposals: prop, ESPProposals: esp,
				LocalID: "client.example", RemoteID: "gw.example",
				EAPID: eapUser, EAPSecret: tc.password,
				RemoteTS: []netip.Prefix{pair.ProtectedPrefix()},
				Files:    map[string][]byte{"x509ca/ca.pem": g.pki.CAPEM},
			}
			swan := testbed.StartStrongSwan(t, pair.Client, sc.Config())
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sa, err := swan.Up(ctx, sc)
			if !tc.ok {
				if err == nil {
					t.Fatalf("wrong password: strongSwan established %+v", sa)
				}
				if l := logLine(swan.Log(), "EAP_FAILURE"); l == "" {
					t.Errorf("strongSwan log has no EAP_FAILURE:\n%s", swan.Log())
				}
				if evs := g.pending(); len(evs) > 0 {
					for _, ev := range evs {
						if ev["type"] == "client_connected" {
							t.Errorf("gateway connected a client with a wrong password: %v", ev)
						}
					}
				}
				if strings.Contains(g.Stderr(), eapPassword) {
					t.Error("the gateway logged a password")
				}
				return
			}
			if err != nil {
				t.Fatalf("strongSwan client: %v\ngateway stderr:\n%s", err, g.Stderr())
			}
			ev := g.waitEvent("client_connected", 5*time.Second)
			if !strings.Contains(fmt.Sprint(ev["peer"]), eapUser) {
				t.Errorf("client_connected peer = %v, want the EAP identity %s", ev["peer"], eapUser)
			}
			if !strings.EqualFold(fmt.Sprint(ev["ike_spi_i"]), sa.InitiatorSPI) {
				t.Errorf("SPIs: gateway %v, strongSwan %s", ev["ike_spi_i"], sa.InitiatorSPI)
			}
			if l := logLine(swan.Log(), "authentication of 'gw.example' with"); !strings.Contains(l, "with ECDSA_") || !strings.HasSuffix(l, " successful") {
				t.Errorf("strongSwan authenticated the gateway as %q, want ECDSA ... successful", l)
			}
			if l := logLine(swan.Log(), "EAP method EAP_MSCHAPV2 succeeded"); !strings.Contains(l, "MSK established") {
				t.Errorf("strongSwan EAP line %q, want MSCHAPv2 succeeded, MSK established", l)
			}
			if len(sa.LocalVIPs) != 1 || !pair.PoolPrefix().Contains(sa.LocalVIPs[0]) {
				t.Fatalf("strongSwan got virtual IPs %v, want one of %s", sa.LocalVIPs, pair.PoolPrefix())
			}
			if ch, ok := sa.Child("net"); !ok || ch.State != "INSTALLED" {
				t.Errorf("strongSwan child SA = %+v", ch)
			}
			host := hostBehind(pair)
			if err := pair.Client.Ping(ctx, host); err != nil {
				t.Fatalf("ping %s through the tunnel: %v", host, err)
			}
			if strings.Contains(g.Stderr(), eapPassword) {
				t.Error("the gateway logged a password")
			}
			if out, err := swan.Swanctl(ctx, "--terminate", "--ike", "cl"); err != nil {
				t.Fatalf("terminate: %v\n%s", err, out)
			}
			g.waitEvent("client_gone", 5*time.Second)
		})
	}
}
