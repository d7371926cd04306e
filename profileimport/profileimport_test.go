package profileimport

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qcdvpn/qcdvpn/sdk"
)

var update = flag.Bool("update", false, "rewrite the testdata/good/*.want.json files")

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConvertGood converts every good sample and compares the profile with
// its .want.json, the files with the PKI they came from, and the warnings.
func TestConvertGood(t *testing.T) {
	caPEM := read(t, "testdata/pki/ca.pem")
	alicePEM := read(t, "testdata/pki/alice.pem")
	carolPEM := read(t, "testdata/pki/carol.pem")
	gwPEM := read(t, "testdata/pki/gw.pem")
	cases := []struct {
		file     string
		opts     Options
		format   string
		files    map[string][]byte // name → content (nil: a key, checked by loading)
		warnings []string
	}{
		{file: "cert-rsa.sswan", opts: Options{P12Password: "test"}, format: FormatSSwan,
			files: map[string][]byte{"corp-rsa-ca.pem": caPEM, "corp-rsa-cert.pem": alicePEM, "corp-rsa-key.pem": nil}},
		{file: "cert-ec-pem.sswan", format: FormatSSwan,
			files: map[string][]byte{"lab-gateway-ca.pem": caPEM, "lab-gateway-cert.pem": carolPEM, "lab-gateway-key.pem": nil},
			warnings: []string{
				"remote.certreq: ignored: certificate requests are always sent",
				"remote.revocation (crl, strict): ignored: qcdvpn does not check revocation",
				"local.rsa-pss: ignored: the signature scheme follows the key and the gateway",
				"local.id: missing; using the certificate's identity C=CH, O=qcdvpn test, CN=carol",
			}},
		{file: "eap.sswan", opts: Options{Password: "s3cret pass", FileBase: "office"}, format: FormatSSwan,
			files: map[string][]byte{"office-ca.pem": caPEM},
			warnings: []string{
				"dns-servers (10.0.0.53 10.0.0.54): ignored: qcdvpn uses the DNS servers the gateway assigns",
				"apps: ignored: per-app routing is Android's",
				"proxy: ignored: qcdvpn sets no HTTP proxy",
				"x-comment: unknown key, ignored",
			}},
		{file: "eap-tls.sswan", opts: Options{P12Password: "test"}, format: FormatSSwan,
			files:    map[string][]byte{"eap-tls-v6-ca.pem": caPEM, "eap-tls-v6-cert.pem": alicePEM, "eap-tls-v6-key.pem": nil},
			warnings: []string{"split-tunneling.block-ipv6: ignored: IPv6 traffic outside the tunnel's subnets is not blocked"}},
		{file: "cert-p12-ca.sswan", opts: Options{P12Password: "test"}, format: FormatSSwan,
			files:    map[string][]byte{"p12-with-ca-ca.pem": caPEM, "p12-with-ca-cert.pem": alicePEM, "p12-with-ca-key.pem": nil},
			warnings: []string{"remote.cert: missing; trusting the CA certificate(s) from local.p12 instead"}},
		{file: "cert-leaf.sswan", format: FormatSSwan,
			files: map[string][]byte{"pinned-gateway-ca.pem": gwPEM, "pinned-gateway-cert.pem": carolPEM, "pinned-gateway-key.pem": nil},
			warnings: []string{
				"local.id: missing; using the certificate's identity C=CH, O=qcdvpn test, CN=carol",
				"remote.cert: C=CH, O=qcdvpn test, CN=vpn.example.com is not a CA certificate; it is trusted as one, which works only if it is the gateway's own self-signed certificate",
			}},
		{file: "own.json", format: FormatQCDVPN, files: map[string][]byte{}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			in := read(t, filepath.Join("testdata/good", c.file))
			res, err := Convert(in, c.opts)
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if res.Format != c.format {
				t.Errorf("format %q, want %q", res.Format, c.format)
			}
			want := filepath.Join("testdata/good", strings.TrimSuffix(c.file, filepath.Ext(c.file))+".want.json")
			if *update {
				os.WriteFile(want, res.Profile, 0o644)
			}
			if got, w := string(res.Profile), string(read(t, want)); got != w {
				t.Errorf("profile:\n%s\nwant (%s):\n%s", got, want, w)
			}
			if !reflect.DeepEqual(res.Warnings, c.warnings) {
				t.Errorf("warnings:\n %q\nwant\n %q", res.Warnings, c.warnings)
			}
			got := map[string][]byte{}
			for _, f := range res.Files {
				got[f.Name] = f.Data
				if f.Secret != strings.HasSuffix(f.Name, "-key.pem") {
					t.Errorf("%s: secret %v", f.Name, f.Secret)
				}
			}
			if len(got) != len(c.files) {
				t.Errorf("files %v, want %v", keys(got), keys(c.files))
			}
			for name, data := range c.files {
				g, ok := got[name]
				if !ok {
					t.Errorf("no file %s", name)
				} else if data != nil && !bytes.Equal(bytes.TrimSpace(g), bytes.TrimSpace(data)) {
					t.Errorf("%s:\n%s\nwant\n%s", name, g, data)
				}
			}
			// Written out, the profile loads with sdk.LoadProfile
			// (certificates, key and all).
			dir := t.TempDir()
			for _, f := range res.Files {
				os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o600)
			}
			path := filepath.Join(dir, "profile.json")
			os.WriteFile(path, res.Profile, 0o600)
			if res.Format == FormatQCDVPN {
				return
			}
			if _, err := sdk.LoadProfile(path); err != nil {
				t.Errorf("LoadProfile of the result: %v", err)
			}
			// Inline: the same profile with PEM in place of file names.
			c.opts.Inline = true
			res2, err := Convert(in, c.opts)
			if err != nil || len(res2.Files) != 0 {
				t.Fatalf("inline: %v, %d files", err, len(res2.Files))
			}
			if _, err := sdk.ParseProfile(res2.Profile); err != nil {
				t.Errorf("inline profile: %v", err)
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestConvertBad: every broken sample is refused with its one-line error.
func TestConvertBad(t *testing.T) {
	cases := map[string]string{
		"bad-json.sswan":          "not a JSON object: truncated JSON",
		"no-addr.sswan":           "sswan: remote.addr: required",
		"unknown-type.sswan":      `sswan: type: unknown type "ikev1-xauth-psk" (want ikev2-cert, ikev2-eap, ikev2-eap-tls, ikev2-cert-eap or ikev2-byod-eap)`,
		"bad-base64-cert.sswan":   "sswan: remote.cert: not valid base64",
		"not-a-cert.sswan":        "sswan: remote.cert: not an X.509 certificate (DER or PEM)",
		"wrong-type-mtu.sswan":    "sswan: mtu: want a number, got a JSON string",
		"wrong-type-port.sswan":   "sswan: remote.port: want a number, got a JSON string",
		"wrong-type-remote.sswan": "sswan: remote: want a JSON object, got a JSON array",
		"cert-eap.sswan":          `sswan: type "ikev2-cert-eap" (certificate, then EAP: RFC 4739 multiple authentication) is not supported by this version of qcdvpn`,
		"byod.sswan":              `sswan: type "ikev2-byod-eap" (EAP-TNC) is not supported by this version of qcdvpn`,
		"bad-uuid.sswan":          `sswan: uuid: "not-a-uuid" is not a UUID (RFC 4122)`,
		"no-p12.sswan":            "sswan: local.p12: required for type ikev2-cert: the client certificate and key (qcdvpn has no certificate store to pick one from)",
		"aes-p12.sswan":           "sswan: local.p12: ",
		"bad-subnet.sswan":        `sswan: split-tunneling.subnets[0]: "10.0.0.0/33": not a subnet, address or range`,
		"bad-proposal.sswan":      "sswan: ike-proposal: ",
		"port-range.sswan":        "sswan: remote.port: 70000 is out of range 1..65535",
		"keepalive-range.sswan":   "sswan: nat-keepalive: 5 is out of range 10..120 (seconds)",
		"dup-key.sswan":           "sswan: name: appears twice",
		"no-ca.sswan":             "sswan: remote.cert: missing, and qcdvpn needs the CA certificate that signs the gateway's certificate (the Android app falls back on the system's CAs): give it with --ca FILE",
		"eap-no-user.sswan":       "sswan: local.eap_id: required for type ikev2-eap (the username)",
		"top-array.sswan":         "not a JSON object: the top level is a JSON array",
		"own-typo.json":           `profile: unknown field "gatways" (did you mean "gateways"?)`,
	}
	files, _ := filepath.Glob("testdata/bad/*")
	if len(files) != len(cases) {
		t.Errorf("%d broken samples, %d cases", len(files), len(cases))
	}
	for _, f := range files {
		want, ok := cases[filepath.Base(f)]
		if !ok {
			t.Errorf("%s: no expected error", f)
			continue
		}
		_, err := Convert(read(t, f), Options{P12Password: "test"})
		if err == nil {
			t.Errorf("%s: accepted", f)
			continue
		}
		msg := err.Error()
		if strings.HasSuffix(want, ": ") && strings.HasPrefix(msg, want) || msg == want {
		} else {
			t.Errorf("%s:\n got %q\nwant %q", f, msg, want)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: error not on one line: %q", f, msg)
		}
	}
}

func TestConvertOptionsErrors(t *testing.T) {
	eap := read(t, "testdata/good/eap.sswan")
	if _, err := Convert(eap, Options{}); err == nil || err.Error() != "sswan: type ikev2-eap: a .sswan holds no password; give it with --password-file FILE" {
		t.Errorf("eap without password: %v", err)
	}
	rsa := read(t, "testdata/good/cert-rsa.sswan")
	if _, err := Convert(rsa, Options{}); err == nil || err.Error() != "sswan: local.p12: the PKCS#12 container is encrypted: give its password with --p12-password-file FILE" {
		t.Errorf("p12 without password: %v", err)
	}
	if _, err := Convert(rsa, Options{P12Password: "wrong"}); err == nil || err.Error() != "sswan: local.p12: wrong password" {
		t.Errorf("p12 wrong password: %v", err)
	}
	// The password given goes into the profile, never into an error.
	res, err := Convert(eap, Options{Password: "s3cret pass"})
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Auth sdk.Auth }
	json.Unmarshal(res.Profile, &p)
	if p.Auth.Password != "s3cret pass" || p.Auth.Username != "bob" || p.Auth.Method != sdk.AuthEAPMSCHAPv2 {
		t.Errorf("auth %+v", p.Auth)
	}
	// --ca for a file without remote.cert.
	noCA := read(t, "testdata/bad/no-ca.sswan")
	res, err = Convert(noCA, Options{CA: read(t, "testdata/pki/ca.pem")})
	if err != nil || len(res.Files) != 3 {
		t.Errorf("no-ca with --ca: %v", err)
	}
}

func TestRangePrefixes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.168.1.10-192.168.1.20", "192.168.1.10/31 192.168.1.12/30 192.168.1.16/30 192.168.1.20/32"},
		{"10.0.0.0-10.0.0.255", "10.0.0.0/24"},
		{"0.0.0.0-255.255.255.255", "0.0.0.0/0"},
		{"10.0.0.5-10.0.0.5", "10.0.0.5/32"},
		{"2001:db8::-2001:db8::ffff", "2001:db8::/112"},
		{"10.0.0.1", "10.0.0.1/32"},
		{"10.1.2.3/16", "10.1.0.0/16"},
	} {
		ps, err := parseSubnet(c.in)
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("%s: %v %v, want %s", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"10.0.0.9-10.0.0.1", "10.0.0.1-::1", "x-y", "10.0.0.0/40"} {
		if _, err := parseSubnet(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func FuzzConvert(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, _ := filepath.Glob(dir + "/*")
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && !strings.HasSuffix(p, ".want.json") {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := Convert(b, Options{P12Password: "test", Password: "pw"})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error not on one line: %q", err)
			}
			return
		}
		if _, err := sdk.ParseProfile(res.Profile); err != nil {
			t.Fatalf("accepted input gives an invalid profile: %v", err)
		}
	})
}
