package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/control"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// cliProc is this test binary re-run as `qcdvpn ARGS…`, its stdout lines
// collected.
type cliProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	kick   chan struct{}
	done   chan struct{}
	stderr bytes.Buffer
}

func startCLI(t *testing.T, args ...string) *cliProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &cliProc{kick: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(exe, args...)
	p.cmd.Env = append(os.Environ(), "QCDVPN_AS_CLI=1", "GORACE=atexit_sleep_ms=0")
	p.cmd.Stderr = &syncWriter{w: &p.stderr, mu: &p.mu}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.kick)
			p.kick = make(chan struct{})
			p.mu.Unlock()
		}
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

type syncWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func (p *cliProc) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitEvent waits for a JSON event line of type typ.
func (p *cliProc) waitEvent(t *testing.T, typ sdk.EventType, timeout time.Duration) sdk.Event {
	t.Helper()
	deadline := time.After(timeout)
	seen := 0
	exited := false
	for {
		p.mu.Lock()
		lines, kick := p.lines[seen:], p.kick
		seen = len(p.lines)
		p.mu.Unlock()
		for _, l := range lines {
			if e, err := control.DecodeEvent([]byte(l)); err == nil && e.Type == typ {
				return e
			}
		}
		if exited {
			t.Fatalf("exited (%v) before a %s event; stderr: %s", p.cmd.ProcessState, typ, p.errText())
		}
		select {
		case <-kick:
		case <-p.done:
			// Every line was read before done closed; look at the
			// ones that came with it once more.
			exited = true
		case <-deadline:
			t.Fatalf("no %s event; stderr: %s", typ, p.errText())
		}
	}
}

func (p *cliProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("still running after %v; stderr: %s", timeout, p.errText())
		return -1
	}
}

