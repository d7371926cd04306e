package esp

import (
	"bytes"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// baseSuites is every supported suite without ESN.
func baseSuites() []Suite {
	s := []Suite{
		{Encr: EncrAESGCM16, KeyBits: 128},
		{Encr: EncrAESGCM16, KeyBits: 192},
		{Encr: EncrAESGCM16, KeyBits: 256},
		{Encr: EncrChaCha20Poly1305},
	}
	for _, kb := range []int{128, 192, 256} {
		for _, in := range []uint16{IntegHMACSHA256_128, IntegHMACSHA384_192, IntegHMACSHA512_256} {
			s = append(s, Suite{Encr: EncrAESCBC, KeyBits: kb, Integ: in})
		}
	}
	return s
}

// allSuites is every supported suite with and without ESN.
func allSuites() []Suite {
	var out []Suite
	for _, s := range baseSuites() {
		out = append(out, s)
		s.ESN = true
		out = append(out, s)
	}
	return out
}

// benchSuites is the set the benchmarks report.
func benchSuites() []Suite {
	return []Suite{
		{Encr: EncrAESGCM16, KeyBits: 128},
		{Encr: EncrAESGCM16, KeyBits: 256},
		{Encr: EncrChaCha20Poly1305},
		{Encr: EncrAESCBC, KeyBits: 128, Integ: IntegHMACSHA256_128},
		{Encr: EncrAESCBC, KeyBits: 256, Integ: IntegHMACSHA256_128},
		{Encr: EncrAESCBC, KeyBits: 256, Integ: IntegHMACSHA384_192},
		{Encr: EncrAESCBC, KeyBits: 256, Integ: IntegHMACSHA512_256},
	}
}

// testKeys returns deterministic key material of the right lengths.
func testKeys(tb testing.TB, s Suite) (enc, integ []byte) {
	tb.Helper()
	el, il, err := s.KeyLengths()
	if err != nil {
		tb.Fatal(err)
	}
	enc = make([]byte, el)
	for i := range enc {
		enc[i] = byte(0x40 + i)
	}
	integ = make([]byte, il)
	for i := range integ {
		integ[i] = byte(0x90 + 3*i)
	}
	return enc, integ
}

const testSPI = 0xc0ffee01

func newPair(tb testing.TB, s Suite, lim Limits) (*Outbound, *Inbound) {
	tb.Helper()
	enc, integ := testKeys(tb, s)
	o, err := NewOutbound(testSPI, s, enc, integ, lim, t0)
	if err != nil {
		tb.Fatalf("NewOutbound(%v): %v", s, err)
	}
	in, err := NewInbound(testSPI, s, enc, integ, lim, t0)
	if err != nil {
		tb.Fatalf("NewInbound(%v): %v", s, err)
	}
	return o, in
}

// seal returns a freshly allocated ESP packet carrying inner.
func seal(tb testing.TB, o *Outbound, inner []byte, nh byte) []byte {
	tb.Helper()
	buf := make([]byte, o.Headroom()+len(inner)+o.Tailroom())
	copy(buf[o.Headroom():], inner)
	pkt, err := o.Seal(buf, o.Headroom(), len(inner), nh)
	if err != nil {
		tb.Fatalf("Seal(%v, %d bytes): %v", o.x.esn, len(inner), err)
	}
	return bytes.Clone(pkt)
}

// payload returns n bytes of a recognisable pattern.
func payload(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i*7)
	}
	return p
}
