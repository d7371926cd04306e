package qcd

import "testing"

func BenchmarkCheckHit(b *testing.B) {
	f := newFixture(b)
	v := NewVerifier(f.store, noLimits, nil)
	m := f.reply(b)
	b.ReportAllocs()
	for b.Loop() {
		if v.Check(gw, m).Result != Verified {
			b.Fatal("not verified")
		}
	}
}

func BenchmarkCheckMiss(b *testing.B) {
	f := newFixture(b)
	// A full history of 4 stored tokens against 4 presented: 16 comparisons.
	for i := range 3 {
		f.store.Add(f.sa, tok(32, byte(i)))
	}
	v := NewVerifier(f.store, noLimits, nil)
	m := mustParse(b, unprotected(f.sa.SPIi, f.sa.SPIr, tok(32, 0x51), tok(32, 0x52), tok(32, 0x53), tok(32, 0x54)))
	b.ReportAllocs()
	for b.Loop() {
		if v.Check(gw, m).Result != Rejected {
			b.Fatal("not rejected")
		}
	}
}

func BenchmarkParse(b *testing.B) {
	msg := unprotected(1, 2, tok(32, 1), tok(32, 2), tok(32, 3), tok(32, 4))
	var m Message
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := Parse(msg, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkToken(b *testing.B) {
	s, _ := NewSecrets(seq32(0))
	b.ReportAllocs()
	for b.Loop() {
		s.Token(1, 2)
	}
}
