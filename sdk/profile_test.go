package sdk

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
)

// Secrets used in tests; none may show up in errors or logs.
const (
	testPSK      = "TOPSECRET-psk-7f3a"
	testPassword = "TOPSECRET-password-91c2"
)

// baseProfile is a minimal valid profile as a generic JSON tree.
func baseProfile() map[string]any {
	return map[string]any{
		"name":      "corp",
		"gateways":  []any{"192.0.2.1"},
		"remote_id": "gw.example",
		"local_id":  "client.example",
		"auth":      map[string]any{"method": "psk", "psk": testPSK},
	}
}

// del marks a key to delete in set.
type del struct{}

// set sets (or with del{} deletes) the value at a dotted path, creating objects.
func set(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, _ := m[k].(map[string]any)
		next = maps.Clone(next) // edits must not leak into shared test values
		if next == nil {
			next = map[string]any{}
		}
		m[k] = next
		m = next
	}
	if _, ok := v.(del); ok {
		delete(m, keys[len(keys)-1])
		return
	}
	m[keys[len(keys)-1]] = v
}

// doc builds a profile document from baseProfile with path/value edits.
func doc(t testing.TB, edits ...any) []byte {
	t.Helper()
	m := baseProfile()
	for i := 0; i+1 < len(edits); i += 2 {
		set(m, edits[i].(string), edits[i+1])
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pki is a throw-away CA, a client certificate it signs, and keys.
type pki struct {
	caPEM, certPEM, keyPEM, otherKeyPEM string
}

func newPKI(t testing.TB) pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "client.example"},
		DNSNames:  []string{"client.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyPEM := func(k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	return pki{
		caPEM:       string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		certPEM:     string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})),
		keyPEM:      keyPEM(key),
		otherKeyPEM: keyPEM(other),
	}
}

