package interop

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

const testPSK = "interop-test-secret-0123456789"

// expectIKE is what `swanctl --list-sas` must show for a proposal; typed by
// hand from strongSwan's algorithm names, independent of our code.
type expectIKE struct {
	encr    string
	keysize int
	integ   string
	prf     string
	dh      string
}

var matrix = []struct {
	proposal string
	want     expectIKE
}{
	{"aes256gcm16-prfsha256-x25519", expectIKE{"AES_GCM_16", 256, "", "PRF_HMAC_SHA2_256", "CURVE_25519"}},
	{"aes128gcm16-prfsha256-ecp256", expectIKE{"AES_GCM_16", 128, "", "PRF_HMAC_SHA2_256", "ECP_256"}},
	{"chacha20poly1305-prfsha256-x25519", expectIKE{"CHACHA20_POLY1305", 0, "", "PRF_HMAC_SHA2_256", "CURVE_25519"}},
	{"aes256-sha256-modp2048", expectIKE{"AES_CBC", 256, "HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256", "MODP_2048"}},
	{"aes256-sha384-ecp384", expectIKE{"AES_CBC", 256, "HMAC_SHA2_384_192", "PRF_HMAC_SHA2_384", "ECP_384"}},
}

// gwOpts shapes one strongSwan gateway.
type gwOpts struct {
	auth         string // "psk", "ecdsa", "rsa"
	ikeProposal  string
	espProposal  string
	localID      string // gateway's id; "-" leaves it out (strongSwan then uses its cert's DN)
	charonExtras string
	connExtras   string // more lines inside the connection
	childExtras  string // more lines inside the child
	chainDepth   int    // intermediate CAs above the gateway certificate
	poolExtras   string // more lines inside pool4 (attributes such as dns)
}

// gateway starts strongSwan in a fresh pair and returns what a client
// profile needs. With certificates, pki signs both sides.
func gateway(t *testing.T, o gwOpts) (*env, *testbed.PKI) {
	t.Helper()
	return gatewayOn(t, testbed.NewPair(t), o)
}

// gatewayOn starts strongSwan in pair's gateway namespace (pair may stand
// for another topology, such as a NAT chain).
func gatewayOn(t *testing.T, pair *testbed.Pair, o gwOpts) (*env, *testbed.PKI) {
	t.Helper()
	pair.Gateway.AddLoopbackAddr(t, netip.PrefixFrom(pair.ProtectedPrefix().Addr().Next(), 32))
	if o.espProposal == "" {
		o.espProposal = "aes256gcm16"
	}
	if o.localID == "" {
		o.localID = "gw.example"
	}
	cfg := testbed.SwanConfig{Files: map[string][]byte{}, CharonOptions: o.charonExtras}
	idLine := "id = " + o.localID
	if o.localID == "-" {
		idLine = ""
	}
	var local, remote string
	var pki *testbed.PKI
	switch o.auth {
	case "psk":
		local = "auth = psk\n" + idLine
		remote = "auth = psk\nid = client.example"
		cfg.Secrets = fmt.Sprintf("ike-1 {\nid-1 = client.example\nsecret = %q\n}", testPSK)
	default:
		pki = testbed.NewPKI(t, o.auth)
		chain := pki.IssueChain(t, o.chainDepth, "gw.example", "gw.example")
		for k, v := range pki.SwanFiles("gw", chain) {
			cfg.Files[k] = v
		}
		local = "auth = pubkey\ncerts = gw.pem\n" + idLine
		remote = "auth = pubkey\nid = client.example"
	}
	cfg.Connections = fmt.Sprintf(`rw {
version = 2
proposals = %s
pools = pool4
%s
local {
%s
}
remote {
%s
}
children {
net {
local_ts = %s
esp_proposals = %s
%s
}
}
}`, o.ikeProposal, o.connExtras, local, remote, pair.ProtectedPrefix(), o.espProposal, o.childExtras)
	cfg.Pools = fmt.Sprintf("pool4 {\naddrs = %s\n%s\n}", pair.PoolPrefix(), o.poolExtras)
	swan := testbed.StartStrongSwan(t, pair.Gateway, cfg)
	return &env{pair: pair, swan: swan, swanCfg: cfg, dir: t.TempDir()}, pki
}

