package dnsconfig

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/qcdvpn/qcdvpn/internal/dnstest"
)

func startDNS(t *testing.T, records ...string) (*dnstest.Server, netip.AddrPort) {
	t.Helper()
	s, err := dnstest.New(records...)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	s.Start(pc, l)
	t.Cleanup(s.Close)
	return s, netip.MustParseAddrPort(pc.LocalAddr().String())
}

// freeAddr returns a loopback address whose UDP and TCP port 53 are
// free, for a forwarder that must listen on port 53 (as the resolver
// file can name no other port). Without privileges a high port on
// 127.0.0.1 stands in.
func freeAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	for i := 2; i < 250; i++ {
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(i), 153}), 53)
		pc, err := net.ListenPacket("udp", a.String())
		if err != nil {
			continue
		}
		pc.Close()
		return a
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func query(t *testing.T, server netip.AddrPort, name string, network string) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Net: network, Timeout: 10 * time.Second}
	m, _, err := c.Exchange(q, server.String())
	if err != nil {
		t.Fatalf("query %s via %s: %v", name, server, err)
	}
	return m
}

func firstA(m *dns.Msg) string {
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return dns.RcodeToString[m.Rcode]
}

type fixture struct {
	dir, conf  string
	orig       []byte
	tunnel     *dnstest.Server
	tunnelAddr netip.AddrPort
	under      *dnstest.Server
	underAddr  netip.AddrPort
	listen     netip.AddrPort
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{dir: t.TempDir()}
	f.conf = filepath.Join(f.dir, "resolv.conf")
	f.orig = []byte("# from DHCP\nnameserver 192.0.2.53\nsearch home.test\noptions ndots:1 rotate\n")
	if err := os.WriteFile(f.conf, f.orig, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.conf, 0o640); err != nil {
		t.Fatal(err)
	}
	f.tunnel, f.tunnelAddr = startDNS(t, "www.corp.test. 60 IN A 10.200.0.5", "other.test. 60 IN A 10.200.0.66")
	f.under, f.underAddr = startDNS(t, "other.test. 60 IN A 198.51.100.7", "www.corp.test. 60 IN A 198.51.100.99")
	f.listen = freeAddr(t)
	return f
}

func (f *fixture) options() Options {
	return Options{StateDir: filepath.Join(f.dir, "state"), ResolvConf: f.conf, Backend: BackendForwarder,
		Listen: f.listen, Underlay: []netip.AddrPort{f.underAddr}, Hold: 400 * time.Millisecond,
		tunnelPort: f.tunnelAddr.Port()}
}

// settings points the tunnel side at the fixture's tunnel server: the
// forwarder asks port 53, so tests pass servers through a port override.
func (f *fixture) settings(all bool) Settings {
	return Settings{Servers: []netip.Addr{f.tunnelAddr.Addr()}, Domains: []string{"corp.test"}, All: all}
}

func (f *fixture) checkRestored(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(f.conf)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(f.conf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, f.orig) || fi.Mode().Perm() != 0o640 {
		t.Fatalf("resolver file not restored: mode %v, %q", fi.Mode().Perm(), b)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "state", StateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state record still there: %v", err)
	}
}

