package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// qcdGateway is `qcdvpn gateway` with data "tun" running in a pair's
// gateway namespace: its pool is routed into the gateway's TUN, and
// pair.ProtectedPrefix().Addr().Next() on the namespace's lo stands for a
// host behind it.
type qcdGateway struct {
	*client // the process and its JSON events
	pair    *testbed.Pair
	pki     *testbed.PKI // nil with PSK authentication
	dir     string
	addr    netip.AddrPort // where it listens (port 4500)
}

// qcdGatewayOpts shapes one qcdvpn gateway.
type qcdGatewayOpts struct {
	auth         string   // "psk", "ecdsa", "rsa"
	ikeProposals []string // empty: the gateway's defaults
	espProposals []string
	timers       map[string]any // the config's "timers", if set
	bin          string         // the qcdvpn binary; empty: qcdvpnBin (race build)
	logLevel     string         // empty: info
	ticketKey    string         // 64 hex digits: issue RFC 5723 tickets sealed with it
}

// startQcdGateway writes a gateway config for pair and starts `qcdvpn
// gateway -c CONFIG --events json` in pair.Gateway, returning once it
// reports "listening". With certificates a fresh PKI signs the gateway's
// certificate (gw.example) and is returned for the client's.
func startQcdGateway(t *testing.T, pair *testbed.Pair, o qcdGatewayOpts) *qcdGateway {
	t.Helper()
	pair.Gateway.AddLoopbackAddr(t, netip.PrefixFrom(pair.ProtectedPrefix().Addr().Next(), 32))
	g := &qcdGateway{pair: pair, dir: t.TempDir(), addr: netip.AddrPortFrom(pair.GatewayIP, 4500)}
	cfg := map[string]any{
		"listen":    []string{pair.GatewayIP.String()}, // the default port, 4500
		"id":        "gw.example",
		"pool":      []string{pair.PoolPrefix().String()},
		"local_ts":  []string{pair.ProtectedPrefix().String()},
		"data":      "tun",
		"state_dir": filepath.Join(g.dir, "state"),
	}
	if len(o.ikeProposals) > 0 {
		cfg["ike_proposals"] = o.ikeProposals
	}
	if len(o.espProposals) > 0 {
		cfg["esp_proposals"] = o.espProposals
	}
	if o.ticketKey != "" {
		cfg["tickets"] = map[string]any{"keys": []map[string]string{{"id": "k1", "key_hex": o.ticketKey}}}
	}
	switch o.auth {
	case "psk":
		cfg["auth"] = map[string]any{"method": "psk", "psk": testPSK}
	default:
		g.pki = testbed.NewPKI(t, o.auth)
		cert, key := g.pki.Issue(t, "gw.example", "gw.example")
		writeFile(t, filepath.Join(g.dir, "gw.pem"), cert)
		writeFile(t, filepath.Join(g.dir, "gw.key"), key)
		writeFile(t, filepath.Join(g.dir, "ca.pem"), g.pki.CAPEM)
		cfg["auth"] = map[string]any{"method": "pubkey", "cert": filepath.Join(g.dir, "gw.pem"),
			"key": filepath.Join(g.dir, "gw.key"), "ca": filepath.Join(g.dir, "ca.pem")}
	}
	if o.timers != nil {
		cfg["timers"] = o.timers
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(g.dir, "gateway.json")
	writeFile(t, path, b)
	bin, level := qcdvpnBin, "info"
	if o.bin != "" {
		bin = o.bin
	}
	if o.logLevel != "" {
		level = o.logLevel
	}
	g.client = startBinary(t, pair.Gateway, bin, "gateway", "-c", path, "--events", "json", "--log-level", level)
	ev := g.waitEvent("listening", 15*time.Second)
	if l, _ := ev["listen"].([]any); len(l) != 1 || l[0] != g.addr.String() {
		t.Fatalf("gateway listening on %v, want [%s]", ev["listen"], g.addr)
	}
	return g
}

// hostBehind is the address on the gateway namespace's lo that stands for
// a host behind the gateway.
func hostBehind(pair *testbed.Pair) netip.Addr { return pair.ProtectedPrefix().Addr().Next() }

// swanClientFor is strongSwan's client connection to g: NAT-T from the
// start (g listens on 4500 only), a virtual IP, the protected prefix.
func swanClientFor(t *testing.T, g *qcdGateway, proposal, esp string) testbed.SwanClient {
	t.Helper()
	c := testbed.SwanClient{
		Remote: g.pair.GatewayIP, NATT: true,
		Proposals: proposal, ESPProposals: esp,
		LocalID: "client.example", RemoteID: "gw.example",
		RemoteTS: []netip.Prefix{g.pair.ProtectedPrefix()},
	}
	if g.pki == nil {
		c.PSK = testPSK
		return c
	}
	c.Cert = "client.pem"
	c.Files = g.pki.SwanFiles("client", g.pki.IssueChain(t, 0, "client.example", "client.example"))
	return c
}

// TestSwanClientToQcdvpnGateway: strongSwan as the client initiates to
// `qcdvpn gateway` (data "tun") with PSK and with ECDSA and RSA
// certificates, gets a virtual IP from the gateway's pool, pings a host
// behind the gateway through the tunnel, and closes the SA, which the
// gateway notices.
func TestSwanClientToQcdvpnGateway(t *testing.T) {
	requireEnv(t)
	const prop, esp = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
	for _, auth := range []string{"psk", "ecdsa", "rsa"} {
		t.Run(auth, func(t *testing.T) {
			t.Parallel()
			pair := testbed.NewPair(t)
			g := startQcdGateway(t, pair, qcdGatewayOpts{auth: auth, ikeProposals: []string{prop}, espProposals: []string{esp}})
			sc := swanClientFor(t, g, prop, esp)
			swan := testbed.StartStrongSwan(t, pair.Client, sc.Config())

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sa, err := swan.Up(ctx, sc)
			if err != nil {
				t.Fatalf("strongSwan client: %v", err)
			}
			// Gateway side: the event names the client, its address and
			// the SA strongSwan has.
			ev := g.waitEvent("client_connected", 5*time.Second)
			if ev["peer"] != "client.example" || ev["remote"] != netip.AddrPortFrom(pair.ClientIP, 4500).String() || ev["resumed"] != false {
				t.Errorf("client_connected = %v", ev)
			}
			if !strings.EqualFold(fmt.Sprint(ev["ike_spi_i"]), sa.InitiatorSPI) || !strings.EqualFold(fmt.Sprint(ev["ike_spi_r"]), sa.ResponderSPI) {
				t.Errorf("SPIs: gateway %v/%v, strongSwan %s/%s", ev["ike_spi_i"], ev["ike_spi_r"], sa.InitiatorSPI, sa.ResponderSPI)
			}

			// Client side: swanctl --list-sas.
			if !sa.Initiator || sa.RemoteID != "gw.example" || sa.LocalID != "client.example" ||
				sa.EncrAlg != "AES_GCM_16" || sa.EncrKeysize != 256 || sa.PRFAlg != "PRF_HMAC_SHA2_256" || sa.DHGroup != "CURVE_25519" {
				t.Errorf("strongSwan IKE SA = %+v", sa)
			}
			if sa.LocalPort != 4500 || sa.RemotePort != 4500 || sa.RemoteHost != pair.GatewayIP.String() {
				t.Errorf("IKE SA endpoints %s:%d -> %s:%d, want port 4500 both ways to %s", sa.LocalHost, sa.LocalPort, sa.RemoteHost, sa.RemotePort, pair.GatewayIP)
			}
			if len(sa.LocalVIPs) != 1 || !pair.PoolPrefix().Contains(sa.LocalVIPs[0]) {
				t.Fatalf("strongSwan got virtual IPs %v, want one of %s", sa.LocalVIPs, pair.PoolPrefix())
			}
			vip := sa.LocalVIPs[0]
			if ev["virtual_ip"] != vip.String() {
				t.Errorf("gateway says virtual IP %v, strongSwan has %s", ev["virtual_ip"], vip)
			}
			ch, ok := sa.Child("net")
			if !ok || ch.State != "INSTALLED" || ch.Protocol != "ESP" || !ch.Encap || ch.EncrAlg != "AES_GCM_16" || ch.EncrKeysize != 256 ||
				!slices.Equal(ch.LocalTS, []string{netip.PrefixFrom(vip, 32).String()}) ||
				!slices.Equal(ch.RemoteTS, []string{pair.ProtectedPrefix().String()}) {
				t.Errorf("strongSwan child SA = %+v", ch)
			}
			// Which authentication ran, as strongSwan saw it.
			wantAuth := map[string]string{"psk": "with pre-shared key", "ecdsa": "with ECDSA_", "rsa": "with RSA_"}[auth]
			if l := logLine(swan.Log(), "authentication of 'gw.example' with"); !strings.Contains(l, wantAuth) || !strings.HasSuffix(l, " successful") {
				t.Errorf("strongSwan authenticated the gateway as %q, want %q ... successful", l, wantAuth)
			}

			// Data plane: through kernel-libipsec, qcdvpn's ESP and the
			// gateway's TUN to its namespace and back.
			host := hostBehind(pair)
			if err := pair.Client.Ping(ctx, host); err != nil {
				t.Fatalf("ping %s through the tunnel: %v", host, err)
			}
			sas, err := swan.ListSAs(ctx)
			if err != nil || len(sas) != 1 {
				t.Fatalf("list SAs: %v %+v", err, sas)
			}
			if ch, _ := sas[0].Child("net"); ch.PacketsIn == 0 || ch.PacketsOut == 0 {
				t.Errorf("strongSwan child counters in %d out %d: the ping did not use the SA", ch.PacketsIn, ch.PacketsOut)
			}

			// strongSwan deletes the IKE SA; the gateway lets it go.
			if out, err := swan.Swanctl(ctx, "--terminate", "--ike", "cl"); err != nil {
				t.Fatalf("terminate: %v\n%s", err, out)
			}
			gone := g.waitEvent("client_gone", 5*time.Second)
			if gone["ike_spi_i"] != ev["ike_spi_i"] || gone["peer"] != "client.example" {
				t.Errorf("client_gone = %v, want the SA of %v", gone, ev)
			}
			// A graceful stop removes the gateway's TUN.
			if err := g.stop(); err != nil {
				t.Fatalf("qcdvpn gateway exit: %v", err)
			}
			if out, _ := pair.Gateway.Exec(ctx, "ip", "link", "show"); strings.Contains(string(out), "qcdgw0") {
				t.Errorf("gateway TUN left after exit:\n%s", out)
			}
		})
	}
}

// logLine returns the first line of log containing s, or "".
func logLine(log, s string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// espFor pairs each IKE proposal of the matrix with an ESP suite, so the
// matrix also covers every ESP cipher family. want is strongSwan's
// spelling, typed by hand.
var espFor = map[string]struct {
	proposal string
	want     expectIKE // encr, keysize, integ only
}{
	"aes256gcm16-prfsha256-x25519":      {"aes256gcm16", expectIKE{encr: "AES_GCM_16", keysize: 256}},
	"aes128gcm16-prfsha256-ecp256":      {"aes128gcm16", expectIKE{encr: "AES_GCM_16", keysize: 128}},
	"chacha20poly1305-prfsha256-x25519": {"chacha20poly1305", expectIKE{encr: "CHACHA20_POLY1305"}},
	"aes256-sha256-modp2048":            {"aes256-sha256", expectIKE{encr: "AES_CBC", keysize: 256, integ: "HMAC_SHA2_256_128"}},
	"aes256-sha384-ecp384":              {"aes256-sha384", expectIKE{encr: "AES_CBC", keysize: 256, integ: "HMAC_SHA2_384_192"}},
}

// suiteIs checks a suite as qcdvpn prints it ("AES_GCM_16-256/PRF_…/…")
// against strongSwan's names.
func suiteIs(got string, w expectIKE) bool {
	parts := strings.Split(got, "/")
	if len(parts) == 0 {
		return false
	}
	encr := w.encr
	if w.keysize != 0 {
		encr = fmt.Sprintf("%s-%d", w.encr, w.keysize)
	}
	if parts[0] != encr && !(w.keysize == 0 && strings.HasPrefix(parts[0], w.encr+"-")) {
		return false
	}
	var want []string
	for _, s := range []string{w.integ, w.prf, w.dh} {
		if s != "" {
			want = append(want, s)
		}
	}
	return slices.Equal(parts[1:], want)
}

// TestQcdvpnClientGatewayMatrix: `qcdvpn up` with a kernel TUN against
// `qcdvpn gateway` with a kernel TUN, for every IKE proposal of the
// strongSwan matrix (each with an ESP suite of its family) and every
// authentication method: both sides agree on the SA, a ping crosses the
// tunnel, and a clean exit deletes the SA on the gateway.
func TestQcdvpnClientGatewayMatrix(t *testing.T) {
	requireEnv(t)
	for _, auth := range []string{"psk", "ecdsa", "rsa"} {
		for _, m := range matrix {
			t.Run(auth+"/"+m.proposal, func(t *testing.T) {
				t.Parallel()
				esp := espFor[m.proposal]
				pair := testbed.NewPair(t)
				g := startQcdGateway(t, pair, qcdGatewayOpts{auth: auth, ikeProposals: []string{m.proposal}, espProposals: []string{esp.proposal}})
				e := &env{pair: pair, dir: t.TempDir()}
				p := profileFor(t, e, g.pki, m.proposal)
				p["gateways"] = []string{g.addr.String()}
				p["esp_proposals"] = []string{esp.proposal}
				p["state_dir"] = filepath.Join(e.dir, "state")
				c := startClient(t, pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdm0")
				ev := c.waitEvent("connected", 20*time.Second)

				vip, err := netip.ParseAddr(fmt.Sprint(ev["virtual_ip"]))
				if err != nil || !pair.PoolPrefix().Contains(vip) {
					t.Fatalf("connected.virtual_ip = %v, want an address of %s", ev["virtual_ip"], pair.PoolPrefix())
				}
				if ev["gateway"] != pair.GatewayIP.String() || ev["resumed"] != false {
					t.Errorf("connected = %v", ev)
				}
				if s := fmt.Sprint(ev["ike_suite"]); !suiteIs(s, m.want) {
					t.Errorf("IKE suite %q, want %+v", s, m.want)
				}
				if s := fmt.Sprint(ev["esp_suite"]); !suiteIs(s, esp.want) {
					t.Errorf("ESP suite %q, want %+v", s, esp.want)
				}
				t.Logf("connected: IKE %v, ESP %v, virtual IP %s", ev["ike_suite"], ev["esp_suite"], vip)
				gev := g.waitEvent("client_connected", 5*time.Second)
				if gev["peer"] != "client.example" || gev["virtual_ip"] != vip.String() ||
					gev["ike_spi_i"] != ev["ike_spi_i"] || gev["ike_spi_r"] != ev["ike_spi_r"] {
					t.Errorf("gateway client_connected = %v, client connected = %v", gev, ev)
				}

				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := pair.Client.Ping(ctx, hostBehind(pair)); err != nil {
					t.Fatalf("ping %s through the tunnel: %v", hostBehind(pair), err)
				}

				if err := c.stop(); err != nil {
					t.Fatalf("qcdvpn up exit: %v", err)
				}
				gone := g.waitEvent("client_gone", 5*time.Second)
				if gone["ike_spi_i"] != ev["ike_spi_i"] {
					t.Errorf("client_gone = %v, want the SA %v", gone, ev["ike_spi_i"])
				}
			})
		}
	}
}