// profileFor builds a client profile for e.
func profileFor(t *testing.T, e *env, pki *testbed.PKI, ikeProposal string) map[string]any {
	p := map[string]any{
		"name":          "interop",
		"gateways":      []string{e.pair.GatewayIP.String()},
		"remote_id":     "gw.example",
		"local_id":      "client.example",
		"ike_proposals": []string{ikeProposal},
		"esp_proposals": []string{"aes256gcm16"},
		"traffic":       map[string]any{"include": []string{e.pair.ProtectedPrefix().String()}},
		"timers":        map[string]any{"retransmit_timeout": "500ms", "retransmit_tries": 3},
	}
	if pki == nil {
		p["auth"] = map[string]any{"method": "psk", "psk": testPSK}
		return p
	}
	cert, key := pki.Issue(t, "client.example", "client.example")
	writeFile(t, filepath.Join(e.dir, "client.pem"), cert)
	writeFile(t, filepath.Join(e.dir, "client.key"), key)
	writeFile(t, filepath.Join(e.dir, "ca.pem"), pki.CAPEM)
	p["auth"] = map[string]any{"method": "pubkey", "cert": filepath.Join(e.dir, "client.pem"), "key": filepath.Join(e.dir, "client.key")}
	p["ca"] = filepath.Join(e.dir, "ca.pem")
	return p
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestInteropMatrix connects to strongSwan with every proposal of the
// matrix and every authentication method, and checks both sides.
func TestInteropMatrix(t *testing.T) {
	requireEnv(t)
	for _, auth := range []string{"psk", "ecdsa", "rsa"} {
		for _, m := range matrix {
			t.Run(auth+"/"+m.proposal, func(t *testing.T) {
				t.Parallel()
				e, pki := gateway(t, gwOpts{auth: auth, ikeProposal: m.proposal})
				prof := writeProfile(t, e.dir, profileFor(t, e, pki, m.proposal))
				c := startClient(t, e.pair.Client, prof)
				c.waitEvent("connecting", 10*time.Second)
				ev := c.waitEvent("connected", 20*time.Second)

				// Client side: the virtual IP comes from the gateway's pool.
				vip, err := netip.ParseAddr(fmt.Sprint(ev["virtual_ip"]))
				if err != nil || !e.pair.PoolPrefix().Contains(vip) {
					t.Fatalf("connected.virtual_ip = %v, want an address of %s", ev["virtual_ip"], e.pair.PoolPrefix())
				}
				if ev["gateway"] != e.pair.GatewayIP.String() || ev["resumed"] != false {
					t.Errorf("connected event = %v", ev)
				}

				// Gateway side: the SAs and their algorithms.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				sa, err := e.swan.WaitSA(ctx, "rw", nil)
				if err != nil {
					t.Fatalf("strongSwan has no established SA: %v", err)
				}
				w := m.want
				if sa.EncrAlg != w.encr || (w.keysize != 0 && sa.EncrKeysize != w.keysize) || sa.IntegAlg != w.integ || sa.PRFAlg != w.prf || sa.DHGroup != w.dh {
					t.Errorf("IKE SA algorithms = %s-%d/%s/%s/%s, want %+v", sa.EncrAlg, sa.EncrKeysize, sa.IntegAlg, sa.PRFAlg, sa.DHGroup, w)
				}
				if !strings.EqualFold(sa.InitiatorSPI, fmt.Sprint(ev["ike_spi_i"])) || !strings.EqualFold(sa.ResponderSPI, fmt.Sprint(ev["ike_spi_r"])) {
					t.Errorf("SPIs: strongSwan %s/%s, client %v/%v", sa.InitiatorSPI, sa.ResponderSPI, ev["ike_spi_i"], ev["ike_spi_r"])
				}
				if sa.RemoteID != "client.example" {
					t.Errorf("strongSwan sees remote id %q", sa.RemoteID)
				}
				if len(sa.RemoteVIPs) != 1 || sa.RemoteVIPs[0] != vip {
					t.Errorf("strongSwan assigned %v, client reports %s", sa.RemoteVIPs, vip)
				}
				if len(sa.Children) != 1 {
					t.Fatalf("strongSwan has %d child SAs, want 1", len(sa.Children))
				}
				ch := sa.Children[0]
				if ch.State != "INSTALLED" || ch.Protocol != "ESP" || !ch.Encap || ch.EncrAlg != "AES_GCM_16" || ch.EncrKeysize != 256 {
					t.Errorf("child SA = %+v", ch)
				}
				if sa.RemotePort != 0 && sa.LocalPort != 4500 {
					t.Errorf("IKE SA did not float to port 4500: local port %d", sa.LocalPort)
				}

				// A clean shutdown deletes the SA on the gateway.
				if err := c.stop(); err != nil {
					t.Fatalf("qcdvpn up exit: %v", err)
				}
				waitNoSA(t, e.swan)
			})
		}
	}
}

func waitNoSA(t *testing.T, s *testbed.StrongSwan) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		sas, err := s.ListSAs(context.Background())
		if err == nil && len(sas) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("strongSwan still has SAs 5 s after the client closed")
}