func TestForwarderSplitAndRestore(t *testing.T) {
	f := newFixture(t)
	m, err := New(f.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(f.settings(false)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.conf)
	want := "nameserver " + f.listen.Addr().String() + "\nsearch home.test\noptions ndots:1\n"
	if !strings.HasSuffix(string(b), want) {
		t.Fatalf("resolver file while up:\n%s\nwant it to end with\n%s", b, want)
	}
	if fi, _ := os.Stat(f.conf); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode while up %v", fi.Mode().Perm())
	}
	for _, network := range []string{"udp", "tcp"} {
		if got := firstA(query(t, f.listen, "www.corp.test", network)); got != "10.200.0.5" {
			t.Errorf("%s: split name answered %s, want the tunnel's 10.200.0.5", network, got)
		}
		if got := firstA(query(t, f.listen, "other.test", network)); got != "198.51.100.7" {
			t.Errorf("%s: other name answered %s, want the underlay's 198.51.100.7", network, got)
		}
	}
	if n := f.under.Count("www.corp.test"); n != 0 {
		t.Errorf("the underlay resolver was asked %d times for the split domain", n)
	}
	if n := f.tunnel.Count("other.test"); n != 0 {
		t.Errorf("the tunnel's resolver was asked %d times for another name", n)
	}
	// Everything through the tunnel (a full tunnel).
	if err := m.Apply(f.settings(true)); err != nil {
		t.Fatal(err)
	}
	if got := firstA(query(t, f.listen, "other.test", "udp")); got != "10.200.0.66" {
		t.Errorf("full tunnel: other name answered %s, want the tunnel's", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	f.checkRestored(t)
	if err := m.Apply(f.settings(false)); err == nil {
		t.Fatal("Apply after Close changed the system again")
	}
	f.checkRestored(t)
}

func TestForwarderHoldsDuringFailover(t *testing.T) {
	f := newFixture(t)
	m, err := New(f.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(f.settings(false)); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Hold()
	// Released by the next Apply within the hold.
	go func() {
		time.Sleep(150 * time.Millisecond)
		_ = m.Apply(f.settings(false))
	}()
	start := time.Now()
	if got := firstA(query(t, f.listen, "www.corp.test", "udp")); got != "10.200.0.5" {
		t.Fatalf("held query answered %s", got)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("query answered after %v, during the hold", d)
	}
	// Not released: SERVFAIL after the hold, and nothing to the underlay.
	m.Hold()
	start = time.Now()
	if got := firstA(query(t, f.listen, "www.corp.test", "udp")); got != "SERVFAIL" {
		t.Fatalf("query past the hold answered %s, want SERVFAIL", got)
	}
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Fatalf("SERVFAIL after %v, before the hold ended", d)
	}
	if n := f.under.Count("www.corp.test"); n != 0 {
		t.Fatalf("split name leaked to the underlay resolver %d times", n)
	}
	// Other names are not held.
	if got := firstA(query(t, f.listen, "other.test", "udp")); got != "198.51.100.7" {
		t.Fatalf("other name during hold: %s", got)
	}
}

// TestLeftoverRestoredByNextRun: a run that never closed (as after kill
// -9) leaves its record; the next New restores the file exactly.
func TestLeftoverRestoredByNextRun(t *testing.T) {
	f := newFixture(t)
	m, err := New(f.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(f.settings(false)); err != nil {
		t.Fatal(err)
	}
	m.fwd.stop() // the process died: nothing restored
	if b, _ := os.ReadFile(f.conf); bytes.Equal(b, f.orig) {
		t.Fatal("file unchanged while up")
	}
	if _, err := New(f.options()); err != nil {
		t.Fatal(err)
	}
	f.checkRestored(t)

	// A record of a process that still runs is not touched.
	m2, err := New(f.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Apply(f.settings(false)); err != nil {
		t.Fatal(err)
	}
	m2.fwd.stop()
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleep.Process.Kill(); _ = sleep.Wait() }()
	rewritePID(t, filepath.Join(f.dir, "state", StateFile), sleep.Process.Pid)
	if _, err := New(f.options()); !errors.Is(err, ErrBusy) {
		t.Fatalf("New with a live owner: %v, want ErrBusy", err)
	}
	if err := RestoreLeftover(filepath.Join(f.dir, "state"), nil, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("RestoreLeftover with a live owner: %v", err)
	}
	_ = sleep.Process.Kill()
	_ = sleep.Wait()
	if err := RestoreLeftover(filepath.Join(f.dir, "state"), nil, nil); err != nil {
		t.Fatal(err)
	}
	f.checkRestored(t)
}

func rewritePID(t *testing.T, path string, pid int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	st["pid"] = pid
	b, _ = json.Marshal(st)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSymlinkAndMissingFile: a symlinked resolver file comes back as the
// same symlink, a missing one is removed again.
func TestSymlinkAndMissingFile(t *testing.T) {
	f := newFixture(t)
	target := filepath.Join(f.dir, "stub-resolv.conf")
	if err := os.Rename(f.conf, target); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, f.conf); err != nil {
		t.Fatal(err)
	}
	m, err := New(f.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(f.settings(false)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(f.conf); fi.Mode()&os.ModeSymlink != 0 {
		t.Fatal("still a symlink while up")
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, f.orig) {
		t.Fatal("the symlink's target was changed")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(f.conf); err != nil || l != target {
		t.Fatalf("symlink not restored: %q, %v", l, err)
	}

	os.Remove(f.conf)
	m, err = New(f.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(f.settings(false)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.conf); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(f.conf); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("created file not removed: %v", err)
	}
}

// TestNewerFileKept: a file rewritten by someone else while the tunnel
// was up (a DHCP renewal) is not overwritten with the old one.
func TestNewerFileKept(t *testing.T) {
	f := newFixture(t)
	m, err := New(f.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(f.settings(false)); err != nil {
		t.Fatal(err)
	}
	newer := []byte("nameserver 192.0.2.99\n")
	if err := os.WriteFile(f.conf, newer, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.conf); !bytes.Equal(b, newer) {
		t.Fatalf("newer file replaced: %q", b)
	}
}

// fakeResolvectl records resolvectl calls.
type fakeResolvectl struct {
	mu    sync.Mutex
	calls []string
	fail  string
}

func (f *fakeResolvectl) run(_ context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := name + " " + strings.Join(args, " ")
	f.calls = append(f.calls, c)
	if f.fail != "" && strings.Contains(c, f.fail) {
		return nil, errors.New("Failed to set DNS configuration: Link qcd0 not known")
	}
	return nil, nil
}

func (f *fakeResolvectl) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// TestResolvedBackend runs the systemd-resolved backend against a fake
// resolvectl (CI has no systemd-resolved).
func TestResolvedBackend(t *testing.T) {
	dir := t.TempDir()
	fake := &fakeResolvectl{}
	opts := Options{StateDir: dir, Backend: BackendResolved, Run: fake.run}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Settings{Servers: []netip.Addr{netip.MustParseAddr("10.200.0.53"), netip.MustParseAddr("fd00::53")}, Domains: []string{"corp.test", "lab.test"}, Link: "qcd0"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"resolvectl dns qcd0 10.200.0.53 fd00::53", "resolvectl domain qcd0 ~corp.test ~lab.test", "resolvectl default-route qcd0 no"}
	if got := fake.take(); !slices.Equal(got, want) {
		t.Fatalf("split: %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); err != nil {
		t.Fatalf("no state record while up: %v", err)
	}
	if err := m.Apply(Settings{Servers: []netip.Addr{netip.MustParseAddr("10.200.0.53")}, All: true, Link: "qcd0"}); err != nil {
		t.Fatal(err)
	}
	want = []string{"resolvectl dns qcd0 10.200.0.53", "resolvectl domain qcd0 ~.", "resolvectl default-route qcd0 yes"}
	if got := fake.take(); !slices.Equal(got, want) {
		t.Fatalf("full: %q, want %q", got, want)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fake.take(); !slices.Equal(got, []string{"resolvectl revert qcd0"}) {
		t.Fatalf("close: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("state record left after Close")
	}
	// A crashed run's record: reverted by the next one, even when the
	// link is gone (resolvectl fails).
	m, _ = New(opts)
	_ = m.Apply(Settings{Servers: []netip.Addr{netip.MustParseAddr("10.200.0.53")}, Link: "qcd0"})
	fake.take()
	fake.fail = "revert"
	if _, err := New(opts); err != nil {
		t.Fatal(err)
	}
	if got := fake.take(); !slices.Equal(got, []string{"resolvectl revert qcd0"}) {
		t.Fatalf("leftover: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("leftover record not removed")
	}
	fake.fail = "dns"
	m, _ = New(opts)
	if err := m.Apply(Settings{Servers: []netip.Addr{netip.MustParseAddr("10.200.0.53")}, Link: "qcd0"}); err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("failing resolvectl: %v", err)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, o := range []Options{{}, {StateDir: t.TempDir(), Backend: "nm"}} {
		if _, err := New(o); err == nil || !strings.HasPrefix(err.Error(), "dnsconfig: ") {
			t.Errorf("New(%+v) = %v", o, err)
		}
	}
	m, err := New(Options{StateDir: t.TempDir(), Backend: BackendForwarder, Underlay: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Settings{}); err == nil {
		t.Fatal("Apply without servers")
	}
	if err := m.Apply(Settings{Servers: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, Link: "a/b"}); err == nil {
		t.Fatal("Apply with a bad link name")
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"version":1,"pid":1,"backend":"forwarder","path":"/etc/resolv.conf","existed":true,"mode":420,"original":"bmFtZXNlcnZlciAxLjEuMS4xCg==","written":"eA=="}`))
	f.Add([]byte(`{"version":1,"pid":1,"backend":"resolved","link":"qcd0"}`))
	f.Add([]byte(`{"version":1,"backend":"forwarder","path":"rel","symlink":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseState(b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), StateFile) {
				t.Fatalf("error %q", err)
			}
			return
		}
		switch st.Backend {
		case BackendForwarder:
			if !filepath.IsAbs(st.Path) || st.Mode&^0o777 != 0 {
				t.Fatalf("accepted %+v", st)
			}
		case BackendResolved:
			if !validLinkName(st.Link) {
				t.Fatalf("accepted link %q", st.Link)
			}
		default:
			t.Fatalf("accepted backend %q", st.Backend)
		}
	})
}
