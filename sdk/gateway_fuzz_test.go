package sdk

import (
	"strings"
	"testing"
)

// FuzzParseGateway: a profile's gateway entry (address, name, optional
// port) never panics and errors in one line.
func FuzzParseGateway(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "192.0.2.9:4500", "[2001:db8::1]:500", "vpn.example.org", "vpn.example.org:70000", "", ":", "[::1", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := ParseGateway(s); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
	})
}
