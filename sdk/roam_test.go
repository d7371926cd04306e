package sdk

import (
	"strings"
	"testing"
)

// TestProfileMOBIKE: MOBIKE is offered unless the profile says
// "mobike": false; the switch reaches the IKE configuration.
func TestProfileMOBIKE(t *testing.T) {
	base := `{"name":"corp","gateways":["192.0.2.1"],"remote_id":"gw.example","local_id":"client.example",
	  "auth":{"method":"psk","psk":"a long shared secret"},"traffic":{"include":["10.200.0.0/24"]}%s}`
	for _, c := range []struct {
		extra string
		want  bool
	}{{"", true}, {`,"mobike":true`, true}, {`,"mobike":false`, false}} {
		p, err := ParseProfile([]byte(strings.Replace(base, "%s", c.extra, 1)))
		if err != nil {
			t.Fatalf("%q: %v", c.extra, err)
		}
		if p.MOBIKEEnabled() != c.want {
			t.Errorf("%q: MOBIKEEnabled %v", c.extra, p.MOBIKEEnabled())
		}
		cfg, err := ikeConfig(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MOBIKE != c.want {
			t.Errorf("%q: ike.Config.MOBIKE %v", c.extra, cfg.MOBIKE)
		}
	}
	if _, err := ParseProfile([]byte(strings.Replace(base, "%s", `,"mobike":"yes"`, 1))); err == nil || !strings.Contains(err.Error(), "mobike") {
		t.Errorf("mobike as a string: %v", err)
	}
}
