package desktop

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/control"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// TestStoreImportPaths: a JSON profile's relative file paths are made
// absolute against its directory, and a missing file is refused.
func TestStoreImportPaths(t *testing.T) {
	src := t.TempDir()
	s := NewStore(filepath.Join(t.TempDir(), "profiles"))
	doc := `{"name":"rel","gateways":["192.0.2.1"],"remote_id":"gw.example","local_id":"c.example",
"auth":{"method":"psk","psk":"k"},"state_dir":"state"}`
	if _, err := s.Import("rel.json", []byte(doc), src, Secrets{}); err != nil {
		t.Fatal(err)
	}
	b, _ := s.Load("rel")
	p, err := sdk.ParseProfile(b)
	if err != nil || p.StateDir != filepath.Join(src, "state") {
		t.Fatalf("state_dir %q (%v), want %q", p.StateDir, err, filepath.Join(src, "state"))
	}
	fi, err := os.Stat(s.Dir())
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("store dir mode %v %v, want 0700", fi.Mode(), err)
	}
	missing := `{"name":"certs","gateways":["192.0.2.1"],"remote_id":"gw.example","local_id":"c.example",
"auth":{"method":"pubkey","cert":"client.pem","key":"client.key"},"ca":"ca.pem"}`
	_, err = s.Import("certs.json", []byte(missing), src, Secrets{})
	if err == nil || !strings.HasPrefix(err.Error(), "import certs.json: ") || !strings.Contains(err.Error(), src) {
		t.Fatalf("missing files: %v, want an error naming the file", err)
	}
	if l, _ := s.List(); len(l) != 1 {
		t.Fatalf("%d profiles after a refused import", len(l))
	}
}

