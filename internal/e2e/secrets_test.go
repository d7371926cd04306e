package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/gateway"
	"github.com/qcdvpn/qcdvpn/ike/eap"
	"github.com/qcdvpn/qcdvpn/ike/wire"
	"github.com/qcdvpn/qcdvpn/internal/testbed"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// logSink collects everything a component writes: slog at debug level (the
// most a user can turn on) and its events, as JSON lines.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (s *logSink) event(e any) {
	b, err := json.Marshal(e)
	if err != nil {
		b = []byte(fmt.Sprintf("unmarshalable event %T: %v", e, err))
	}
	fmt.Fprintf(s, "event %s\nevent %+v\n", b, e)
}

func (s *logSink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

// secret is one value that must never be written out, by name.
type secret struct {
	name string
	val  []byte
}

// leaks returns the secrets found in out in any of the forms a careless
// log line would use: raw, hex (either case), base64 (standard and URL).
func leaks(out []byte, secrets []secret) []string {
	var found []string
	for _, s := range secrets {
		if len(s.val) < 8 {
			panic("secret " + s.name + " too short to search for")
		}
		for form, v := range map[string]string{
			"raw":    string(s.val),
			"hex":    hex.EncodeToString(s.val),
			"HEX":    strings.ToUpper(hex.EncodeToString(s.val)),
			"base64": base64.StdEncoding.EncodeToString(s.val),
			"b64url": base64.RawURLEncoding.EncodeToString(s.val),
		} {
			// Long values leak in part too (a truncated line): search
			// for every 24-character window of the encoding, and the
			// whole for short ones.
			if len(v) <= 24 {
				if bytes.Contains(out, []byte(v)) {
					found = append(found, s.name+" ("+form+")")
				}
				continue
			}
			for i := 0; i+24 <= len(v); i += 12 {
				if bytes.Contains(out, []byte(v[i:i+24])) {
					found = append(found, fmt.Sprintf("%s (%s, from offset %d)", s.name, form, i))
					break
				}
			}
		}
	}
	return found
}

// keySecrets are the ways a private key in PEM can leak: the PEM body
// lines, the DER, and the key's own secret scalar or primes.
func keySecrets(t *testing.T, name string, keyPEM []byte) []secret {
	t.Helper()
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		t.Fatalf("%s: no PEM", name)
	}
	out := []secret{{name + " DER", blk.Bytes}}
	for i, line := range strings.Split(string(keyPEM), "\n") {
		if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
			out = append(out, secret{fmt.Sprintf("%s PEM line %d", name, i), []byte(line)})
		}
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		d, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, secret{name + " scalar", d})
	case *rsa.PrivateKey:
		out = append(out, secret{name + " d", k.D.Bytes()})
		for i, p := range k.Primes {
			out = append(out, secret{fmt.Sprintf("%s prime %d", name, i), p.Bytes()})
		}
	default:
		t.Fatalf("%s: key type %T", name, k)
	}
	return out
}