func TestParseExampleProfile(t *testing.T) {
	data, err := os.ReadFile("testdata/example-profile.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseProfile(data)
	if err != nil {
		t.Fatalf("ParseProfile: %v", err)
	}
	if p.Name != "corp" || p.RemoteID != "gw.example" || p.LocalID != "client.example" ||
		p.Auth.Method != "psk" || p.Auth.PSK != "..." || p.StateDir != "/var/lib/qcdvpn" {
		t.Errorf("fields: %+v", p)
	}
	gws, err := p.GatewayEndpoints()
	if err != nil {
		t.Fatal(err)
	}
	want := []Gateway{{"192.0.2.1", 500}, {"192.0.2.9", 4500}, {"vpn.example.com", 500}}
	if !reflect.DeepEqual(gws, want) {
		t.Errorf("gateways = %v, want %v", gws, want)
	}
	if !reflect.DeepEqual(p.IKEProposals, []string{"aes256gcm16-prfsha256-x25519"}) ||
		!reflect.DeepEqual(p.ESPProposals, []string{"aes256gcm16"}) {
		t.Errorf("proposals were replaced by defaults: %q %q", p.IKEProposals, p.ESPProposals)
	}
	r, err := p.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Include) != 1 || r.Include[0] != netip.MustParsePrefix("10.200.0.0/24") {
		t.Errorf("include = %v", r.Include)
	}
	if !r.QCD || !r.Resumption || !r.UseDNS || r.MTU != 1400 || r.Timers != DefaultTimerValues() {
		t.Errorf("resolved = %+v", r)
	}
	if r.RemoteID.Type != auth.IDFQDN || string(r.RemoteID.Data) != "gw.example" {
		t.Errorf("remote id = %v", r.RemoteID)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, file := range []string{"testdata/example-profile.json"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		p1, err := ParseProfile(data)
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(p1)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := ParseProfile(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(p1, p2) {
			t.Errorf("round trip changed the profile:\n%#v\n%#v", *p1, *p2)
		}
		// Secrets must survive marshalling: this is how profiles are saved.
		if !bytes.Contains(out, []byte(`"psk":"..."`)) {
			t.Errorf("marshalled profile lost the psk: %s", out)
		}
	}
}

func TestDefaults(t *testing.T) {
	p, err := ParseProfile(doc(t))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.IKEProposals, DefaultIKEProposals()) ||
		!reflect.DeepEqual(p.ESPProposals, DefaultESPProposals()) ||
		!reflect.DeepEqual(p.Traffic.Include, []string{"0.0.0.0/0", "::/0"}) ||
		p.Traffic.Exclude != nil {
		t.Errorf("lists: %q %q %+v", p.IKEProposals, p.ESPProposals, p.Traffic)
	}
	if p.DNS == nil || p.DNS.Use == nil || !*p.DNS.Use || !p.UseDNS() {
		t.Errorf("dns: %+v", p.DNS)
	}
	if p.QCD.Enabled == nil || !*p.QCD.Enabled || !p.QCDEnabled() ||
		p.Resumption.Enabled == nil || !*p.Resumption.Enabled || !p.ResumptionEnabled() {
		t.Errorf("qcd/resumption: %+v %+v", p.QCD, p.Resumption)
	}
	wantTimers := Timers{RetransmitTimeout: "1s", RetransmitTries: 5, RetransmitBase: 2, Keepalive: "20s",
		Liveness: "30s", FastLiveness: "1s", IKELifetime: "4h0m0s", ChildLifetime: "1h0m0s"}
	if p.Timers != wantTimers {
		t.Errorf("timers = %+v", p.Timers)
	}
	if p.MTU != 1400 || p.EffectiveMTU() != 1400 {
		t.Errorf("mtu = %d", p.MTU)
	}
	if p.RetransmitTimeout() != time.Second || p.RetransmitTries() != 5 || p.RetransmitBase() != 2 ||
		p.Keepalive() != 20*time.Second || p.Liveness() != 30*time.Second || p.FastLiveness() != time.Second ||
		p.IKELifetime() != 4*time.Hour || p.ChildLifetime() != time.Hour {
		t.Error("timer accessors do not return the defaults")
	}

	// A zero Profile built in Go has the same defaults through the accessors.
	var z Profile
	if !z.QCDEnabled() || !z.ResumptionEnabled() || !z.UseDNS() || z.EffectiveMTU() != DefaultMTU ||
		z.RetransmitTimeout() != time.Second {
		t.Error("zero Profile accessors do not return defaults")
	}
	// Default funcs return fresh slices: callers may modify them.
	DefaultIKEProposals()[0] = "x"
	if DefaultIKEProposals()[0] == "x" {
		t.Error("DefaultIKEProposals shares its slice")
	}
}

func TestExplicitValues(t *testing.T) {
	p, err := ParseProfile(doc(t,
		"qcd.enabled", false, "resumption.enabled", false, "dns.use", false, "mtu", 1280,
		"traffic.exclude", []any{"10.0.0.0/8", "fd00::/8"},
		"timers", map[string]any{"retransmit_timeout": "500ms", "retransmit_tries": 3, "retransmit_base": 1.5,
			"keepalive": "0s", "liveness": "10s", "fast_liveness": "250ms", "ike_lifetime": "8h", "child_lifetime": "30m"},
	))
	if err != nil {
		t.Fatal(err)
	}
	if p.QCDEnabled() || p.ResumptionEnabled() || p.UseDNS() || p.EffectiveMTU() != 1280 {
		t.Errorf("flags: %+v", p)
	}
	v, err := p.TimerValues()
	if err != nil {
		t.Fatal(err)
	}
	want := TimerValues{500 * time.Millisecond, 3, 1.5, 0, 10 * time.Second, 250 * time.Millisecond, 8 * time.Hour, 30 * time.Minute}
	if v != want {
		t.Errorf("timers = %+v, want %+v", v, want)
	}
	_, ex, err := p.TrafficPrefixes()
	if err != nil || len(ex) != 2 {
		t.Errorf("exclude = %v, %v", ex, err)
	}
	// null means absent.
	if _, err := ParseProfile([]byte(`{"name":"corp","gateways":["192.0.2.1"],"remote_id":"gw","local_id":"c",
		"auth":{"method":"psk","psk":"x","cert":null},"dns":null,"mtu":null,"qcd":{"enabled":null}}`)); err != nil {
		t.Errorf("nulls: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	p := newPKI(t)
	pubkey := []any{"auth", map[string]any{"method": "pubkey", "cert": p.certPEM, "key": p.keyPEM}, "ca", p.caPEM}
	with := func(base []any, more ...any) []any { return append(append([]any{}, base...), more...) }
	many := func(n int, f func(i int) string) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	tests := []struct {
		name  string
		edits []any
		want  string // the whole error message
	}{
		// name
		{"name missing", []any{"name", del{}}, `profile: name: required`},
		{"name long", []any{"name", strings.Repeat("n", 65)}, `profile: name: longer than 64 bytes`},
		{"name control", []any{"name", "a\nb"}, `profile: name: contains a control character`},
		// gateways
		{"gateways missing", []any{"gateways", del{}}, `profile: gateways: at least one gateway is required`},
		{"gateways empty", []any{"gateways", []any{}}, `profile: gateways: at least one gateway is required`},
		{"gateway empty string", []any{"gateways", []any{"192.0.2.1", ""}}, `profile: gateways[1]: empty`},
		{"port too big", []any{"gateways", []any{"192.0.2.1", "192.0.2.2:99999"}}, `profile: gateways[1]: invalid port "99999"`},
		{"port zero", []any{"gateways", []any{"gw.example:0"}}, `profile: gateways[0]: invalid port "0"`},
		{"port empty", []any{"gateways", []any{"gw.example:"}}, `profile: gateways[0]: invalid port ""`},
		{"port sign", []any{"gateways", []any{"gw.example:+500"}}, `profile: gateways[0]: invalid port "+500"`},
		{"port name", []any{"gateways", []any{"gw.example:ike"}}, `profile: gateways[0]: invalid port "ike"`},
		{"v6 port", []any{"gateways", []any{"[2001:db8::1]:70000"}}, `profile: gateways[0]: invalid port "70000"`},
		{"v6 unclosed", []any{"gateways", []any{"[2001:db8::1"}}, `profile: gateways[0]: "[2001:db8::1": missing ']'`},
		{"v6 junk", []any{"gateways", []any{"[2001:db8::1]500"}}, `profile: gateways[0]: "[2001:db8::1]500": unexpected "500" after ']'`},
		{"v4 in brackets", []any{"gateways", []any{"[192.0.2.1]:500"}}, `profile: gateways[0]: "[192.0.2.1]:500": brackets must hold an IPv6 address`},
		{"bad v6", []any{"gateways", []any{"2001:db8::g"}}, `profile: gateways[0]: invalid IPv6 address "2001:db8::g" (write [address]:port to give a port)`},
		{"bad v4", []any{"gateways", []any{"192.0.2.300"}}, `profile: gateways[0]: invalid host "192.0.2.300": not an IP address and not a DNS name`},
		{"unspecified", []any{"gateways", []any{"0.0.0.0"}}, `profile: gateways[0]: "0.0.0.0" is not a unicast address`},
		{"multicast", []any{"gateways", []any{"ff02::1"}}, `profile: gateways[0]: "ff02::1" is not a unicast address`},
		{"mapped", []any{"gateways", []any{"::ffff:192.0.2.1"}}, `profile: gateways[0]: "::ffff:192.0.2.1": write the IPv4-mapped address as IPv4`},
		{"space", []any{"gateways", []any{"gw .example"}}, `profile: gateways[0]: "gw .example" contains a space or control character`},
		{"label dash", []any{"gateways", []any{"-gw.example"}}, `profile: gateways[0]: invalid host "-gw.example": label starts or ends with '-'`},
		{"empty label", []any{"gateways", []any{"gw..example"}}, `profile: gateways[0]: invalid host "gw..example": empty label`},
		{"bad char", []any{"gateways", []any{"gw!.example"}}, `profile: gateways[0]: invalid host "gw!.example": invalid character '!'`},
		{"long label", []any{"gateways", []any{strings.Repeat("a", 64) + ".example"}}, `profile: gateways[0]: invalid host "` + strings.Repeat("a", 64) + `.example": label longer than 63 bytes`},
		{"duplicate", []any{"gateways", []any{"192.0.2.1", "GW.example", "192.0.2.1:500"}}, `profile: gateways[2]: duplicate of gateways[0]`},
		{"duplicate name", []any{"gateways", []any{"gw.example", "GW.EXAMPLE:500"}}, `profile: gateways[1]: duplicate of gateways[0]`},
		{"too many", []any{"gateways", many(33, func(i int) string { return fmt.Sprintf("192.0.2.%d", i+1) })}, `profile: gateways: more than 32 gateways`},
		// identities
		{"remote_id missing", []any{"remote_id", del{}}, `profile: remote_id: required`},
		{"local_id missing", []any{"local_id", ""}, `profile: local_id: required`},
		{"remote_id any", []any{"remote_id", "%any"}, `profile: remote_id: wildcard "%any" is not allowed; name the identity`},
		{"remote_id keyid", []any{"remote_id", "@#zz"}, `profile: remote_id: identity "@#zz": key id is not hex`},
		{"local_id control", []any{"local_id", "a\tb"}, `profile: local_id: contains a control character or invalid UTF-8`},
		{"local_id long", []any{"local_id", strings.Repeat("a", 1025)}, `profile: local_id: longer than 1024 bytes`},
		// auth
		{"method missing", []any{"auth.method", del{}}, `profile: auth.method: required (one of "psk", "pubkey", "eap-mschapv2", "eap-tls")`},
		{"method unknown", []any{"auth.method", "PSK"}, `profile: auth.method: unknown method "PSK" (want "psk", "pubkey", "eap-mschapv2" or "eap-tls")`},
		{"psk missing", []any{"auth.psk", del{}}, `profile: auth.psk: required for method "psk"`},
		{"psk empty", []any{"auth.psk", ""}, `profile: auth.psk: required for method "psk"`},
		{"psk with password", []any{"auth.password", testPassword}, `profile: auth.password: not used with method "psk"`},
		{"psk with cert", []any{"auth.cert", "/x.pem"}, `profile: auth.cert: not used with method "psk"`},
		{"psk with username", []any{"auth.username", "bob"}, `profile: auth.username: not used with method "psk"`},
		{"psk bad hex", []any{"auth.psk", "0x" + testPSK}, `profile: auth.psk: invalid hex after the "0x" prefix`},
		{"psk bad base64", []any{"auth.psk", "0s" + testPSK}, `profile: auth.psk: invalid base64 after the "0s" prefix`},
		{"psk empty hex", []any{"auth.psk", "0x"}, `profile: auth.psk: empty after its prefix`},
		{"pubkey no cert", []any{"auth", map[string]any{"method": "pubkey", "key": "/k.pem"}, "ca", "/ca.pem"}, `profile: auth.cert: required for method "pubkey"`},
		{"pubkey no key", []any{"auth", map[string]any{"method": "pubkey", "cert": "/c.pem"}, "ca", "/ca.pem"}, `profile: auth.key: required for method "pubkey"`},
		{"pubkey username", with(pubkey, "auth.username", "bob"), `profile: auth.username: not used with method "pubkey"`},
		{"pubkey psk", with(pubkey, "auth.psk", testPSK), `profile: auth.psk: not used with method "pubkey"`},
		{"eap-tls password", []any{"auth", map[string]any{"method": "eap-tls", "cert": "/c", "key": "/k", "password": testPassword}, "ca", "/ca"}, `profile: auth.password: not used with method "eap-tls"`},
		{"mschap no user", []any{"auth", map[string]any{"method": "eap-mschapv2", "password": testPassword}, "ca", "/ca"}, `profile: auth.username: required for method "eap-mschapv2"`},
		{"mschap no password", []any{"auth", map[string]any{"method": "eap-mschapv2", "username": "bob"}, "ca", "/ca"}, `profile: auth.password: required for method "eap-mschapv2"`},
		{"mschap key", []any{"auth", map[string]any{"method": "eap-mschapv2", "username": "bob", "password": testPassword, "key": "/k"}, "ca", "/ca"}, `profile: auth.key: not used with method "eap-mschapv2"`},
		{"username control", []any{"auth", map[string]any{"method": "eap-mschapv2", "username": "bo\x00b", "password": testPassword}, "ca", "/ca"}, `profile: auth.username: must be at most 253 bytes of UTF-8 without control characters`},
		{"password long", []any{"auth", map[string]any{"method": "eap-mschapv2", "username": "bob", "password": strings.Repeat("p", 257)}, "ca", "/ca"}, `profile: auth.password: must be at most 256 characters of UTF-8`},
		{"cert bad inline", with(pubkey, "auth.cert", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), `profile: auth.cert: certificate 0: x509: malformed certificate`},
		{"key bad inline", with(pubkey, "auth.key", "-----BEGIN PRIVATE KEY-----\nVE9QU0VDUkVU\n-----END PRIVATE KEY-----\n"), `profile: auth.key: not a valid private key (want unencrypted PKCS #8, PKCS #1 or SEC 1 PEM)`},
		{"key encrypted", with(pubkey, "auth.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nVE9QU0VDUkVU\n-----END ENCRYPTED PRIVATE KEY-----\n"), `profile: auth.key: encrypted private keys are not supported`},
		{"key path control", with(pubkey, "auth.key", "/k\n.pem"), `profile: auth.key: path contains a control character or invalid UTF-8`},
		// ca
		{"ca with psk", []any{"ca", p.caPEM}, `profile: ca: not used with auth.method "psk" (the gateway authenticates with the PSK too)`},
		{"ca missing", with(pubkey, "ca", del{}), `profile: ca: required for auth.method "pubkey", to verify the gateway certificate`},
		{"ca is a key", with(pubkey, "ca", p.keyPEM), `profile: ca: no certificate found`},
		// proposals
		{"ike empty", []any{"ike_proposals", []any{""}}, `profile: ike_proposals[0]: empty proposal`},
		{"ike upper", []any{"ike_proposals", []any{"aes256gcm16-prfsha256-x25519", "AES256-sha256"}}, `profile: ike_proposals[1]: invalid proposal "AES256-sha256": invalid character 'A' (want lower-case algorithm names joined by '-')`},
		{"ike double dash", []any{"ike_proposals", []any{"aes256--sha256"}}, `profile: ike_proposals[0]: invalid proposal "aes256--sha256": empty algorithm between '-'`},
		{"ike trailing dash", []any{"ike_proposals", []any{"aes256-"}}, `profile: ike_proposals[0]: invalid proposal "aes256-": empty algorithm between '-'`},
		{"ike duplicate", []any{"ike_proposals", []any{"aes256-sha256-modp2048", "aes256-sha256-modp2048"}}, `profile: ike_proposals[1]: duplicate of ike_proposals[0]`},
		{"ike too many", []any{"ike_proposals", many(33, func(i int) string { return fmt.Sprintf("aes256-sha256-modp2048-ke1_x%d", i) })}, `profile: ike_proposals: more than 32 proposals`},
		{"ike unknown alg", []any{"ike_proposals", []any{"aes256-sha256-modp1234"}}, `profile: ike_proposals[0]: invalid proposal "aes256-sha256-modp1234": unknown algorithm "modp1234"`},
		{"ike no prf", []any{"ike_proposals", []any{"aes256gcm16-x25519"}}, `profile: ike_proposals[0]: invalid proposal "aes256gcm16-x25519": ` + proposalErr("aes256gcm16-x25519", false)},
		{"esp with prf", []any{"esp_proposals", []any{"aes256gcm16", "aes256gcm16-prfsha256"}}, `profile: esp_proposals[1]: invalid proposal "aes256gcm16-prfsha256": PRF "prfsha256" is not allowed in an ESP proposal`},
		{"esp space", []any{"esp_proposals", []any{"aes256 gcm16"}}, `profile: esp_proposals[0]: invalid proposal "aes256 gcm16": invalid character ' ' (want lower-case algorithm names joined by '-')`},
		// traffic
		{"include bad", []any{"traffic.include", []any{"10.0.0/24"}}, `profile: traffic.include[0]: invalid prefix "10.0.0/24"`},
		{"include host bits", []any{"traffic.include", []any{"10.0.0.1/24"}}, `profile: traffic.include[0]: invalid prefix "10.0.0.1/24": host bits set (did you mean "10.0.0.0/24"?)`},
		{"include address", []any{"traffic.include", []any{"10.0.0.5"}}, `profile: traffic.include[0]: invalid prefix "10.0.0.5" (want address/bits, such as "10.0.0.5/32")`},
		{"include v6 address", []any{"traffic.include", []any{"fd00::5"}}, `profile: traffic.include[0]: invalid prefix "fd00::5" (want address/bits, such as "fd00::5/128")`},
		{"include bits", []any{"traffic.include", []any{"10.0.0.0/33"}}, `profile: traffic.include[0]: invalid prefix "10.0.0.0/33"`},
		{"include duplicate", []any{"traffic.include", []any{"10.0.0.0/8", "10.0.0.0/8"}}, `profile: traffic.include[1]: duplicate of traffic.include[0]`},
		{"exclude bad", []any{"traffic.exclude", []any{"10.0.0.0/8", "nope"}}, `profile: traffic.exclude[1]: invalid prefix "nope"`},
		{"include mapped", []any{"traffic.include", []any{"::ffff:10.0.0.0/104"}}, `profile: traffic.include[0]: invalid prefix "::ffff:10.0.0.0/104" (write IPv4-mapped prefixes as IPv4)`},
		// state_dir, mtu
		{"state_dir control", []any{"state_dir", "/var/\x01lib"}, `profile: state_dir: path contains a control character or invalid UTF-8`},
		{"mtu small", []any{"mtu", 575}, `profile: mtu: 575 is out of range 576..9000`},
		{"mtu big", []any{"mtu", 9001}, `profile: mtu: 9001 is out of range 576..9000`},
		{"mtu negative", []any{"mtu", -1}, `profile: mtu: -1 is out of range 576..9000`},
		// timers
		{"timer syntax", []any{"timers.keepalive", "20"}, `profile: timers.keepalive: invalid duration "20" (want a Go duration such as "30s")`},
		{"timer negative", []any{"timers.liveness", "-5s"}, `profile: timers.liveness: "-5s" is out of range 1s..1h0m0s`},
		{"timer zero", []any{"timers.liveness", "0s"}, `profile: timers.liveness: "0s" is out of range 1s..1h0m0s`},
		{"retransmit small", []any{"timers.retransmit_timeout", "10ms"}, `profile: timers.retransmit_timeout: "10ms" is out of range 100ms..1m0s`},
		{"keepalive big", []any{"timers.keepalive", "11m"}, `profile: timers.keepalive: "11m" is out of range 1s..10m0s`},
		{"ike lifetime", []any{"timers.ike_lifetime", "5s"}, `profile: timers.ike_lifetime: "5s" is out of range 10s..168h0m0s`},
		{"child lifetime", []any{"timers.child_lifetime", "200h"}, `profile: timers.child_lifetime: "200h" is out of range 10s..168h0m0s`},
		{"fast > liveness", []any{"timers.fast_liveness", "40s"}, `profile: timers.fast_liveness: 40s is longer than timers.liveness (30s)`},
		{"fast small", []any{"timers.fast_liveness", "1ms"}, `profile: timers.fast_liveness: "1ms" is out of range 100ms..1h0m0s`},
		{"tries", []any{"timers.retransmit_tries", 21}, `profile: timers.retransmit_tries: 21 is out of range 1..20`},
		{"tries negative", []any{"timers.retransmit_tries", -1}, `profile: timers.retransmit_tries: -1 is out of range 1..20`},
		{"base", []any{"timers.retransmit_base", 0.5}, `profile: timers.retransmit_base: 0.5 is out of range 1..4`},
		{"base big", []any{"timers.retransmit_base", 4.5}, `profile: timers.retransmit_base: 4.5 is out of range 1..4`},
		// JSON types and keys
		{"unknown top", []any{"gatways", []any{"x"}}, `profile: unknown field "gatways" (did you mean "gateways"?)`},
		{"unknown nested", []any{"auth.pks", "x"}, `profile: auth: unknown field "pks" (did you mean "psk"?)`},
		{"unknown no hint", []any{"zzzzzz", 1}, `profile: unknown field "zzzzzz"`},
		{"unknown timer", []any{"timers.retransmit_trys", 1}, `profile: timers: unknown field "retransmit_trys" (did you mean "retransmit_tries"?)`},
		{"miscased key", []any{"Name", "x"}, `profile: unknown field "Name" (did you mean "name"?)`},
		{"string for array", []any{"gateways", "192.0.2.1"}, `profile: gateways: want an array of strings, got a string`},
		{"number in array", []any{"gateways", []any{"192.0.2.1", 7}}, `profile: gateways[1]: want a string, got a number`},
		{"object for string", []any{"remote_id", map[string]any{}}, `profile: remote_id: want a string, got an object`},
		{"bool as string", []any{"qcd.enabled", "true"}, `profile: qcd.enabled: want true or false, got a string`},
		{"number for bool", []any{"resumption.enabled", 1}, `profile: resumption.enabled: want true or false, got a number`},
		{"array for object", []any{"auth", []any{}}, `profile: auth: want an object, got an array`},
		{"string for object", []any{"dns", "yes"}, `profile: dns: want an object, got a string`},
		{"dns use type", []any{"dns.use", "yes"}, `profile: dns.use: want true or false, got a string`},
		{"mtu string", []any{"mtu", "1400"}, `profile: mtu: want an integer, got a string`},
		{"mtu float", []any{"mtu", 1400.5}, `profile: mtu: want an integer, got 1400.5`},
		{"duration number", []any{"timers.keepalive", 20}, `profile: timers.keepalive: want a duration such as "20s", got a number`},
		{"tries float", []any{"timers.retransmit_tries", 2.5}, `profile: timers.retransmit_tries: want an integer, got 2.5`},
		{"base string", []any{"timers.retransmit_base", "2"}, `profile: timers.retransmit_base: want a number, got a string`},
		{"include number", []any{"traffic.include", []any{"10.0.0.0/8", 10}}, `profile: traffic.include[1]: want a string, got a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseProfile(doc(t, tt.edits...))
			if err == nil {
				t.Fatalf("no error, want %s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			checkErrorHygiene(t, err)
		})
	}
}

// checkErrorHygiene asserts the rules every error follows.
func checkErrorHygiene(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if !strings.HasPrefix(msg, "profile: ") || strings.ContainsAny(msg, "\n\r") {
		t.Errorf("malformed error %q", msg)
	}
	for _, s := range []string{testPSK, testPassword, "TOPSECRET", "VE9QU0VDUkVU"} {
		if strings.Contains(msg, s) {
			t.Errorf("error %q reveals a secret", msg)
		}
	}
	var pe *ProfileError
	if !errorsAs(err, &pe) {
		t.Errorf("error %T is not a *ProfileError", err)
	}
}

func errorsAs(err error, pe **ProfileError) bool {
	e, ok := err.(*ProfileError)
	*pe = e
	return ok
}

func TestRawJSONErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, `profile: line 1, column 1: invalid JSON: unexpected end of input`},
		{`{"name":"x",`, `profile: line 1, column 13: invalid JSON: unexpected end of input`},
		{"{\n  \"name\": \"corp\",\n  \"mtu\": x\n}", `profile: line 3, column 10: invalid JSON: invalid character 'x' looking for beginning of value`},
		{"{\n  \"name\": \"corp\"\n  \"mtu\": 1}", `profile: line 3, column 3: invalid JSON: invalid character '"' after object key:value pair`},
		{`{} {}`, `profile: line 1, column 4: invalid JSON: invalid character '{' after top-level value`},
		{`[]`, `profile: want a JSON object, got an array`},
		{`null`, `profile: want a JSON object, got null`},
		{`"x"`, `profile: want a JSON object, got a string`},
		{`{"name":"a","name":"b"}`, `profile: duplicate field "name"`},
		{`{"auth":{"psk":"a","psk":"b"}}`, `profile: auth: duplicate field "psk"`},
		{`{"mtu":1e400}`, `profile: mtu: want an integer, got 1e400`},
		{`{"timers":{"retransmit_base":1e400}}`, `profile: timers.retransmit_base: number 1e400 is out of range`},
		{`{"mtu":99999999999999999999}`, `profile: mtu: want an integer, got 99999999999999999999`},
		{"{\"name\":\"a\x01\"}", `profile: line 1, column 11: invalid JSON: invalid character '\x01' in string literal`},
		{strings.Repeat("[", 100000), `profile: line 1, column 10001: invalid JSON: invalid character '[' exceeded max depth`},
	}
	for _, tt := range tests {
		_, err := ParseProfile([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseProfile(%.40q):\n got %v\nwant %s", tt.in, err, tt.want)
			continue
		}
		checkErrorHygiene(t, err)
	}
	if _, err := ParseProfile(make([]byte, MaxProfileSize+1)); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("oversized profile: %v", err)
	}
}

func TestParseGateway(t *testing.T) {
	good := map[string]Gateway{
		"192.0.2.1":             {"192.0.2.1", 500},
		"192.0.2.1:4500":        {"192.0.2.1", 4500},
		"2001:db8::1":           {"2001:db8::1", 500},
		"2001:DB8:0::1":         {"2001:db8::1", 500},
		"[2001:db8::1]":         {"2001:db8::1", 500},
		"[2001:db8::1]:4500":    {"2001:db8::1", 4500},
		"[fe80::1%eth0]:500":    {"fe80::1%eth0", 500},
		"vpn.example.com":       {"vpn.example.com", 500},
		"vpn.example.com.":      {"vpn.example.com.", 500},
		"vpn.example.com:1":     {"vpn.example.com", 1},
		"localhost:65535":       {"localhost", 65535},
		"gw-2.example":          {"gw-2.example", 500},
		"_srv.example":          {"_srv.example", 500},
		"1.example":             {"1.example", 500},
		"xn--bcher-kva.example": {"xn--bcher-kva.example", 500},
	}
	for in, want := range good {
		g, err := ParseGateway(in)
		if err != nil || g != want {
			t.Errorf("ParseGateway(%q) = %v, %v; want %v", in, g, err, want)
		}
	}
	if s := (Gateway{"2001:db8::1", 500}).String(); s != "[2001:db8::1]:500" {
		t.Errorf("String = %s", s)
	}
	if s := (Gateway{"gw.example", 4500}).String(); s != "gw.example:4500" {
		t.Errorf("String = %s", s)
	}
	if !(Gateway{"192.0.2.1", 500}).IsIP() || (Gateway{"gw.example", 500}).IsIP() {
		t.Error("IsIP")
	}
}

func TestIdentities(t *testing.T) {
	for _, tt := range []struct {
		in  string
		typ uint8
	}{
		{"gw.example", auth.IDFQDN},
		{"@gw", auth.IDFQDN},
		{"client@example.com", auth.IDRFC822},
		{"192.0.2.1", auth.IDIPv4},
		{"2001:db8::1", auth.IDIPv6},
		{"C=CH, O=Example, CN=gw.example", auth.IDDN},
		{"@#0a1b2c", auth.IDKeyID},
	} {
		p, err := ParseProfile(doc(t, "remote_id", tt.in, "local_id", tt.in))
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		r, _ := p.Resolve()
		if r.RemoteID.Type != tt.typ || r.LocalID.Type != tt.typ {
			t.Errorf("%q: type %d, want %d", tt.in, r.RemoteID.Type, tt.typ)
		}
	}
	_, err := ParseProfile(doc(t, "remote_id", "C=CH, XX=bad"))
	if err == nil || !strings.HasPrefix(err.Error(), "profile: remote_id: ") {
		t.Errorf("bad DN: %v", err)
	}
}

func TestAuthMethods(t *testing.T) {
	k := newPKI(t)
	for _, a := range []map[string]any{
		{"method": "pubkey", "cert": k.certPEM, "key": k.keyPEM},
		{"method": "eap-tls", "cert": "client.pem", "key": "client.key", "username": "bob"},
		{"method": "eap-mschapv2", "username": "bob", "password": testPassword},
	} {
		if _, err := ParseProfile(doc(t, "auth", a, "ca", k.caPEM)); err != nil {
			t.Errorf("%v: %v", a["method"], err)
		}
	}
	for in, want := range map[string]string{"plain": "plain", "0x414243": "ABC", "0sQUJD": "ABC"} {
		b, err := Auth{PSK: in}.PSKBytes()
		if err != nil || string(b) != want {
			t.Errorf("PSKBytes(%q) = %q, %v", in, b, err)
		}
	}
}

func TestCredentials(t *testing.T) {
	k := newPKI(t)
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", k.caPEM)
	write("client.pem", k.certPEM)
	write("client.key", k.keyPEM)
	write("other.key", k.otherKeyPEM)
	write("profile.json", string(doc(t, "auth", map[string]any{"method": "pubkey", "cert": "client.pem", "key": "client.key"},
		"ca", "ca.pem", "state_dir", "state")))

	p, err := LoadProfile(filepath.Join(dir, "profile.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p.CA != filepath.Join(dir, "ca.pem") || p.Auth.Key != filepath.Join(dir, "client.key") || p.StateDir != filepath.Join(dir, "state") {
		t.Errorf("relative paths not resolved: %q %q %q", p.CA, p.Auth.Key, p.StateDir)
	}
	c, err := p.LoadCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.CAs) != 1 || len(c.Chain) != 1 || c.Key == nil {
		t.Errorf("credentials: %+v", c)
	}

	// Inline PEM needs no files.
	p2, err := ParseProfile(doc(t, "auth", map[string]any{"method": "pubkey", "cert": k.certPEM, "key": k.keyPEM}, "ca", k.caPEM))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.LoadCredentials(); err != nil {
		t.Error(err)
	}

	// A PSK profile has no credentials to load.
	p3, _ := ParseProfile(doc(t))
	if c, err := p3.LoadCredentials(); err != nil || c.CAs != nil || c.Key != nil {
		t.Errorf("psk credentials: %+v %v", c, err)
	}

	for _, tt := range []struct{ name, profile, want string }{
		{"mismatch", string(doc(t, "auth", map[string]any{"method": "pubkey", "cert": "client.pem", "key": "other.key"}, "ca", "ca.pem")),
			`profile: auth.key: does not match the public key of auth.cert`},
		{"missing ca", string(doc(t, "auth", map[string]any{"method": "pubkey", "cert": "client.pem", "key": "client.key"}, "ca", "nope.pem")),
			fmt.Sprintf(`profile: ca: cannot read %q: %s`, filepath.Join(dir, "nope.pem"), noSuchFile(t))},
		{"key is a cert", string(doc(t, "auth", map[string]any{"method": "pubkey", "cert": "client.pem", "key": "client.pem"}, "ca", "ca.pem")),
			`profile: auth.key: not a valid private key (want unencrypted PKCS #8, PKCS #1 or SEC 1 PEM)`},
		{"cert is a key", string(doc(t, "auth", map[string]any{"method": "eap-tls", "cert": "client.key", "key": "client.key"}, "ca", "ca.pem")),
			`profile: auth.cert: no certificate found`},
	} {
		write("bad.json", tt.profile)
		_, err := LoadProfile(filepath.Join(dir, "bad.json"))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s:\n got %v\nwant %s", tt.name, err, tt.want)
		}
	}
	if _, err := LoadProfile(filepath.Join(dir, "absent.json")); err == nil || !strings.HasPrefix(err.Error(), "profile: cannot read ") {
		t.Errorf("absent file: %v", err)
	}
}

func noSuchFile(t *testing.T) string {
	_, err := os.Open(filepath.Join(t.TempDir(), "x"))
	return pathErrReason(err)
}

func TestRedaction(t *testing.T) {
	k := newPKI(t)
	secrets := []string{testPSK, testPassword, strings.Split(k.keyPEM, "\n")[1]}
	profiles := []*Profile{}
	for _, a := range []map[string]any{
		{"method": "psk", "psk": testPSK},
		{"method": "eap-mschapv2", "username": "bob", "password": testPassword},
		{"method": "pubkey", "cert": k.certPEM, "key": k.keyPEM},
	} {
		edits := []any{"auth", a}
		if a["method"] != "psk" {
			edits = append(edits, "ca", k.caPEM)
		}
		p, err := ParseProfile(doc(t, edits...))
		if err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, p)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	text := slog.New(slog.NewTextHandler(&buf, nil))
	for _, p := range profiles {
		log.Info("value", "profile", *p)
		log.Info("pointer", "profile", p)
		log.Info("auth", "auth", p.Auth)
		text.Info("text", "profile", p, "auth", p.Auth)
		fmt.Fprintf(&buf, "%v %+v %#v %s %v %+v %#v\n", *p, *p, *p, p, p.Auth, p.Auth, p.Auth)
		fmt.Fprintf(&buf, "%v %+v\n", struct{ P Profile }{*p}, struct{ A Auth }{p.Auth})
	}
	out := buf.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("output reveals secret %q:\n%s", s, out)
		}
	}
	for _, s := range []string{`"psk":"[redacted]"`, `"password":"[redacted]"`, `"key":"[redacted]"`, `"cert":"[inline PEM]"`, `"username":"bob"`, `"gateways":["192.0.2.1"]`} {
		if !strings.Contains(out, s) {
			t.Errorf("log output lacks %s:\n%s", s, out)
		}
	}
	// A key given as a path is not a secret and is logged as is.
	a := Auth{Method: "pubkey", Cert: "/etc/c.pem", Key: "/etc/c.key"}
	if s := a.String(); !strings.Contains(s, `key="/etc/c.key"`) || !strings.Contains(s, `cert="/etc/c.pem"`) {
		t.Errorf("Auth.String = %s", s)
	}
}

func TestValidateGoProfile(t *testing.T) {
	// A profile built in Go, without SetDefaults, validates with defaults.
	p := &Profile{Name: "x", Gateways: []string{"gw.example"}, RemoteID: "gw.example", LocalID: "me@example",
		Auth: Auth{Method: AuthPSK, PSK: "k"}}
	r, err := p.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.IKEProposals, DefaultIKEProposals()) || len(r.Include) != 2 || r.MTU != DefaultMTU {
		t.Errorf("resolved: %+v", r)
	}
	p.SetDefaults()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	p.Timers.Liveness = "soon"
	if err := p.Validate(); err == nil || err.Error() != `profile: timers.liveness: invalid duration "soon" (want a Go duration such as "30s")` {
		t.Errorf("Validate: %v", err)
	}
	if p.Liveness() != 30*time.Second {
		t.Error("an invalid timer should read as its default")
	}
}

// proposalErr is ike/crypto's reason for a bad proposal, whose exact
// wording that package owns.
func proposalErr(s string, esp bool) string {
	_, err := ikecrypto.ParseProposal(s, esp)
	if err == nil {
		return "(no error)"
	}
	return strings.TrimPrefix(err.Error(), fmt.Sprintf("proposal %q: ", s))
}

func TestDefaultProposalsParse(t *testing.T) {
	for _, s := range DefaultIKEProposals() {
		if _, err := ikecrypto.ParseProposal(s, false); err != nil {
			t.Error(err)
		}
	}
	for _, s := range DefaultESPProposals() {
		if _, err := ikecrypto.ParseProposal(s, true); err != nil {
			t.Error(err)
		}
	}
}
