package gateway

import (
	"strings"
	"testing"
)

// FuzzParseConfig: no input panics; every error is one line with the
// prefix; whatever parses also validates and resolves.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(designExample))
	f.Add([]byte(`{"listen":["[2001:db8::1]:4501"],"id":"gw@example.org","auth":{"method":"psk","psk":"0sYWJj"},
		"psks":{"alice.example":"0x0102"},"pool":["fd00::/64"],"dns":["fd00::53"],"local_ts":["::/0"],
		"cookie_threshold":-1,"timers":{"liveness":"5s"},"qcd":{"reply_rate":1.5,"rollover":"1h"},
		"redirect":{"init_to":"gw2.example","auth_to":"192.0.2.9"},"state_dir":"s"}`))
	f.Add([]byte(`{"tickets":{"keys":[{"id":"k1","key_hex":"zz"}]}}`))
	f.Add([]byte(`{"listen":[1],"auth":{"method":"pubkey","cert":"-----BEGIN CERTIFICATE-----\n"}}`))
	f.Add([]byte(`{"psks":{"a":"b","a":"c"}}`))
	f.Add([]byte(zoneConfig))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"listen":["x"]} trailing`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "gateway config: ") || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("bad error text %q", msg)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed but does not validate: %v", err)
		}
		if _, err := c.ListenAddrs(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Proposals(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.TicketKeys(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PSKFunc(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Pools(); err != nil {
			t.Fatal(err)
		}
		if len(c.LocalPrefixes()) == 0 {
			t.Fatal("no local prefixes")
		}
		_ = c.SessionTimers()
		_ = c.String()
		_ = c.LogValue()
	})
}
