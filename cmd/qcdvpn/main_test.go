package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"name":"x","gatways":["192.0.2.1"]}`), 0o600)
	secret := filepath.Join(dir, "secret.json")
	os.WriteFile(secret, []byte(`{"name":"x","gateways":["192.0.2.1:99999"],"remote_id":"gw","local_id":"c","auth":{"method":"psk","psk":"hunter2-secret"}}`), 0o600)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"up"}, 2, "-p PROFILE is required"},
		{[]string{"up", "-p", bad, "--events", "xml"}, 2, `--events: "xml"`},
		{[]string{"up", "-p", filepath.Join(dir, "missing.json")}, 1, "missing.json"},
		{[]string{"up", "-p", bad}, 1, `unknown field "gatways"`},
		{[]string{"up", "-p", secret}, 1, "gateways[0]"},
		{[]string{"up", "-p", bad, "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"up", "-p", bad, "--dns", "dnsmasq"}, 2, `--dns: "dnsmasq" is not one of`},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, code, c.code, errb.String())
		}
		if !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: stderr %q lacks %q", c.args, errb.String(), c.want)
		}
		if c.code == 1 && strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("%v: error is not one line: %q", c.args, errb.String())
		}
		if strings.Contains(errb.String()+out.String(), "hunter2") {
			t.Errorf("%v: secret leaked: %q", c.args, errb.String())
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "qcdvpn ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"up", "--help"}, &out, &errb); code != 0 {
		t.Errorf("up --help exit %d", code)
	}
}
