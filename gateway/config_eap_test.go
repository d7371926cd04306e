package gateway

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigEAP(t *testing.T) {
	pki, cert, key := pemOf(t)
	dir := t.TempDir()
	for name, data := range map[string][]byte{"gw.pem": cert, "gw.key": key, "ca.pem": pki.CAPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write := func(auth string) string {
		p := filepath.Join(dir, "gw.json")
		doc := `{"listen":["192.0.2.1"],"id":"gw.example","auth":` + auth + `,
			"local_ts":["10.200.0.0/24"],"state_dir":"state"}`
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const secret = "Hunter2-very-secret"
	// EAP without a client CA: only EAP clients get in.
	c, err := LoadConfig(write(`{"method":"pubkey","cert":"gw.pem","key":"gw.key","eap":{"users":{"alice":"` + secret + `","bob":"b"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	signer, chain, cas, err := c.Credentials()
	if err != nil || signer == nil || len(chain) != 1 || len(cas) != 0 {
		t.Fatalf("Credentials = %v %d %d %v", signer, len(chain), len(cas), err)
	}
	users := c.EAPUsers()
	if users == nil {
		t.Fatal("no EAP users")
	}
	if pw, ok := users("alice"); !ok || pw != secret {
		t.Error("alice not found")
	}
	if _, ok := users("carol"); ok {
		t.Error("carol found")
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "c", c)
	for _, s := range []string{logged.String(), c.String(), fmt.Sprintf("%v %+v %#v", c.Auth, c.Auth.EAP, c.Auth.EAP)} {
		if strings.Contains(s, secret) {
			t.Errorf("password in %q", s)
		}
	}
	if !strings.Contains(logged.String(), "alice") {
		t.Errorf("log %q does not name the EAP users", logged.String())
	}
	// With a CA, certificate clients get in too.
	if c, err = LoadConfig(write(`{"method":"pubkey","cert":"gw.pem","key":"gw.key","ca":"ca.pem","eap":{"users":{"alice":"x"}}}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, cas, err := c.Credentials(); err != nil || len(cas) != 1 {
		t.Errorf("Credentials with ca: %d %v", len(cas), err)
	}
	// EAP-TLS alone, with the client CA.
	if c, err = LoadConfig(write(`{"method":"pubkey","cert":"gw.pem","key":"gw.key","ca":"ca.pem","eap":{"tls":true}}`)); err != nil || !c.EAPTLS() || c.EAPUsers() != nil {
		t.Errorf("eap.tls: %v", err)
	}
	// Without eap nothing changes.
	if c, err = LoadConfig(write(`{"method":"pubkey","cert":"gw.pem","key":"gw.key","ca":"ca.pem"}`)); err != nil || c.EAPUsers() != nil {
		t.Errorf("no eap: %v", err)
	}

	for name, tc := range map[string]struct{ auth, want string }{
		"psk method":     {`{"method":"psk","psk":"` + secret + `","eap":{"users":{"alice":"` + secret + `"}}}`, `auth.eap: needs method "pubkey"`},
		"no users":       {`{"method":"pubkey","cert":"gw.pem","key":"gw.key","eap":{"users":{}}}`, "auth.eap.users: required"},
		"users missing":  {`{"method":"pubkey","cert":"gw.pem","key":"gw.key","eap":{}}`, "auth.eap.users: required"},
		"tls without ca": {`{"method":"pubkey","cert":"gw.pem","key":"gw.key","eap":{"tls":true}}`, "auth.ca: required with auth.eap.tls"},
		"empty password": {`{"method":"pubkey","cert":"gw.pem","key":"gw.key","eap":{"users":{"alice":""}}}`, `auth.eap.users["alice"]: invalid password`},
		"empty name":     {`{"method":"pubkey","cert":"gw.pem","key":"gw.key","eap":{"users":{"":"` + secret + `"}}}`, `auth.eap.users[""]: invalid EAP identity`},
		"control char":   {`{"method":"pubkey","cert":"gw.pem","key":"gw.key","eap":{"users":{"a\nb":"` + secret + `"}}}`, `invalid EAP identity`},
		"long password":  {`{"method":"pubkey","cert":"gw.pem","key":"gw.key","eap":{"users":{"alice":"` + strings.Repeat("p", 257) + `"}}}`, `auth.eap.users["alice"]: invalid password`},
		"unknown key":    {`{"method":"pubkey","cert":"gw.pem","key":"gw.key","eap":{"users":{"alice":"x"},"method":"md5"}}`, `auth.eap: unknown field "method"`},
		"wrong type":     {`{"method":"pubkey","cert":"gw.pem","key":"gw.key","eap":{"users":{"alice":1}}}`, "auth.eap.users"},
		"no ca, no eap":  {`{"method":"pubkey","cert":"gw.pem","key":"gw.key"}`, "auth.ca: required"},
	} {
		p := write(tc.auth)
		_, err := LoadConfig(p)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, secret) || strings.Contains(msg, "ppppp") {
			t.Errorf("%s: error %q, want %q and no password", name, msg, tc.want)
		}
	}
}
