package pemfile

import (
	"strings"
	"testing"
)

// FuzzInlinePEM: inline certificates and keys of any content never panic
// and error in one line. Only inline PEM is fuzzed: anything else is a
// path, which the fuzzer must not make the test open.
func FuzzInlinePEM(f *testing.F) {
	f.Add("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	f.Add("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	f.Add("-----BEGIN EC PRIVATE KEY-----\n-----END EC PRIVATE KEY-----\n")
	f.Add("-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\n")
	r := Rules{QuoteLen: 40, MaxSize: 1 << 16}
	f.Fuzz(func(t *testing.T, s string) {
		if !IsInline(s) {
			return
		}
		for _, isKey := range []bool{false, true} {
			if err := r.Check(s, isKey); err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
		}
		if _, err := r.Certs(s); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
		if _, err := r.Key(s); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
	})
}
