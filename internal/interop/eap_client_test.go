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

// eapSwanGateway starts strongSwan as an EAP gateway: it authenticates
// with a certificate (gw.example, keyType "ecdsa" or "rsa") and its clients with remoteAuth
// ("eap-mschapv2" with the user alice, or "eap-tls" with certificates of
// the same CA), asking for the EAP identity (eap_id = %any).
func eapSwanGateway(t *testing.T, remoteAuth, charonOpts, keyType string) (*env, *testbed.PKI) {
	t.Helper()
	pair := testbed.NewPair(t)
	pair.Gateway.AddLoopbackAddr(t, netip.PrefixFrom(hostBehind(pair), 32))
	pki := testbed.NewPKI(t, keyType)
	cfg := testbed.SwanConfig{Files: pki.SwanFiles("gw", pki.IssueChain(t, 0, "gw.example", "gw.example")), CharonOptions: charonOpts}
	cfg.Connections = fmt.Sprintf(`rw {
version = 2
proposals = aes256gcm16-prfsha256-x25519
pools = pool4
local {
auth = pubkey
certs = gw.pem
id = gw.example
}
remote {
auth = %s
eap_id = %%any
}
children {
net {
local_ts = %s
esp_proposals = aes256gcm16
}
}
}`, remoteAuth, pair.ProtectedPrefix())
	cfg.Secrets = fmt.Sprintf("eap-alice {\nid = %s\nsecret = %q\n}", eapUser, eapPassword)
	cfg.Pools = fmt.Sprintf("pool4 {\naddrs = %s\n}", pair.PoolPrefix())
	swan := testbed.StartStrongSwan(t, pair.Gateway, cfg)
	return &env{pair: pair, swan: swan, swanCfg: cfg, dir: t.TempDir()}, pki
}

// eapProfile is a client profile for e with auth (the CA is pki's).
func eapProfile(t *testing.T, e *env, pki *testbed.PKI, auth map[string]any) map[string]any {
	writeFile(t, filepath.Join(e.dir, "ca.pem"), pki.CAPEM)
	return map[string]any{
		"name":          "eap",
		"gateways":      []string{e.pair.GatewayIP.String()},
		"remote_id":     "gw.example",
		"local_id":      "client.example",
		"auth":          auth,
		"ca":            filepath.Join(e.dir, "ca.pem"),
		"ike_proposals": []string{"aes256gcm16-prfsha256-x25519"},
		"esp_proposals": []string{"aes256gcm16"},
		"traffic":       map[string]any{"include": []string{e.pair.ProtectedPrefix().String()}},
		"timers":        map[string]any{"retransmit_timeout": "500ms", "retransmit_tries": 3},
	}
}

// checkEAPConnected waits for connected, checks strongSwan's view of the
// SA and its EAP method, and pings a host behind the gateway.
func checkEAPConnected(t *testing.T, e *env, c *client, method, eapID string) {
	t.Helper()
	ev := c.waitEvent("connected", 20*time.Second)
	t.Logf("connected in %v ms", ev["elapsed_ms"])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, err := e.swan.WaitSA(ctx, "rw", nil)
	if err != nil {
		t.Fatalf("strongSwan has no established SA: %v", err)
	}
	if !strings.EqualFold(sa.InitiatorSPI, fmt.Sprint(ev["ike_spi_i"])) || !strings.EqualFold(sa.ResponderSPI, fmt.Sprint(ev["ike_spi_r"])) {
		t.Errorf("SPIs: strongSwan %s/%s, client %v/%v", sa.InitiatorSPI, sa.ResponderSPI, ev["ike_spi_i"], ev["ike_spi_r"])
	}
	// strongSwan shows the EAP identity only where it differs from IDi.
	if sa.RemoteID != "client.example" || sa.RemoteEAPID != eapID && !(eapID == sa.RemoteID && sa.RemoteEAPID == "") {
		t.Errorf("strongSwan sees remote id %q, EAP id %q, want client.example, %q", sa.RemoteID, sa.RemoteEAPID, eapID)
	}
	log := e.swan.Log()
	if l := logLine(log, "EAP method "+method+" succeeded"); !strings.Contains(l, "MSK established") {
		t.Errorf("strongSwan's EAP line %q, want %s succeeded, MSK established", l, method)
	}
	if l := logLine(log, "authentication of 'client.example' with EAP successful"); l == "" {
		t.Errorf("strongSwan did not verify our MSK-keyed AUTH:\n%s", log)
	}
	vip, err := netip.ParseAddr(fmt.Sprint(ev["virtual_ip"]))
	if err != nil || !e.pair.PoolPrefix().Contains(vip) {
		t.Errorf("virtual_ip %v, want one of %s", ev["virtual_ip"], e.pair.PoolPrefix())
	}
	if err := e.pair.Client.Ping(ctx, hostBehind(e.pair)); err != nil {
		t.Fatalf("ping %s through the tunnel: %v", hostBehind(e.pair), err)
	}
	if strings.Contains(c.Stderr(), eapPassword) {
		t.Error("the client logged the password")
	}
	if err := c.stop(); err != nil {
		t.Fatalf("qcdvpn up exit: %v", err)
	}
	waitNoSA(t, e.swan)
}

