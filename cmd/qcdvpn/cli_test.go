package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/sdk"
)

func TestHelpEveryCommand(t *testing.T) {
	for _, cmd := range []string{"up", "status", "down", "import", "gateway", "demo", "version"} {
		code, _, errs := runCLI(cmd, "--help")
		if code != 0 || !strings.Contains(errs, "Usage: qcdvpn "+cmd) || !strings.Contains(errs, "Example") {
			t.Errorf("%s --help: %d %q", cmd, code, errs)
		}
		// qcdvpn help CMD is the same.
		if code2, _, errs2 := runCLI("help", cmd); code2 != 0 || errs2 != errs {
			t.Errorf("help %s differs from %s --help", cmd, cmd)
		}
	}
	if code, out, _ := runCLI("help"); code != 0 || !strings.Contains(out, "qcdvpn import FILE") {
		t.Errorf("help: %d %q", code, out)
	}
}

func TestVersionString(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	got := versionString(func() (*debug.BuildInfo, bool) { return bi, true })
	if !strings.HasPrefix(got, "qcdvpn v1.2.3 (0123456789ab+dirty 2026-12-01T10:00:00Z) go") {
		t.Errorf("version: %q", got)
	}
	got = versionString(func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true })
	if !strings.HasPrefix(got, "qcdvpn dev go") {
		t.Errorf("devel version: %q", got)
	}
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "qcdvpn ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestHumanEvents(t *testing.T) {
	for _, c := range []struct {
		e    sdk.Event
		want string
	}{
		{sdk.Event{Type: sdk.EventConnecting, Gateway: "192.0.2.1:4500"}, "connecting to 192.0.2.1:4500…"},
		{sdk.Event{Type: sdk.EventConnected, Gateway: "192.0.2.1", VirtualIP: "10.100.0.2", Elapsed: 42 * time.Millisecond, IKESuite: "I", ESPSuite: "E"},
			"connected to 192.0.2.1 as 10.100.0.2 in 42 ms (I, E)"},
		{sdk.Event{Type: sdk.EventConnected, Gateway: "192.0.2.2", VirtualIP: "10.100.0.2", Elapsed: 3 * time.Millisecond, Resumed: true},
			"connected to 192.0.2.2 as 10.100.0.2 in 3 ms (resumed)"},
		{sdk.Event{Type: sdk.EventQCDVerified, Gateway: "192.0.2.1", Source: "192.0.2.1:4500"}, "QCD verified: 192.0.2.1 restarted and lost the SA (token from 192.0.2.1:4500)"},
		{sdk.Event{Type: sdk.EventFailover, From: "192.0.2.1", To: "192.0.2.2", Reason: "qcd_verified"}, "failover 192.0.2.1 → 192.0.2.2 (qcd_verified)"},
		{sdk.Event{Type: sdk.EventDisconnected, Gateway: "192.0.2.2", Reason: "closed by user"}, "disconnected from 192.0.2.2: closed by user"},
		{sdk.Event{Type: sdk.EventLivenessFailed, Gateway: "192.0.2.1", Reason: "no answer"}, "192.0.2.1 stopped answering: no answer"},
		{sdk.Event{Type: sdk.EventStats, Stats: &sdk.Stats{PacketsIn: 3, BytesIn: 2048, PacketsOut: 4, BytesOut: 10, DropAuth: 1}},
			"traffic: 3 packets in (2.0 KiB), 4 out (10 B), 1 dropped"},
	} {
		if got := humanEvent(c.e); got != c.want {
			t.Errorf("%s: %q, want %q", c.e.Type, got, c.want)
		}
	}
}