// expectFailure runs the client and checks it exits non-zero in time with
// one stderr line containing want.
func expectFailure(t *testing.T, e *env, prof map[string]any, want string, within time.Duration) {
	t.Helper()
	path := writeProfile(t, e.dir, prof)
	start := time.Now()
	c := startClient(t, e.pair.Client, path)
	err, ok := c.wait(within)
	if !ok {
		t.Fatalf("client still running after %s; stderr:\n%s", within, c.Stderr())
	}
	if err == nil {
		t.Fatalf("client exited 0, want failure with %q", want)
	}
	var last string
	for _, l := range strings.Split(strings.TrimSpace(c.Stderr()), "\n") {
		if strings.HasPrefix(l, "qcdvpn: ") {
			last = l
		}
		if strings.Contains(l, "panic") || strings.Contains(l, "goroutine ") {
			t.Fatalf("panic output: %s", c.Stderr())
		}
	}
	if !strings.Contains(last, want) {
		t.Fatalf("error line %q does not contain %q; stderr:\n%s", last, want, c.Stderr())
	}
	t.Logf("failed as expected after %s: %s", time.Since(start).Round(time.Millisecond), last)
}

func TestInteropNegative(t *testing.T) {
	requireEnv(t)
	const prop = "aes256gcm16-prfsha256-x25519"
	t.Run("wrong-psk", func(t *testing.T) {
		t.Parallel()
		e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: prop})
		p := profileFor(t, e, nil, prop)
		p["auth"] = map[string]any{"method": "psk", "psk": "not-the-secret"}
		expectFailure(t, e, p, "authentication failed", 15*time.Second)
	})
	t.Run("untrusted-gateway-cert", func(t *testing.T) {
		t.Parallel()
		// strongSwan trusts our certificate; we trust another CA than its.
		e, pki := gateway(t, gwOpts{auth: "ecdsa", ikeProposal: prop})
		p := profileFor(t, e, pki, prop)
		other := testbed.NewPKI(t, "ecdsa")
		writeFile(t, filepath.Join(e.dir, "ca.pem"), other.CAPEM)
		expectFailure(t, e, p, "gateway certificate", 15*time.Second)
	})
	t.Run("gateway-identity-mismatch", func(t *testing.T) {
		t.Parallel()
		// Without an id strongSwan identifies with its certificate's DN,
		// not the FQDN the profile expects. IDr is not sent, or strongSwan
		// would refuse the mismatch before we see it.
		e, pki := gateway(t, gwOpts{auth: "ecdsa", ikeProposal: prop, localID: "-"})
		p := profileFor(t, e, pki, prop)
		p["send_remote_id"] = false
		expectFailure(t, e, p, "gateway identity mismatch", 15*time.Second)
	})
	t.Run("no-proposal-overlap", func(t *testing.T) {
		t.Parallel()
		e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: prop})
		p := profileFor(t, e, nil, "aes128-sha256-modp3072")
		expectFailure(t, e, p, "NO_PROPOSAL_CHOSEN", 15*time.Second)
	})
	t.Run("gateway-silent", func(t *testing.T) {
		t.Parallel()
		pair := testbed.NewPair(t)
		e := &env{pair: pair, dir: t.TempDir()}
		p := profileFor(t, e, nil, prop)
		// 500 ms, doubling, 3 tries: 3.5 s budget.
		expectFailure(t, e, p, "no response from gateway", 10*time.Second)
	})
}