// TestInteropEAPMSCHAPv2: our client authenticates to strongSwan with
// EAP-MSCHAPv2 (user alice), strongSwan with its certificate; ping flows.
func TestInteropEAPMSCHAPv2(t *testing.T) {
	requireEnv(t)
	testbed.RequireSwanPlugin(t, "eap-mschapv2", "libcharon-extauth-plugins")
	testbed.RequireSwanPlugin(t, "eap-identity", "libcharon-extra-plugins")
	t.Parallel()
	e, pki := eapSwanGateway(t, "eap-mschapv2", "", "ecdsa")
	p := eapProfile(t, e, pki, map[string]any{"method": "eap-mschapv2", "username": eapUser, "password": eapPassword})
	c := startClient(t, e.pair.Client, writeProfile(t, e.dir, p))
	checkEAPConnected(t, e, c, "EAP_MSCHAPV2", eapUser)
}

// TestInteropEAPTLS: our client authenticates to strongSwan with EAP-TLS
// (its certificate client.example from the gateway's CA) in TLS 1.2, with
// strongSwan's default libtls settings and with TLS 1.3 enabled there
// (strongSwan 5.9.8's TLS 1.3 CertificateRequest carries an empty
// certificate_authorities extension, invalid per RFC 8446 and rejected by
// crypto/tls, so the client stays at 1.2, which both accept); ping flows.
func TestInteropEAPTLS(t *testing.T) {
	requireEnv(t)
	testbed.RequireSwanPlugin(t, "eap-tls", "libcharon-extra-plugins")
	testbed.RequireSwanPlugin(t, "eap-identity", "libcharon-extra-plugins")
	for _, tc := range []struct{ name, opts, keyType string }{
		{"tls12", "", "ecdsa"},
		// RSA certificates make both flights longer than one EAP-TLS
		// fragment (1 KiB), so both sides fragment and acknowledge.
		{"tls12-rsa", "", "rsa"},
		// strongswan.conf's libtls section sits outside charon's.
		{"tls13-enabled", "}\nlibtls {\nversion_max = 1.3\n}\ncharon {", "ecdsa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// charon's TLS stack logs why a handshake fails at level 2.
			e, pki := eapSwanGateway(t, "eap-tls", "filelog {\ntestbed {\ntls = 2\n}\n}\n"+tc.opts, tc.keyType)
			cert, key := pki.Issue(t, "client.example", "client.example")
			writeFile(t, filepath.Join(e.dir, "client.pem"), cert)
			writeFile(t, filepath.Join(e.dir, "client.key"), key)
			p := eapProfile(t, e, pki, map[string]any{"method": "eap-tls",
				"cert": filepath.Join(e.dir, "client.pem"), "key": filepath.Join(e.dir, "client.key")})
			c := startClient(t, e.pair.Client, writeProfile(t, e.dir, p))
			checkEAPConnected(t, e, c, "EAP_TLS", "client.example")
			log := e.swan.Log()
			// ClientHello, our flight, the last acknowledgement: 3 TLS
			// responses without fragments, more with them.
			if n := strings.Count(log, "[ EAP/RES/TLS ]"); tc.keyType == "rsa" && n < 5 || n < 3 {
				t.Errorf("strongSwan parsed %d EAP-TLS responses", n)
			} else {
				t.Logf("%d EAP-TLS responses", n)
			}
			if l := logLine(log, "negotiated TLS"); !strings.Contains(l, "negotiated TLS 1.2") {
				t.Errorf("strongSwan's TLS line: %q, want TLS 1.2", l)
			}
		})
	}
}

