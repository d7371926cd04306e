package ike

import (
	"strings"
	"testing"
)

func TestParseDNSDomain(t *testing.T) {
	good := map[string]string{
		"corp.test":           "corp.test",
		"Corp.Example.COM.":   "corp.example.com",
		"xn--bcher-kva.test":  "xn--bcher-kva.test",
		"_sip._udp.corp.test": "_sip._udp.corp.test",
		"a-b.c":               "a-b.c",
		"test":                "test",
	}
	for in, want := range good {
		got, err := ParseDNSDomain([]byte(in))
		if err != nil || got != want {
			t.Errorf("ParseDNSDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"", ".", "corp.test\x00", "a..b", "-a.test", "a-.test", "a b.test", `a\046b.test`,
		strings.Repeat("a", 64) + ".test", strings.Repeat("abcdefgh.", 32) + "test", "ü.test"}
	for _, in := range bad {
		if got, err := ParseDNSDomain([]byte(in)); err == nil {
			t.Errorf("ParseDNSDomain(%q) = %q, want an error", in, got)
		} else if !strings.HasPrefix(err.Error(), "INTERNAL_DNS_DOMAIN: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseDNSDomain(%q): error %q does not name the attribute on one line", in, err)
		}
	}
}

func FuzzParseDNSDomain(f *testing.F) {
	for _, s := range []string{"corp.test", "example.com.", "", ".", "a..b", "\x00", "xn--bcher-kva.test"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseDNSDomain(b)
		if err != nil {
			return
		}
		// A name we accept reads back as itself.
		again, err := ParseDNSDomain([]byte(s))
		if err != nil || again != s {
			t.Fatalf("%q parsed to %q, which reads back as %q, %v", b, s, again, err)
		}
		if s != strings.ToLower(s) || strings.HasSuffix(s, ".") || len(s) > 253 {
			t.Fatalf("%q parsed to %q", b, s)
		}
	})
}
