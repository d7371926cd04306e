package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

const (
	testPSK    = "s3cr3t-psk-value"
	testPSK2   = "per-client-s3cr3t"
	testKeyHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
)

// designExample is the gateway config of DESIGN.md with the placeholders
// filled in.
var designExample = `{"listen":["192.0.2.1"],"id":"gw.example","auth":{"method":"psk","psk":"` + testPSK + `"},
  "pool":["10.100.0.0/24"],"local_ts":["10.200.0.0/24"],
  "ike_proposals":["aes256gcm16-prfsha256-x25519"],"esp_proposals":["aes256gcm16"],
  "qcd":{"secret_file":"/var/lib/qcdvpn-gw/qcd.secret"},
  "tickets":{"keys":[{"id":"k1","key_hex":"` + testKeyHex + `"}],"lifetime":"1h"},
  "data":"tun","state_dir":"/var/lib/qcdvpn-gw"}`

func TestParseConfigDesignExample(t *testing.T) {
	c, err := ParseConfig([]byte(designExample))
	if err != nil {
		t.Fatal(err)
	}
	listen, err := c.ListenAddrs()
	if err != nil || len(listen) != 1 || listen[0] != netip.MustParseAddrPort("192.0.2.1:4500") {
		t.Errorf("ListenAddrs = %v, %v", listen, err)
	}
	id, err := c.Identity()
	if err != nil || !id.Equal(auth.Identity{Type: auth.IDFQDN, Data: []byte("gw.example")}) {
		t.Errorf("Identity = %v, %v", id, err)
	}
	v4, v6, err := c.Pools()
	if err != nil || v4 != netip.MustParsePrefix("10.100.0.0/24") || v6.IsValid() {
		t.Errorf("Pools = %v %v %v", v4, v6, err)
	}
	if lp := c.LocalPrefixes(); len(lp) != 1 || lp[0] != netip.MustParsePrefix("10.200.0.0/24") {
		t.Errorf("LocalPrefixes = %v", lp)
	}
	ikeP, espP, err := c.Proposals()
	if err != nil || len(ikeP) != 1 || len(espP) != 1 {
		t.Errorf("Proposals = %v %v %v", ikeP, espP, err)
	} else if ikeP[0].String() != "aes256gcm16-prfsha256-x25519" || espP[0].String() != "aes256gcm16" {
		t.Errorf("Proposals = %s, %s", ikeP[0], espP[0])
	}
	keys, err := c.TicketKeys()
	if err != nil || len(keys) != 1 || keys[0].ID != "k1" || keys[0].Key[0] != 0x00 || keys[0].Key[31] != 0xff {
		t.Errorf("TicketKeys = %v, %v", keys, err)
	}
	if c.TicketLifetime() != time.Hour {
		t.Errorf("TicketLifetime = %s", c.TicketLifetime())
	}
	if c.DataMode() != DataTUN || c.TUNName() != DefaultTUNName {
		t.Errorf("data %q tun %q", c.DataMode(), c.TUNName())
	}
	if c.QCDSecretFile() != "/var/lib/qcdvpn-gw/qcd.secret" || c.QCDReplyRate() != DefaultQCDReplyRate || c.QCDRollover() != 0 {
		t.Errorf("QCD %q %g %s", c.QCDSecretFile(), c.QCDReplyRate(), c.QCDRollover())
	}
	if c.EffectiveCookieThreshold() != DefaultCookieThreshold {
		t.Errorf("cookie threshold %d", c.EffectiveCookieThreshold())
	}
	if tm := c.SessionTimers(); tm.Liveness != DefaultLiveness || tm.IKELifetime != 0 || tm.ChildLifetime != 0 {
		t.Errorf("timers %+v", tm)
	}
	psk, err := c.PSKFunc()
	if err != nil || psk == nil || string(psk(auth.ParseIdentity("anyone.example"))) != testPSK {
		t.Errorf("PSKFunc: %v", err)
	}
	if s, ch, cas, err := c.Credentials(); s != nil || ch != nil || cas != nil || err != nil {
		t.Errorf("Credentials for psk: %v %v %v %v", s, ch, cas, err)
	}
	// Secrets stay out of String, %#v and logs.
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("cfg", "config", *c)
	for _, out := range []string{c.String(), fmt.Sprintf("%v %+v %#v", c, *c, *c), logged.String()} {
		if strings.Contains(out, testPSK) || strings.Contains(out, testKeyHex) {
			t.Errorf("secret in output: %s", out)
		}
	}
	if !strings.Contains(logged.String(), `"k1"`) || !strings.Contains(logged.String(), "gw.example") {
		t.Errorf("log lacks the non-secret fields: %s", logged.String())
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"listen":["[2001:db8::1]:4501","192.0.2.1:500"],"id":"gw@example.org",
		"auth":{"method":"psk","psk":"0x0102"},"local_ts":["0.0.0.0/0","::/0"],"state_dir":"st",
		"pool":["fd00:100::/64","10.100.0.0/16"],"dns":["10.200.0.53","fd00::53"],
		"cookie_threshold":-1,"timers":{"liveness":"5s","ike_lifetime":"4h","child_lifetime":"0s"},
		"qcd":{"rollover":"24h","reply_rate":2.5}}`))
	if err != nil {
		t.Fatal(err)
	}
	listen, _ := c.ListenAddrs()
	if len(listen) != 2 || listen[0] != netip.MustParseAddrPort("[2001:db8::1]:4501") || listen[1].Port() != 500 {
		t.Errorf("ListenAddrs = %v", listen)
	}
	if id, _ := c.Identity(); id.Type != auth.IDRFC822 {
		t.Errorf("identity type %d, want RFC822", id.Type)
	}
	v4, v6, _ := c.Pools()
	if v4 != netip.MustParsePrefix("10.100.0.0/16") || v6 != netip.MustParsePrefix("fd00:100::/64") {
		t.Errorf("Pools = %v %v", v4, v6)
	}
	if dns, _ := c.DNSServers(); len(dns) != 2 {
		t.Errorf("DNS = %v", dns)
	}
	ikeP, espP, _ := c.Proposals()
	if len(ikeP) != len(DefaultIKEProposals()) || len(espP) != len(DefaultESPProposals()) {
		t.Errorf("default proposals %d %d", len(ikeP), len(espP))
	}
	if c.DataMode() != DataNetstack || c.EffectiveCookieThreshold() != 0 {
		t.Errorf("data %q cookies %d", c.DataMode(), c.EffectiveCookieThreshold())
	}
	if tm := c.SessionTimers(); tm.Liveness != 5*time.Second || tm.IKELifetime != 4*time.Hour || tm.ChildLifetime != 0 {
		t.Errorf("timers %+v", tm)
	}
	if c.QCDSecretFile() != filepath.Join("st", "qcd.secret") || c.QCDRollover() != 24*time.Hour || c.QCDReplyRate() != 2.5 {
		t.Errorf("QCD %q %s %g", c.QCDSecretFile(), c.QCDRollover(), c.QCDReplyRate())
	}
	if c.TicketLifetime() != DefaultTicketLifetime {
		t.Errorf("ticket lifetime %s", c.TicketLifetime())
	}
	if keys, err := c.TicketKeys(); err != nil || len(keys) != 0 {
		t.Errorf("TicketKeys = %v %v", keys, err)
	}
	psk, _ := c.PSKFunc()
	if got := psk(auth.ParseIdentity("x")); !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("hex PSK = %x", got)
	}
}

func TestConfigPerClientPSKs(t *testing.T) {
	c, err := ParseConfig([]byte(`{"listen":["192.0.2.1"],"id":"gw.example","auth":{"method":"psk"},
		"psks":{"alice.example":"` + testPSK2 + `","bob@example.org":"0sYm9i","10.1.2.3":"ip"},
		"local_ts":["10.200.0.0/24"],"state_dir":"/tmp/x"}`))
	if err != nil {
		t.Fatal(err)
	}
	psk, err := c.PSKFunc()
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"ALICE.example.": testPSK2, "bob@example.org": "bob", "10.1.2.3": "ip", "carol.example": ""} {
		if got := string(psk(auth.ParseIdentity(id))); got != want {
			t.Errorf("PSK of %s = %q, want %q", id, got, want)
		}
	}
	// Without any PSK (pubkey only) the lookup is nil.
	c.PSKs, c.Auth.PSK = nil, ""
	if f, err := c.PSKFunc(); f != nil || err != nil {
		t.Errorf("PSKFunc without PSKs: %v", err)
	}
}

// setPath sets a dotted path ("tickets.keys.0.key_hex") in a decoded JSON
// document; a nil value deletes the member.
func setPath(t *testing.T, doc map[string]any, path string, v any) {
	t.Helper()
	parts := strings.Split(path, ".")
	var cur any = doc
	for i, p := range parts {
		last := i == len(parts)-1
		switch node := cur.(type) {
		case map[string]any:
			if last {
				if v == nil {
					delete(node, p)
				} else {
					node[p] = v
				}
				return
			}
			if node[p] == nil {
				node[p] = map[string]any{}
			}
			cur = node[p]
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil || n >= len(node) {
				t.Fatalf("bad path %s", path)
			}
			if last {
				node[n] = v
				return
			}
			cur = node[n]
		default:
			t.Fatalf("bad path %s", path)
		}
	}
}

func mutated(t *testing.T, path string, v any) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(designExample), &doc); err != nil {
		t.Fatal(err)
	}
	setPath(t, doc, path, v)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pemOf returns a certificate and key for the pubkey tests.
func pemOf(t *testing.T) (pki *testbed.PKI, cert, key []byte) {
	t.Helper()
	pki = testbed.NewPKI(t, "ecdsa")
	cert, key = pki.Issue(t, "gw.example", "gw.example")
	return pki, cert, key
}

func TestConfigBadFields(t *testing.T) {
	strs := func(s ...string) []any {
		out := make([]any, len(s))
		for i, v := range s {
			out[i] = v
		}
		return out
	}
	key := func(id, hex string) []any { return []any{map[string]any{"id": id, "key_hex": hex}} }
	for _, c := range []struct {
		path  string
		value any
		want  string // expected in the error: the field and the reason
	}{
		{"listen", nil, "listen: required"},
		{"listen", strs(), "listen: required"},
		{"listen", strs("1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.5", "1.1.1.6", "1.1.1.7", "1.1.1.8", "1.1.1.9"), "listen: more than 8"},
		{"listen", strs("gw.example"), `listen[0]: "gw.example" is a host name`},
		{"listen", strs("gw.example:4500"), `listen[0]: "gw.example" is a host name`},
		{"listen", strs("192.0.2.1:0"), "listen[0]: invalid address \"192.0.2.1:0\": port 0"},
		{"listen", strs("192.0.2.1:99999"), "listen[0]: invalid address"},
		{"listen", strs("2001:db8::1:4500x"), "listen[0]: invalid address"},
		{"listen", strs("192.0.2.1", "192.0.2.1:4500"), "listen[1]: duplicate of listen[0]"},
		{"id", nil, "id: required"},
		{"id", "%any", "id: wildcard"},
		{"id", "@#zz", "id: identity \"@#zz\": key id is not hex"},
		{"id", "C=CH, bogus", "id: "},
		{"id", "gw\nexample", "id: contains a control character"},
		{"auth.method", nil, "auth.method: required"},
		{"auth.method", "eap", "auth.method: unknown method \"eap\""},
		{"auth.psk", nil, "auth.psk: required for method \"psk\""},
		{"auth.psk", "0xZZ" + testPSK, "auth.psk: invalid hex"},
		{"auth.psk", "0s!!" + testPSK, "auth.psk: invalid base64"},
		{"auth.psk", "0x", "auth.psk: empty after its prefix"},
		{"auth.cert", "/etc/cert.pem", "auth.cert: not used with method \"psk\""},
		{"auth.ca", "/etc/ca.pem", "auth.ca: not used with method \"psk\""},
		{"psks", map[string]any{"%any": testPSK2}, `psks["%any"]: wildcard`},
		{"psks", map[string]any{"alice.example": "0x" + testPSK2}, `psks["alice.example"]: invalid hex`},
		{"psks", map[string]any{"alice.example": ""}, `psks["alice.example"]: empty`},
		{"psks", map[string]any{"alice.example": "a", "ALICE.example": "b"}, `psks["alice.example"]: same identity`},
		{"psks", map[string]any{"alice.example": 5}, `psks["alice.example"]: want a string, got a number`},
		{"pool", strs("10.100.0.1/24"), "pool[0]: invalid prefix \"10.100.0.1/24\": host bits set"},
		{"pool", strs("10.100.0.1"), "pool[0]: invalid prefix \"10.100.0.1\" (want address/bits"},
		{"pool", strs("10.100.0.0/24", "10.101.0.0/24"), "pool[1]: second IPv4 pool"},
		{"pool", strs("fd00::/64", "fd01::/64"), "pool[1]: second IPv6 pool"},
		{"pool", strs("10.1.0.0/24", "fd00::/64", "10.2.0.0/24"), "pool: more than two"},
		{"pool", strs("::ffff:10.0.0.0/104"), "pool[0]: invalid prefix \"::ffff:10.0.0.0/104\" (write IPv4-mapped"},
		{"dns", strs("dns.example"), "dns[0]: invalid IP address"},
		{"dns", strs("0.0.0.0"), "dns[0]: \"0.0.0.0\" is not a unicast address"},
		{"dns", strs("10.0.0.53", "10.0.0.53"), "dns[1]: duplicate of dns[0]"},
		{"local_ts", nil, "local_ts: required"},
		{"local_ts", strs("10.200.0.0/24", "10.200.0.0/24"), "local_ts[1]: duplicate of local_ts[0]"},
		{"local_ts", strs("bogus"), "local_ts[0]: invalid prefix"},
		{"ike_proposals", strs("aes256gcm16-sha256"), "ike_proposals[0]: invalid proposal"},
		{"ike_proposals", strs("AES256-sha256-modp2048"), "ike_proposals[0]: invalid proposal \"AES256-sha256-modp2048\": invalid character 'A'"},
		{"ike_proposals", strs("aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-x25519"), "ike_proposals[1]: duplicate of ike_proposals[0]"},
		{"esp_proposals", strs("aes256gcm16-prfsha256"), "esp_proposals[0]: invalid proposal"},
		{"esp_proposals", strs("aes256--sha256"), "esp_proposals[0]: invalid proposal \"aes256--sha256\": empty algorithm"},
		{"qcd.secret_file", "a\x00b", "qcd.secret_file: path contains a control character"},
		{"qcd.rollover", "soon", "qcd.rollover: invalid duration \"soon\""},
		{"qcd.rollover", "1s", "qcd.rollover: \"1s\" is out of range"},
		{"qcd.reply_rate", -1, "qcd.reply_rate: -1 is out of range"},
		{"qcd.reply_rate", 1e7, "qcd.reply_rate: 1e+07 is out of range"},
		{"qcd.reply_rate", "fast", "qcd.reply_rate: want a number, got a string"},
		{"tickets.keys", key("k1", testKeyHex[:63]), "tickets.keys[0].key_hex: want 64 hex digits"},
		{"tickets.keys", key("k1", testKeyHex[:62]+"zz"), "tickets.keys[0].key_hex: want 64 hex digits"},
		{"tickets.keys", key("k1", strings.Repeat("0", 64)), "tickets.keys[0].key_hex: all zeros"},
		{"tickets.keys", key("", testKeyHex), "tickets.keys[0].id: required"},
		{"tickets.keys", key("k 1", testKeyHex), "tickets.keys[0].id: invalid character ' '"},
		{"tickets.keys", key(strings.Repeat("k", 65), testKeyHex), "tickets.keys[0].id: longer than 64"},
		{"tickets.keys", append(key("k1", testKeyHex), key("k1", testKeyHex)...), "tickets.keys[1].id: duplicate of tickets.keys[0].id"},
		{"tickets.keys", map[string]any{}, "tickets.keys: want an array of objects, got an object"},
		{"tickets.lifetime", "48h", "tickets.lifetime: \"48h\" is out of range 1s..24h0m0s"},
		{"tickets.lifetime", "1 hour", "tickets.lifetime: invalid duration"},
		{"redirect.init_to", "gw2.example:500", "redirect.init_to: want an IP address or a DNS name without port"},
		{"redirect.init_to", "10.0.0.300", "redirect.init_to: want an IP address or a DNS name without port: invalid host name \"10.0.0.300\""},
		{"redirect.auth_to", "0.0.0.0", "redirect.auth_to: \"0.0.0.0\" is not a unicast address"},
		{"data", "kernel", "data: unknown mode \"kernel\""},
		{"tun", "this-name-is-too-long", "tun: name longer than 15"},
		{"tun", "a/b", "tun: invalid character '/'"},
		{"data", nil, "tun: "}, // set below with tun: netstack takes no tun
		{"state_dir", nil, "state_dir: required"},
		{"cookie_threshold", -2, "cookie_threshold: -2 is out of range"},
		{"cookie_threshold", 1.5, "cookie_threshold: want an integer, got \"1.5\""},
		{"timers.liveness", "0s", "timers.liveness: \"0s\" is out of range"},
		{"timers.ike_lifetime", "1s", "timers.ike_lifetime: \"1s\" is out of range"},
		{"timers.child_lifetime", 60, "timers.child_lifetime: want a duration such as \"1h\", got a number"},
		{"timers.rekey", "1h", "timers: unknown field \"rekey\""},
		{"Listen", strs("192.0.2.1"), "unknown field \"Listen\" (did you mean \"listen\"?)"},
		{"auth.pks", "x", "auth: unknown field \"pks\" (did you mean \"psk\"?)"},
		{"tickets.keys", []any{map[string]any{"id": "k1", "key": testKeyHex}}, "tickets.keys[0]: unknown field \"key\""},
		{"qcd", "on", "qcd: want an object, got a string"},
	} {
		name := c.path + "=" + fmt.Sprint(c.value)
		doc := mutated(t, c.path, c.value)
		if c.path == "data" && c.value == nil {
			doc = mutated(t, "tun", "qcdgw1")
			var m map[string]any
			json.Unmarshal(doc, &m)
			delete(m, "data")
			doc, _ = json.Marshal(m)
		}
		_, err := ParseConfig(doc)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "gateway config: ") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q, want it to contain %q", name, msg, c.want)
		}
		if strings.ContainsAny(msg, "\n\r") {
			t.Errorf("%s: error is not one line: %q", name, msg)
		}
		for _, secret := range []string{testPSK, testPSK2, testKeyHex, testKeyHex[:62]} {
			if strings.Contains(msg, secret) {
				t.Errorf("%s: error %q shows a secret", name, msg)
			}
		}
	}
}

func TestConfigStrictJSON(t *testing.T) {
	for name, c := range map[string]struct{ doc, want string }{
		"unknown top-level": {`{"listen":["192.0.2.1"],"colour":"blue"}`, `gateway config: unknown field "colour"`},
		"duplicate key":     {`{"listen":["192.0.2.1"],"listen":["192.0.2.2"]}`, `duplicate field "listen"`},
		"miscased key":      {`{"ID":"gw.example"}`, `unknown field "ID" (did you mean "id"?)`},
		"trailing data":     {designExample + ` {}`, "line 6, column 50: invalid JSON: unexpected character after top-level value"},
		"not an object":     {`["listen"]`, "want a JSON object, got an array"},
		"syntax":            {"{\n  \"listen\": [\"192.0.2.1\",]\n}", "line 2, column 26: invalid JSON: unexpected character looking for beginning of value"},
		"truncated":         {`{"listen":`, "invalid JSON: unexpected end of input"},
		"empty":             {``, "invalid JSON"},
		"wrong type":        {`{"listen":"192.0.2.1"}`, "listen: want an array of strings, got a string"},
		"wrong elem type":   {`{"listen":[1]}`, "listen[0]: want a string, got a number"},
		"bool":              {`{"data":true}`, "data: want a string, got a boolean"},
		"huge int":          {`{"cookie_threshold":1e3}`, "cookie_threshold: want an integer"},
		"too large":         {`{"id":"` + strings.Repeat("a", MaxConfigSize) + `"}`, "too large"},
		// A control character inside the PSK: the error names neither it nor its neighbours.
		"bad char in psk": {`{"auth":{"psk":"` + testPSK + "\x01" + `"}}`, "invalid JSON: unexpected character in string literal"},
	} {
		_, err := ParseConfig([]byte(c.doc))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.want) || strings.Contains(msg, testPSK) || strings.ContainsAny(msg, "\n\x01") {
			t.Errorf("%s: error %q, want %q", name, msg, c.want)
		}
	}
	// null counts as absent.
	doc := strings.Replace(designExample, `"data":"tun"`, `"data":null,"dns":null`, 1)
	if c, err := ParseConfig([]byte(doc)); err != nil || c.DataMode() != DataNetstack {
		t.Errorf("null fields: %v", err)
	}
}

func TestConfigPubkey(t *testing.T) {
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
			"local_ts":["10.200.0.0/24"],"state_dir":"state","qcd":{"secret_file":"qcd.secret"}}`
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Relative paths are relative to the config file.
	c, err := LoadConfig(write(`{"method":"pubkey","cert":"gw.pem","key":"gw.key","ca":"ca.pem"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != filepath.Join(dir, "state") || c.QCDSecretFile() != filepath.Join(dir, "qcd.secret") {
		t.Errorf("paths not resolved: %q %q", c.StateDir, c.QCDSecretFile())
	}
	signer, chain, cas, err := c.Credentials()
	if err != nil || signer == nil || len(chain) != 1 || len(cas) != 1 || !cas[0].Equal(pki.CACert) {
		t.Fatalf("Credentials = %v %d %d %v", signer, len(chain), len(cas), err)
	}
	if f, err := c.PSKFunc(); f != nil || err != nil {
		t.Errorf("pubkey without PSK: PSKFunc %v", err)
	}

	// Inline PEM works too, and PSK clients may be let in as well.
	inline, _ := json.Marshal(map[string]string{"method": "pubkey", "cert": string(cert), "key": string(key), "ca": string(pki.CAPEM), "psk": testPSK})
	c, err = LoadConfig(write(string(inline)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := c.Credentials(); err != nil {
		t.Fatal(err)
	}
	if f, _ := c.PSKFunc(); f == nil {
		t.Error("pubkey with psk: no PSK lookup")
	}

	otherCert, otherKey := pki.Issue(t, "other.example")
	for name, c := range map[string]struct{ auth, want string }{
		"no cert":      {`{"method":"pubkey","key":"gw.key","ca":"ca.pem"}`, "auth.cert: required for method \"pubkey\""},
		"no ca":        {`{"method":"pubkey","cert":"gw.pem","key":"gw.key"}`, "auth.ca: required"},
		"missing file": {`{"method":"pubkey","cert":"nope.pem","key":"gw.key","ca":"ca.pem"}`, "auth.cert: cannot read"},
		"key as cert":  {`{"method":"pubkey","cert":"gw.key","key":"gw.key","ca":"ca.pem"}`, "auth.cert: no certificate found"},
		"cert as key":  {`{"method":"pubkey","cert":"gw.pem","key":"gw.pem","ca":"ca.pem"}`, "auth.key: not a valid private key"},
		"wrong key":    {mustJSON(map[string]string{"method": "pubkey", "cert": "gw.pem", "key": string(otherKey), "ca": "ca.pem"}), "auth.key: does not match"},
		"wrong id":     {mustJSON(map[string]string{"method": "pubkey", "cert": string(otherCert), "key": string(otherKey), "ca": "ca.pem"}), "auth.cert: does not hold id \"gw.example\""},
		"bad inline":   {mustJSON(map[string]string{"method": "pubkey", "cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "key": "gw.key", "ca": "ca.pem"}), "auth.cert: "},
		"bad key pem":  {mustJSON(map[string]string{"method": "pubkey", "cert": "gw.pem", "key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "ca": "ca.pem"}), "auth.key: not a valid private key"},
	} {
		p := write(c.auth)
		_, err := LoadConfig(p)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.want) || !strings.Contains(msg, p) || strings.Contains(msg, "PRIVATE") {
			t.Errorf("%s: error %q, want the file and %q", name, msg, c.want)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestLoadConfigErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.json")
	if _, err := LoadConfig(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"listen":[]}`), 0o600)
	_, err := LoadConfig(bad)
	if err == nil || err.Error() != "gateway config: "+bad+": listen: required (one or more IP addresses, such as \"192.0.2.1\")" {
		t.Errorf("bad file: %v", err)
	}
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(designExample), 0o600)
	if c, err := LoadConfig(good); err != nil || c.StateDir != "/var/lib/qcdvpn-gw" {
		t.Errorf("good file: %v", err)
	}
}

func TestValidateGoBuilt(t *testing.T) {
	c := &Config{Listen: []string{"192.0.2.1"}, ID: "gw.example", Auth: AuthConfig{Method: AuthPSK, PSK: testPSK},
		LocalTS: []string{"10.200.0.0/24"}, StateDir: "/tmp/gw"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.QCD.ReplyRate = nan()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "qcd.reply_rate") {
		t.Errorf("NaN reply rate: %v", err)
	}
	if c.QCDReplyRate() != DefaultQCDReplyRate {
		t.Errorf("QCDReplyRate with NaN = %g", c.QCDReplyRate())
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}