// TestInteropCookieAndKERetry: strongSwan demands a cookie and prefers
// another DH group than the client's first; the client still connects.
func TestInteropCookieAndKERetry(t *testing.T) {
	requireEnv(t)
	// strongSwan asks for cookies once this many IKE SAs are half open.
	e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: "aes256gcm16-prfsha256-ecp384-x25519",
		charonExtras: "cookie_threshold = 1\nblock_threshold = 1000"})
	halfOpen(t, e)
	p := profileFor(t, e, nil, "aes256gcm16-prfsha256-x25519-ecp384")
	c := startClient(t, e.pair.Client, writeProfile(t, e.dir, p))
	c.waitEvent("connected", 20*time.Second)
	sa, err := e.swan.WaitSA(context.Background(), "rw", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sa.DHGroup != "ECP_384" {
		t.Errorf("DH group %q, want ECP_384 (the gateway's preference)", sa.DHGroup)
	}
	log := e.swan.Log()
	if !strings.Contains(log, "generating IKE_SA_INIT response 0 [ N(COOKIE) ]") {
		t.Errorf("strongSwan's log shows no COOKIE exchange")
	}
	if !strings.Contains(log, "generating IKE_SA_INIT response 0 [ N(INVAL_KE) ]") {
		t.Errorf("strongSwan's log shows no INVALID_KE_PAYLOAD")
	}
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
}

// halfOpen leaves one IKE SA half open on the gateway: an IKE_SA_INIT
// request from another port that is never followed by IKE_AUTH.
func halfOpen(t *testing.T, e *env) {
	t.Helper()
	pc, err := e.pair.Client.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ke, err := ikecrypto.NewKeyExchange(ikecrypto.GroupECP384, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	m := wire.Message{
		Header: wire.Header{SPIi: 0x1122334455667788, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagInitiator},
		Payloads: []wire.Payload{
			&wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{
				{Type: wire.TransformEncr, ID: ikecrypto.EncrAESGCM16, KeyLength: 256},
				{Type: wire.TransformPRF, ID: ikecrypto.PRFHMACSHA2_256},
				{Type: wire.TransformKE, ID: ikecrypto.GroupECP384},
			}}}},
			&wire.KE{Group: ikecrypto.GroupECP384, Data: ke.PublicKey()},
			&wire.Nonce{Data: nonce},
		},
	}
	raw, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	gw := &net.UDPAddr{IP: e.pair.GatewayIP.AsSlice(), Port: 500}
	if _, err := pc.WriteTo(raw, gw); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("half-open IKE_SA_INIT got no answer: %v", err)
	}
	resp, err := wire.Parse(buf[:n])
	if err != nil || wire.Find[*wire.KE](resp.Payloads) == nil {
		t.Fatalf("half-open IKE_SA_INIT: unexpected answer %v (%v)", resp, err)
	}
}