// TestInteropEAPWrongPassword: strongSwan refuses a wrong MSCHAPv2
// password (after its own 2 s delay, with an MSCHAPv2 failure that allows
// a retry, which the client declines); the client reports connect_failed
// with reason "authentication failed" and exits in under 5 s, without
// trying the second gateway of its list or retrying.
func TestInteropEAPWrongPassword(t *testing.T) {
	requireEnv(t)
	testbed.RequireSwanPlugin(t, "eap-mschapv2", "libcharon-extauth-plugins")
	testbed.RequireSwanPlugin(t, "eap-identity", "libcharon-extra-plugins")
	t.Parallel()
	e, pki := eapSwanGateway(t, "eap-mschapv2", "", "ecdsa")
	p := eapProfile(t, e, pki, map[string]any{"method": "eap-mschapv2", "username": eapUser, "password": "not the password"})
	second := e.pair.GatewayIP.Next().Next().String()
	p["gateways"] = []string{e.pair.GatewayIP.String(), second}
	start := time.Now()
	c := startClient(t, e.pair.Client, writeProfile(t, e.dir, p))
	var evs []map[string]any
	deadline := time.After(10 * time.Second)
read:
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				break read
			}
			evs = append(evs, ev)
		case <-deadline:
			t.Fatalf("client still running after 10 s; events %v; stderr:\n%s", types(evs), c.Stderr())
		}
	}
	<-c.exited
	took := time.Since(start)
	t.Logf("client exited %s after start (%v)", took.Round(time.Millisecond), c.err)
	if c.err == nil {
		t.Fatal("client exited 0 with a wrong password")
	}
	if took >= 5*time.Second {
		t.Errorf("wrong password took %s, want under 5 s", took)
	}
	var failed map[string]any
	for _, ev := range evs {
		switch {
		case ev["type"] == "connecting" && strings.HasPrefix(fmt.Sprint(ev["gateway"]), second):
			t.Errorf("the client tried the second gateway after its credentials were refused: %v", ev)
		case ev["type"] == "connected":
			t.Errorf("connected with a wrong password: %v", ev)
		case ev["type"] == "connect_failed":
			if failed != nil {
				t.Errorf("second connect_failed (a retry): %v", ev)
			}
			failed = ev
		}
	}
	if failed == nil || failed["reason"] != "authentication failed" || !strings.Contains(fmt.Sprint(failed["error"]), "authentication failed") {
		t.Errorf("connect_failed = %v, want reason \"authentication failed\"", failed)
	}
	var last string
	for _, l := range strings.Split(strings.TrimSpace(c.Stderr()), "\n") {
		if strings.HasPrefix(l, "qcdvpn: ") {
			last = l
		}
	}
	if !strings.Contains(last, "authentication failed") {
		t.Errorf("error line %q, want authentication failed; stderr:\n%s", last, c.Stderr())
	}
	if strings.Contains(c.Stderr(), "not the password") {
		t.Error("the client logged the password")
	}
	if l := logLine(e.swan.Log(), "EAP method EAP_MSCHAPV2 failed"); l == "" {
		t.Logf("strongSwan log:\n%s", e.swan.Log())
	}
	t.Logf("error: %s", last)
}
