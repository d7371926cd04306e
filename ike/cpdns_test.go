package ike

import (
	"slices"
	"testing"
)

// TestSplitDNSDomains: the client asks for INTERNAL_DNS_DOMAIN and keeps
// the gateway's domains (deduplicated, normalised, bad ones skipped); a
// client that opts out gets none.
func TestSplitDNSDomains(t *testing.T) {
	g := startGateway(t, func(rc *ResponderConfig) {
		rc.DNSDomains = []string{"corp.test", "Lab.Corp.Test.", "bad..name", "corp.test"}
	})
	cfg := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	c, _ := gwConnect(t, g, cfg)
	if want := []string{"corp.test", "lab.corp.test"}; !slices.Equal(c.Domains, want) {
		t.Errorf("Domains = %q, want %q", c.Domains, want)
	}
	if len(c.DNS) != 1 || c.DNS[0].String() != "10.100.0.53" {
		t.Errorf("DNS = %v, want [10.100.0.53]", c.DNS)
	}

	cfg = gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	cfg.NoSplitDNS = true
	c, _ = gwConnect(t, g, cfg)
	if len(c.Domains) != 0 {
		t.Errorf("opted out, Domains = %q", c.Domains)
	}
}