// TestUpPrinter: auto prints human lines, on stderr when stdout is not a
// terminal (as before); json prints JSON on stdout.
func TestUpPrinter(t *testing.T) {
	e := sdk.Event{Time: time.Now(), Type: sdk.EventConnecting, Gateway: "192.0.2.1:500"}
	var out, errb bytes.Buffer
	upPrinter("auto", &out, &errb)(e)
	if out.Len() != 0 || errb.String() != "connecting to 192.0.2.1:500…\n" {
		t.Errorf("auto, not a terminal: stdout %q stderr %q", out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	upPrinter("json", &out, &errb)(e)
	if !strings.Contains(out.String(), `"type":"connecting"`) || errb.Len() != 0 {
		t.Errorf("json: stdout %q stderr %q", out.String(), errb.String())
	}
	if isTerminal(&out) {
		t.Error("a buffer is not a terminal")
	}
}

func TestImportCLI(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "p12pass")
	os.WriteFile(pw, []byte("test\n"), 0o600)
	src := "../../profileimport/testdata/good/cert-rsa.sswan"
	out := filepath.Join(dir, "corp.json")
	code, _, errs := runCLI("import", src, "-o", out, "--p12-password-file", pw)
	if code != 0 || !strings.Contains(errs, "wrote "+out+" and corp-ca.pem, corp-cert.pem, corp-key.pem") {
		t.Fatalf("import: %d %q", code, errs)
	}
	for _, f := range []string{"corp.json", "corp-ca.pem", "corp-cert.pem", "corp-key.pem"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
	p, err := sdk.LoadProfile(out)
	if err != nil {
		t.Fatalf("the imported profile does not load: %v", err)
	}
	if p.Auth.Method != sdk.AuthPubkey || p.LocalID != "alice@example.com" || p.Gateways[0] != "vpn.example.com" {
		t.Errorf("profile %v", p)
	}
	// Again: nothing is overwritten without --force.
	if code, _, errs := runCLI("import", "--p12-password-file", pw, src, "-o", out); code != 1 || !strings.Contains(errs, "exists (--force replaces it)") {
		t.Errorf("second import: %d %q", code, errs)
	}
	if code, _, errs := runCLI("import", "--force", "--p12-password-file", pw, src, "-o", out); code != 0 {
		t.Errorf("import --force: %d %q", code, errs)
	}
	// To stdout, inline.
	code, stdout, errs := runCLI("import", "../../profileimport/testdata/good/cert-ec-pem.sswan", "-o", "-")
	if code != 0 || !strings.Contains(stdout, "-----BEGIN PRIVATE KEY-----") || !strings.Contains(errs, "warning: remote.certreq") {
		t.Errorf("import -o -: %d %q", code, errs)
	}
	if _, err := sdk.ParseProfile([]byte(stdout)); err != nil {
		t.Errorf("inline profile: %v", err)
	}
	// Broken input: exit 1, one line naming the file and the field.
	code, _, errs = runCLI("import", "../../profileimport/testdata/bad/no-addr.sswan", "-o", filepath.Join(dir, "x.json"))
	if code != 1 || strings.TrimSpace(errs) != "qcdvpn import: ../../profileimport/testdata/bad/no-addr.sswan: sswan: remote.addr: required" {
		t.Errorf("broken: %d %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.json")); !os.IsNotExist(err) {
		t.Error("a broken import wrote a file")
	}
	// Our own profile is checked.
	if code, _, errs := runCLI("import", "../../profileimport/testdata/good/own.json"); code != 0 || !strings.Contains(errs, "is a valid qcdvpn profile") {
		t.Errorf("own: %d %q", code, errs)
	}
	if code, _, _ := runCLI("import"); code != 2 {
		t.Errorf("import without FILE: %d", code)
	}
}

func TestControlOwners(t *testing.T) {
	t.Setenv("SUDO_UID", "")
	if got, err := controlOwners("1234"); err != nil || len(got) != 1 || got[0] != 1234 {
		t.Errorf("1234: %v %v", got, err)
	}
	if got, err := controlOwners("root"); err != nil || len(got) != 1 || got[0] != 0 {
		t.Errorf("root: %v %v", got, err)
	}
	if _, err := controlOwners("no-such-user-qcdvpn"); err == nil || err.Error() != `no user "no-such-user-qcdvpn"` {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := controlOwners("-5"); err == nil {
		t.Error("negative uid accepted")
	}
	if got, _ := controlOwners(""); len(got) != 0 {
		t.Errorf("default without sudo: %v", got)
	}
	if os.Geteuid() == 0 {
		t.Setenv("SUDO_UID", "1000")
		if got, _ := controlOwners(""); len(got) != 1 || got[0] != 1000 {
			t.Errorf("under sudo: %v", got)
		}
	}
}