// TestStoreNames: names that cannot be file names are refused; a file
// that no longer parses is left out of the list and named.
func TestStoreNames(t *testing.T) {
	s := NewStore(t.TempDir())
	for _, name := range []string{"../x", ".hidden", "a/b", `a\\b`} {
		if _, err := s.Load(name); err == nil || !strings.Contains(err.Error(), "cannot be a file name") {
			t.Errorf("Load(%q): %v", name, err)
		}
	}
	if _, err := s.Import("x.json", []byte(strings.Replace(testProfile, `"corp"`, `"../evil"`, 1)), "", Secrets{}); err == nil {
		t.Error("a profile named ../evil was stored")
	}
	if _, err := s.Import("ok.json", []byte(testProfile), "", Secrets{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), "broken.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := s.List()
	if len(l) != 1 || l[0].Name != "corp" || err == nil || !strings.Contains(err.Error(), "broken.json") {
		t.Fatalf("List: %v, %v", l, err)
	}
	if err := s.Remove("corp"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("corp"); err == nil {
		t.Fatal("removed profile still loads")
	}
}

// TestApplySettings sets qcd.enabled and resumption.enabled and keeps
// everything else, numbers included.
func TestApplySettings(t *testing.T) {
	doc := strings.Replace(testProfile, `"traffic"`, `"mtu":1380,"qcd":{"enabled":true,"rate_global":150},"traffic"`, 1)
	out, err := ApplySettings([]byte(doc), Settings{QCD: false, Resumption: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.ParseProfile(out)
	if err != nil {
		t.Fatal(err)
	}
	if p.QCDEnabled() || !p.ResumptionEnabled() || p.QCD.RateGlobal != 150 || p.MTU != 1380 || p.Auth.PSK != "correct horse battery staple" {
		t.Fatalf("applied: %s", out)
	}
	if _, err := ApplySettings([]byte("{"), Settings{}); err == nil || !strings.HasPrefix(err.Error(), "profile: ") {
		t.Fatalf("broken profile: %v", err)
	}
}

// TestDescribe covers the words for the events the tests above do not.
func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		e    sdk.Event
		want string
	}{
		{sdk.Event{Type: sdk.EventConnected, Gateway: "192.0.2.1", VirtualIP: "10.0.0.2", Resumed: true, Elapsed: 12 * time.Second}, "Connected to 192.0.2.1 as 10.0.0.2 in 12.0 s (session resumed from a ticket)"},
		{sdk.Event{Type: sdk.EventConnectFailed, Gateway: "192.0.2.1", Error: "timeout"}, "Could not connect to 192.0.2.1: timeout"},
		{sdk.Event{Type: sdk.EventQCDRejected, Source: "198.51.100.7:500"}, "Ignored a QCD token that did not match (from 198.51.100.7:500)"},
		{sdk.Event{Type: sdk.EventLivenessFailed, Gateway: "192.0.2.1"}, "Gateway 192.0.2.1 stopped answering (liveness check failed)"},
		{sdk.Event{Type: sdk.EventRekeyed, Gateway: "192.0.2.1", Reason: "ike"}, "Renewed the IKE keys with 192.0.2.1"},
		{sdk.Event{Type: sdk.EventDisconnected}, "Disconnected from the gateway: no reason given"},
		{sdk.Event{Type: sdk.EventHASynced, Gateway: "192.0.2.1"}, "A standby gateway took over the session at 192.0.2.1 (RFC 6311 sync); same keys, no reconnect"},
		{sdk.Event{Type: sdk.EventRoamed, Gateway: "192.0.2.1", From: "10.0.0.5", To: "10.9.0.7", Elapsed: 3 * time.Millisecond}, "Moved the session to the new network (10.0.0.5 → 10.9.0.7) in 3 ms; same keys, no reconnect (MOBIKE)"},
		{sdk.Event{Type: "mobike_update", Reason: "new address"}, "mobike update: new address"},
	} {
		got, ok := Describe(c.e)
		if !ok || got != c.want {
			t.Errorf("%s: %q, want %q", c.e.Type, got, c.want)
		}
	}
	if _, ok := Describe(sdk.Event{Type: sdk.EventStats}); ok {
		t.Error("stats events belong in the graph, not the log")
	}
	if Uptime(3723*time.Second) != "1:02:03" || Rate(1536) != "1.5 KiB/s" || Rate(3<<20) != "3.0 MiB/s" || Rate(10) != "10 B/s" {
		t.Error("Uptime or Rate format")
	}
}

// TestOpen: attaching to a socket nobody serves fails with a message that
// says what to start; unprivileged auto mode says so too; privileged
// auto mode falls back to an in-process engine; a live server attaches.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	sock := filepath.Join(t.TempDir(), "none.sock")
	no, yes := func() bool { return false }, func() bool { return true }
	if _, _, err := Open(ctx, OpenOptions{Mode: ModeAttach, Socket: sock}); err == nil || !strings.Contains(err.Error(), "sudo qcdvpn up --service") {
		t.Errorf("attach to nothing: %v", err)
	}
	if _, _, err := Open(ctx, OpenOptions{Mode: ModeAuto, Socket: sock, Privileged: no}); err == nil || !strings.Contains(err.Error(), "lacks the rights") {
		t.Errorf("auto, unprivileged: %v", err)
	}
	if _, _, err := Open(ctx, OpenOptions{Mode: ModeInProcess, Privileged: no}); err == nil || !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
		t.Errorf("inprocess, unprivileged: %v", err)
	}
	if _, _, err := Open(ctx, OpenOptions{Mode: "bogus"}); err == nil || !strings.Contains(err.Error(), `engine mode "bogus"`) {
		t.Errorf("bogus mode: %v", err)
	}
	b, desc, err := Open(ctx, OpenOptions{Mode: ModeAuto, Socket: sock, Privileged: yes})
	if err != nil || !strings.HasPrefix(desc, "in-process engine") {
		t.Fatalf("auto, privileged: %v %q", err, desc)
	}
	if st, err := b.Status(ctx); err != nil || st.State != StateIdle {
		t.Fatalf("in-process engine status %+v %v", st, err)
	}
	b.Close()

	// A control server with an idle engine behind it: auto attaches.
	live := filepath.Join(t.TempDir(), "ctl", "control.sock")
	srv, err := control.Listen(live, control.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eng := control.NewEngine(control.EngineOptions{})
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(sctx, eng) }()
	defer func() { cancel(); srv.Close(); <-done; eng.Shutdown() }()
	b, desc, err = Open(ctx, OpenOptions{Mode: ModeAuto, Socket: live, Privileged: no})
	if err != nil || desc != "attached to "+live {
		t.Fatalf("auto with a live socket: %v %q", err, desc)
	}
	defer b.Close()
	if st, err := b.Status(ctx); err != nil || st.State != StateIdle {
		t.Fatalf("attached status %+v %v", st, err)
	}
	ectx, ecancel := context.WithCancel(ctx)
	ch, err := b.Events(ectx)
	if err != nil {
		t.Fatal(err)
	}
	ecancel()
	for range ch {
	}
}