// TestSecretsNeverLogged runs whole sessions between the SDK client and an
// in-process gateway, with every log of both at debug level and every
// event captured, through connect, traffic, a Child SA and an IKE SA
// rekey and the close, and searches that output for the
// secrets the test configured or the session made: the PSK, the EAP-MSCHAPv2
// password (a whole EAP run; also its NT hash), both private keys (PEM lines, DER,
// scalar), SK_d of each IKE SA and the ESP keys of each Child SA. Sanity:
// the output does name the SPIs, so a search that finds nothing is not
// searching an empty log.
func TestSecretsNeverLogged(t *testing.T) {
	for _, method := range []string{"psk", "pubkey", "eap-mschapv2"} {
		t.Run(method, func(t *testing.T) {
			dir := t.TempDir()
			addr := loopbackAddr(t)
			var secrets []secret
			psk := []byte("e2e-psk-" + randomHex(16))
			password := "pw-" + randomHex(12)
			secrets = append(secrets, secret{"PSK", psk}, secret{"EAP password", []byte(password)},
				secret{"EAP NT password hash", eap.NtPasswordHash(password)})

			cfg := gatewayConfig(addr, filepath.Join(dir, "gw"), gwOpts{})
			cfg.Auth.PSK = string(psk)
			profile := func(m map[string]any) { m["auth"] = map[string]any{"method": "psk", "psk": string(psk)} }
			if method == "eap-mschapv2" {
				gwPKI := testbed.NewPKI(t, "ecdsa")
				gwCert, gwKey := gwPKI.Issue(t, gwID)
				cfg.Auth = gateway.AuthConfig{Method: "pubkey", Cert: string(gwCert), Key: string(gwKey),
					EAP: &gateway.EAPConfig{Users: map[string]string{"alice": password}}}
				profile = func(m map[string]any) {
					m["auth"] = map[string]any{"method": "eap-mschapv2", "username": "alice", "password": password}
					m["ca"] = string(gwPKI.CAPEM)
				}
				secrets = append(secrets, keySecrets(t, "gateway key", gwKey)...)
			} else if method == "pubkey" {
				// An ECDSA gateway and an RSA client, each from its own CA.
				gwPKI, clPKI := testbed.NewPKI(t, "ecdsa"), testbed.NewPKI(t, "rsa")
				gwCert, gwKey := gwPKI.Issue(t, gwID)
				clCert, clKey := clPKI.Issue(t, clientID)
				cfg.Auth = gateway.AuthConfig{Method: "pubkey", Cert: string(gwCert), Key: string(gwKey), CA: string(clPKI.CAPEM),
					EAP: &gateway.EAPConfig{Users: map[string]string{"alice": password}}}
				profile = func(m map[string]any) {
					m["auth"] = map[string]any{"method": "pubkey", "cert": string(clCert), "key": string(clKey)}
					m["ca"] = string(gwPKI.CAPEM)
				}
				secrets = append(secrets, keySecrets(t, "gateway key", gwKey)...)
				secrets = append(secrets, keySecrets(t, "client key", clKey)...)
			} else {
				cfg.Auth.EAP = nil
			}

			gwOut, clOut := &logSink{}, &logSink{}
			t.Cleanup(func() {
				if t.Failed() {
					_ = os.WriteFile(filepath.Join(os.TempDir(), "qcdvpn-secrets-"+method+".log"), append(gwOut.bytes(), clOut.bytes()...), 0o600)
				}
			})
			gg, err := gateway.New(cfg, gateway.Options{Logger: gwOut.logger(), OnEvent: func(e gateway.Event) { gwOut.event(e) }})
			if err != nil {
				t.Fatalf("gateway.New: %v", err)
			}
			gwAddr := gg.Addrs()[0]
			runCtx, stop := context.WithCancel(context.Background())
			gwDone := make(chan error, 1)
			go func() { gwDone <- gg.Run(runCtx) }()
			defer func() {
				stop()
				select {
				case <-gwDone:
				case <-time.After(10 * time.Second):
					t.Error("gateway did not stop")
				}
			}()

			p := parseProfile(t, profileJSON([]netip.AddrPort{gwAddr}, profile))
			run := func(resumed bool) {
				ev := newRecorder[sdk.Event]()
				c, err := sdk.NewClient(p, sdk.Options{Logger: clOut.logger(),
					OnEvent:   func(e sdk.Event) { clOut.event(e); ev.add(e) },
					LocalAddr: "127.0.0.1:0", DataPlane: sdk.DataPlaneNetstack, StateDir: filepath.Join(dir, "client")})
				if err != nil {
					t.Fatalf("sdk.NewClient: %v", err)
				}
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if err := c.Connect(ctx); err != nil {
					t.Fatalf("Connect: %v", err)
				}
				e, _, _ := ev.wait(5*time.Second, 0, ofType(sdk.EventConnected))
				if e.Resumed != resumed {
					t.Errorf("connected resumed=%v, want %v", e.Resumed, resumed)
				}
				echoOnce(t, c)
				s := c.Session()
				collect := func(when string) {
					s := c.Session()
					if rs := s.ResumeState(); rs != nil {
						secrets = append(secrets, secret{"SK_d " + when, rs.SKd})
					}
					if ch := s.Child; ch != nil {
						secrets = append(secrets, secret{"ESP key in " + when, ch.EncrIn}, secret{"ESP key out " + when, ch.EncrOut})
					}
				}
				collect("first")
				for _, n := range s.AuthNotifies {
					if n.NotifyType == wire.NotifyTicketLTOpaque || n.NotifyType == wire.NotifyQCDToken {
						secrets = append(secrets, secret{n.NotifyType.String(), n.Data})
					}
				}
				for _, rekey := range []func(){s.RekeyChild, s.RekeyIKE} {
					from := ev.len()
					rekey()
					if _, _, ok := ev.wait(5*time.Second, from, ofType(sdk.EventRekeyed)); !ok {
						t.Fatalf("no rekey: %s", eventTypes(ev.snapshot()))
					}
					echoOnce(t, c)
				}
				collect("rekeyed")
				echoOnce(t, c)
			}
			run(false)

			all := append(gwOut.bytes(), clOut.bytes()...)
			spii, _ := gatewaySPIsOf(all)
			if len(all) < 1000 || spii == "" {
				t.Fatalf("suspiciously little output (%d bytes, SPI logged: %q): the search would prove nothing", len(all), spii)
			}
			if found := leaks(all, secrets); len(found) > 0 {
				t.Errorf("secrets in logs or events: %s", strings.Join(found, "; "))
			}
			t.Logf("searched %d bytes of logs and events for %d secrets", len(all), len(secrets))
		})
	}
}

