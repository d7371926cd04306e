package ike

import (
	"bytes"
	"strings"
	"testing"

	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// FuzzOpenProtected drives the SK decryption path a received message takes
// (header and payload chain parse, AEAD or CBC+HMAC open, the inner chain
// parse) with one AEAD and one CBC suite. Whatever comes in, no panic; a
// message that opens was sealed with the keys, so it must be one the
// seeds made, not a forgery the fuzzer found.
func FuzzOpenProtected(f *testing.F) {
	suites := []Suite{fragSuites["aes256gcm16"], fragSuites["aes128-sha256"]}
	type pair struct{ ini, resp *saKeys }
	var keys []pair
	for _, s := range suites {
		ini, resp := fragKeys(f, s)
		keys = append(keys, pair{ini, resp})
	}
	// Fixed IVs: the fuzz workers rerun this setup and must seal the
	// very seeds the coordinator sends them.
	sealed := map[string]bool{}
	for _, k := range keys {
		for _, inner := range [][]wire.Payload{
			fragInner(100),
			{&wire.Notify{NotifyType: wire.NotifyQCDToken, Data: bytes.Repeat([]byte{9}, 32)}},
			{&wire.CP{CfgType: wire.CfgReply, Attributes: []wire.CPAttribute{{Type: wire.CPInternalIP4Address, Value: []byte{10, 0, 0, 1}}}}},
			nil,
		} {
			raw, err := k.ini.seal(fragHeader(1), inner, bytes.NewReader(make([]byte, 64)))
			if err != nil {
				f.Fatal(err)
			}
			raw = bytes.Clone(raw)
			sealed[string(raw)] = true
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := string(data)
		for _, k := range keys {
			h, ps, err := k.resp.open(data)
			if string(data) != orig {
				t.Fatal("open changed its input")
			}
			if err != nil {
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("multi-line error %q", err)
				}
				continue
			}
			if !sealed[orig] {
				// Every octet is authenticated: only a seed opens.
				t.Fatalf("opened a message with header %+v and %d payloads that no seed sealed", h, len(ps))
			}
		}
	})
}

// FuzzParseRedirectTarget: the redirect target syntax of profiles and
// gateway configs never panics and errors in one line.
func FuzzParseRedirectTarget(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "[2001:db8::1]", "gw.example.org", "", "::", "a..b", strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := ParseRedirectTarget(s); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
	})
}
