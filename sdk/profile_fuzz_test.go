package sdk

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseProfile checks that no input panics, that every error is one
// line starting with "profile: ", and that an accepted profile validates,
// resolves and survives a JSON round trip unchanged.
func FuzzParseProfile(f *testing.F) {
	if b, err := os.ReadFile("testdata/example-profile.json"); err == nil {
		f.Add(b)
	}
	f.Add(doc(f))
	f.Add(doc(f, "gateways", []any{"[2001:db8::1]:4500", "gw.example:500"}, "remote_id", "C=CH, O=x, CN=gw",
		"timers", map[string]any{"keepalive": "0s", "retransmit_base": 1.5, "retransmit_tries": 3},
		"traffic", map[string]any{"include": []any{"10.0.0.0/8"}, "exclude": []any{"10.1.0.0/16"}},
		"dns", map[string]any{"use": false}, "mtu", 1280))
	f.Add(doc(f, "auth", map[string]any{"method": "eap-mschapv2", "username": "u", "password": "p"}, "ca", "/ca.pem"))
	f.Add(doc(f, "auth", map[string]any{"method": "pubkey", "cert": "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----", "key": "k"}, "ca", "c"))
	// Found by fuzzing: "exclude":[] must round-trip.
	f.Add([]byte(`{"name":"n","gateways":["[0000:000::1]:0100"],"remote_id":"C=00","local_id":"l","auth":{"method":"psk","psk":"0"},"traffic":{"exclude":[]}}`))
	for _, s := range []string{``, `{`, `{"name":1}`, `{"auth":{"pks":1}}`, `{"a":"b","a":"c"}`, `{} {}`, `[`, `{"mtu":1e999}`, "{\"name\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile(data)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "profile: ") || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("malformed error %q", msg)
			}
			if _, ok := err.(*ProfileError); !ok {
				t.Fatalf("error type %T", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed profile does not validate: %v", err)
		}
		if _, err := p.Resolve(); err != nil {
			t.Fatalf("parsed profile does not resolve: %v", err)
		}
		_ = p.LogValue().Resolve().String()
		_ = p.String()
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		p2, err := ParseProfile(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip changed the profile:\n%s", out)
		}
	})
}