// gatewaySPIsOf finds a logged "ike_spi_i" value (the sanity check).
func gatewaySPIsOf(out []byte) (string, bool) {
	i := bytes.Index(out, []byte(`"ike_spi_i":"`))
	if i < 0 {
		return "", false
	}
	rest := out[i+len(`"ike_spi_i":"`):]
	if len(rest) < 16 {
		return "", false
	}
	return string(rest[:16]), true
}

// TestStateAtRest: after sessions with tickets and QCD tokens, every file
// the client and the gateway keep is mode 0600 and every directory 0700
// (state dirs, the ticket store and its key, the QCD secret file); the
// client's ticket store holds the ticket and the QCD token only
// encrypted: their bytes appear nowhere in its files.
func TestStateAtRest(t *testing.T) {
	dir := t.TempDir()
	clientDir, gwDir := filepath.Join(dir, "client", "state"), filepath.Join(dir, "gw", "state")
	g := startGateway(t, gatewayConfig(loopbackAddr(t), gwDir, gwOpts{}))
	c := startClient(t, profileJSON([]netip.AddrPort{g.addr}, nil), clientDir)
	echoOnce(t, c.c)
	var ticket, token []byte
	for _, n := range c.c.Session().AuthNotifies {
		switch n.NotifyType {
		case wire.NotifyTicketLTOpaque:
			ticket = n.Data
		case wire.NotifyQCDToken:
			token = n.Data
		}
	}
	if len(ticket) == 0 || len(token) == 0 {
		t.Fatalf("IKE_AUTH brought ticket %d bytes, token %d bytes: nothing to look for", len(ticket), len(token))
	}
	c.close() // the store is written and closed
	g.stop()

	files := 0
	for _, root := range []string{clientDir, gwDir} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			mode := fi.Mode().Perm()
			switch {
			case d.IsDir() && mode != 0o700:
				t.Errorf("%s: directory mode %o, want 700", path, mode)
			case !d.IsDir() && mode != 0o600:
				t.Errorf("%s: file mode %o, want 600", path, mode)
			}
			if d.IsDir() {
				return nil
			}
			files++
			t.Logf("%s %o %d bytes", path, mode, fi.Size())
			if root != clientDir {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for name, v := range map[string][]byte{"ticket": ticket, "QCD token": token} {
				for i := 0; i+16 <= len(v); i += 16 {
					if bytes.Contains(b, v[i:i+16]) {
						t.Errorf("%s holds the %s in the clear (bytes %d..%d)", path, name, i, i+16)
						break
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 3 {
		t.Errorf("found %d state files, expected at least the ticket store, its key and the QCD secret", files)
	}
}

// TestLeaksSearch: the search finds a secret in each form it claims to,
// also in part, so that TestSecretsNeverLogged can fail.
func TestLeaksSearch(t *testing.T) {
	key := []byte("0123456789abcdef-a-longer-secret-value-0123456789")
	for _, out := range []string{
		"psk=" + string(key),
		"k=" + hex.EncodeToString(key)[10:60],
		"k=" + strings.ToUpper(hex.EncodeToString(key)),
		"k=" + base64.StdEncoding.EncodeToString(key)[20:50],
		"k=" + base64.RawURLEncoding.EncodeToString(key),
	} {
		if len(leaks([]byte(out), []secret{{"key", key}})) == 0 {
			t.Errorf("not found in %q", out)
		}
	}
	if got := leaks([]byte("nothing to see"), []secret{{"key", key}}); len(got) != 0 {
		t.Errorf("found %v in clean output", got)
	}
}
