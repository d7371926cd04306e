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

// TestSwanEAPTLSClientToQcdvpnGateway: strongSwan as the client
// authenticates with EAP-TLS against `qcdvpn gateway` (which offers
// MSCHAPv2 first: strongSwan Naks it for EAP-TLS); ping flows.
func TestSwanEAPTLSClientToQcdvpnGateway(t *testing.T) {
	requireEnv(t)
	testbed.RequireSwanPlugin(t, "eap-tls", "libcharon-extra-plugins")
	t.Parallel()
	const prop, esp = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
	pair := testbed.NewPair(t)
	g := startQcdEAPGateway(t, pair, prop, esp, true)
	files := g.pki.SwanFiles("client", g.pki.IssueChain(t, 0, "client.example", "client.example"))
	sc := testbed.SwanClient{
		Remote: pair.GatewayIP, NATT: true,
		Proposals: prop, ESPProposals: esp,
		LocalID: "client.example", RemoteID: "gw.example",
		EAPTLS: true, Cert: "client.pem",
		RemoteTS: []netip.Prefix{pair.ProtectedPrefix()},
		Files:    files,
	}
	swan := testbed.StartStrongSwan(t, pair.Client, sc.Config())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := swan.Up(ctx, sc)
	if err != nil {
		t.Fatalf("strongSwan client: %v\ngateway stderr:\n%s", err, g.Stderr())
	}
	ev := g.waitEvent("client_connected", 5*time.Second)
	if !strings.Contains(fmt.Sprint(ev["peer"]), "client.example") {
		t.Errorf("client_connected peer = %v", ev["peer"])
	}
	log := swan.Log()
	if l := logLine(log, "EAP method EAP_TLS succeeded"); !strings.Contains(l, "MSK established") {
		t.Errorf("strongSwan EAP line %q, want EAP_TLS succeeded, MSK established", l)
	}
	if l := logLine(log, "authentication of 'gw.example' with EAP"); !strings.HasSuffix(l, " successful") {
		t.Errorf("strongSwan did not verify the gateway's MSK-keyed AUTH: %q", l)
	}
	if logLine(log, "EAP_NAK") == "" {
		t.Errorf("strongSwan log shows no EAP_NAK (MSCHAPv2 is offered first)")
	}
	if err := pair.Client.Ping(ctx, hostBehind(pair)); err != nil {
		t.Fatalf("ping through the tunnel: %v", err)
	}
}

// TestQcdvpnEAPTLSClientToQcdvpnGateway: our client with EAP-TLS against
// our gateway, both processes in their namespaces; ping flows.
func TestQcdvpnEAPTLSClientToQcdvpnGateway(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	const prop, esp = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
	pair := testbed.NewPair(t)
	g := startQcdEAPGateway(t, pair, prop, esp, true)
	dir := t.TempDir()
	cert, key := g.pki.Issue(t, "client.example", "client.example")
	writeFile(t, filepath.Join(dir, "client.pem"), cert)
	writeFile(t, filepath.Join(dir, "client.key"), key)
	writeFile(t, filepath.Join(dir, "ca.pem"), g.pki.CAPEM)
	p := map[string]any{
		"name": "eap-tls", "gateways": []string{g.addr.String()},
		"remote_id": "gw.example", "local_id": "client.example",
		"auth": map[string]any{"method": "eap-tls", "cert": filepath.Join(dir, "client.pem"), "key": filepath.Join(dir, "client.key")},
		"ca":   filepath.Join(dir, "ca.pem"), "ike_proposals": []string{prop}, "esp_proposals": []string{esp},
		"traffic": map[string]any{"include": []string{pair.ProtectedPrefix().String()}},
	}
	c := startClient(t, pair.Client, writeProfile(t, dir, p))
	c.waitEvent("connected", 20*time.Second)
	ev := g.waitEvent("client_connected", 5*time.Second)
	if !strings.Contains(fmt.Sprint(ev["peer"]), "client.example") {
		t.Errorf("client_connected peer = %v", ev["peer"])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pair.Client.Ping(ctx, hostBehind(pair)); err != nil {
		t.Fatalf("ping through the tunnel: %v", err)
	}
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
}