// testGateway starts `qcdvpn gateway` (netstack data plane) on a random
// loopback address and returns it with a profile file for it.
func testGateway(t *testing.T) (netip.AddrPort, string) {
	t.Helper()
	dir := t.TempDir()
	var k [8]byte
	rand.Read(k[:])
	psk := "0x" + hex.EncodeToString(k[:])
	addr, _ := demoAddrs()
	cfg := map[string]any{
		"listen": []string{addr.String()}, "id": "gw.cli.test",
		"auth": map[string]any{"method": "psk", "psk": psk},
		"pool": []string{"10.100.0.0/24"}, "local_ts": []string{"10.200.0.0/24"},
		"ike_proposals": []string{"aes256gcm16-prfsha256-x25519"}, "esp_proposals": []string{"aes256gcm16"},
		"data": "netstack", "state_dir": filepath.Join(dir, "gw"),
	}
	b, _ := json.Marshal(cfg)
	g := &demoGateway{name: "test", cfgPath: filepath.Join(dir, "gw.json"), addr: addr, log: slog.New(slog.DiscardHandler)}
	os.WriteFile(g.cfgPath, b, 0o600)
	// The gateway process lives until the test's cleanup stops it.
	if err := g.start(context.Background()); err != nil {
		t.Fatalf("gateway: %v", err)
	}
	t.Cleanup(g.stop)
	profile := map[string]any{
		"name": "cli-test", "gateways": []string{addr.String()}, "remote_id": "gw.cli.test", "local_id": "client.cli.test",
		"auth":          map[string]any{"method": "psk", "psk": psk},
		"ike_proposals": []string{"aes256gcm16-prfsha256-x25519"}, "esp_proposals": []string{"aes256gcm16"},
		"traffic":   map[string]any{"include": []string{"10.200.0.0/24"}},
		"state_dir": filepath.Join(dir, "client"),
	}
	b, _ = json.Marshal(profile)
	pp := filepath.Join(dir, "profile.json")
	os.WriteFile(pp, b, 0o600)
	return addr, pp
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestUpStatusDown: `qcdvpn status --json`, `qcdvpn status` and
// `qcdvpn down` against a running `qcdvpn up --netstack` connected to a
// `qcdvpn gateway` on loopback; both are real processes.
func TestUpStatusDown(t *testing.T) {
	gw, profile := testGateway(t)
	sock := filepath.Join(t.TempDir(), "qcdvpn", "control.sock")
	up := startCLI(t, "up", "-p", profile, "--netstack", "--control", sock, "--events", "json")
	up.waitEvent(t, sdk.EventConnected, 20*time.Second)
	if !strings.Contains(up.errText(), "qcdvpn: control socket "+sock) {
		t.Errorf("up did not print the socket path: %q", up.errText())
	}

	code, out, errs := runCLI("status", "--json", "--control", sock)
	if code != 0 {
		t.Fatalf("status --json: %d %s", code, errs)
	}
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v: %q", err, out)
	}
	if st.State != control.StateConnected || st.Gateway != gw.Addr().String() || st.Profile != "cli-test" {
		t.Errorf("status: %+v", st)
	}
	if a, err := netip.ParseAddr(st.VirtualIP); err != nil || !netip.MustParsePrefix("10.100.0.0/24").Contains(a) {
		t.Errorf("virtual IP %q", st.VirtualIP)
	}
	if len(st.Gateways) != 1 || !st.Gateways[0].Active || st.IKESuite != "AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519" || st.ESPSuite != "AES_GCM_16-256" {
		t.Errorf("status details: %+v", st)
	}

	code, out, _ = runCLI("status", "--control", sock)
	for _, want := range []string{"state:", "connected", "virtual IP:", st.VirtualIP, "IKE AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519, ESP AES_GCM_16-256 (full exchange)", "QCD on, resumption on"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status: %d, %q lacks %q", code, out, want)
		}
	}

	// A second `up` on the same socket is refused.
	code, _, errs = runCLI("up", "-p", profile, "--netstack", "--control", sock)
	if code != 1 || !strings.Contains(errs, "in use by another running qcdvpn") {
		t.Errorf("second up: %d %q", code, errs)
	}

	if code, _, errs := runCLI("down", "--control", sock); code != 0 {
		t.Fatalf("down: %d %s", code, errs)
	}
	// down returns once up is gone: it has exited, cleanly.
	if c := up.wait(t, 2*time.Second); c != 0 {
		t.Errorf("up exited %d; stderr %s", c, up.errText())
	}
	if e := up.waitEvent(t, sdk.EventDisconnected, time.Second); e.Reason != "closed by user" {
		t.Errorf("disconnected: %q", e.Reason)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	code, _, errs = runCLI("status", "--control", sock)
	if code != 1 || !strings.Contains(errs, "no qcdvpn is running") {
		t.Errorf("status after down: %d %q", code, errs)
	}
}

// TestUpService: `up --service` starts idle and connects when a client
// sends a profile over the socket, as the desktop app does.
func TestUpService(t *testing.T) {
	_, profile := testGateway(t)
	sock := filepath.Join(t.TempDir(), "qcdvpn", "control.sock")
	up := startCLI(t, "up", "--service", "--netstack", "--control", sock, "--events", "json")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var c *control.Client
	for c == nil {
		var err error
		if c, err = control.Dial(ctx, sock); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("dial: %v; stderr %s", err, up.errText())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	defer c.Close()
	if st, err := c.Status(ctx); err != nil || st.State != control.StateIdle {
		t.Fatalf("service status: %+v %v", st, err)
	}
	p, err := sdk.LoadProfile(profile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	if err := c.Connect(ctx, b); err != nil {
		t.Fatalf("connect: %v", err)
	}
	up.waitEvent(t, sdk.EventConnected, 5*time.Second)
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Status(ctx); st.State != control.StateDisconnected {
		t.Errorf("after disconnect: %q", st.State)
	}
	// The service stays up after a disconnect: reconnect, then down.
	if err := c.Connect(ctx, nil); err != nil {
		t.Fatalf("reconnect: %v", err)
	}
	if err := c.Down(ctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	if code := up.wait(t, 2*time.Second); code != 0 {
		t.Errorf("up --service exited %d: %s", code, up.errText())
	}
}
