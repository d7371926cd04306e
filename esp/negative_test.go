package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// sealRaw seals an arbitrary plaintext (trailer included, so the test can
// break the padding) as sequence number seq, bypassing Seal's framing.
func sealRaw(tb testing.TB, o *Outbound, pt []byte, seq uint64) []byte {
	tb.Helper()
	x := o.x
	hr := x.headroom()
	pkt := make([]byte, hr+len(pt)+x.icvLen)
	binary.BigEndian.PutUint32(pkt, o.spi)
	binary.BigEndian.PutUint32(pkt[4:], uint32(seq))
	binary.BigEndian.PutUint64(pkt[hr-8:], seq)
	copy(pkt[hr:], pt)
	x.seal(pkt, len(pt), seq)
	return pkt
}

func TestTamperEveryByte(t *testing.T) {
	for _, s := range allSuites() {
		t.Run(s.String(), func(t *testing.T) {
			o, _ := newPair(t, s, Limits{})
			o.SetSeq(0x1234)
			pkt := seal(t, o, payload(45, 9), NextHeaderIPv4)
			hr, icv := o.Headroom(), o.x.icvLen
			region := func(i int) string {
				switch {
				case i < 4:
					return "SPI"
				case i < 8:
					return "seq"
				case i < hr:
					return "IV"
				case i < len(pkt)-icv:
					return "ciphertext"
				}
				return "ICV"
			}
			for i := range pkt {
				for _, flip := range []byte{0x01, 0x80} {
					bad := bytes.Clone(pkt)
					bad[i] ^= flip
					// An SA with the forged SPI, so the crypto (not
					// the SPI lookup) must catch an SPI change.
					enc, integ := testKeys(t, s)
					in, err := NewInbound(binary.BigEndian.Uint32(bad), s, enc, integ, Limits{}, t0)
					if err != nil {
						t.Fatal(err)
					}
					if _, _, err := in.Open(bad); !errors.Is(err, ErrAuth) {
						t.Fatalf("byte %d (%s) ^%#x: %v, want ErrAuth", i, region(i), flip, err)
					}
					st := in.Stats()
					if st.AuthFailed != 1 || st.Packets != 0 || in.HighestSeq() != 0 {
						t.Fatalf("byte %d: stats %+v, top %d after a forgery", i, st, in.HighestSeq())
					}
					// The genuine packet still goes through: the forgery
					// did not touch the window.
					if i < 4 {
						continue // pkt is not for this SA
					}
					if _, _, err := in.Open(bytes.Clone(pkt)); err != nil {
						t.Fatalf("byte %d: genuine packet after forgery: %v", i, err)
					}
				}
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	for _, s := range allSuites() {
		t.Run(s.String(), func(t *testing.T) {
			o, in := newPair(t, s, Limits{})
			pkt := seal(t, o, payload(40, 2), NextHeaderIPv4)
			minLen := in.x.minLen()
			for n := 0; n < len(pkt); n++ {
				_, _, err := in.Open(bytes.Clone(pkt[:n]))
				switch {
				case n < minLen:
					if !errors.Is(err, ErrMalformed) {
						t.Fatalf("length %d (< min %d): %v, want ErrMalformed", n, minLen, err)
					}
				case !in.x.isAEAD && (n-o.Headroom()-in.x.icvLen)%16 != 0:
					if !errors.Is(err, ErrMalformed) {
						t.Fatalf("length %d misaligned: %v, want ErrMalformed", n, err)
					}
				default:
					if !errors.Is(err, ErrAuth) {
						t.Fatalf("length %d: %v, want ErrAuth", n, err)
					}
				}
			}
			if _, _, err := in.Open(pkt); err != nil {
				t.Fatalf("full packet after the truncated ones: %v", err)
			}
			if st := in.Stats(); st.Malformed < uint64(minLen) {
				t.Fatalf("Malformed counter %d, want >= %d", st.Malformed, minLen)
			}
		})
	}
}

func TestMinimalPacketsOpen(t *testing.T) {
	// The shortest valid packet of each suite (empty inner) opens, and its
	// length is exactly minLen.
	for _, s := range baseSuites() {
		o, in := newPair(t, s, Limits{})
		pkt := seal(t, o, nil, NextHeaderIPv4)
		if want := in.x.minLen() + map[bool]int{true: 2, false: 0}[in.x.isAEAD]; len(pkt) != want {
			t.Errorf("%v: empty inner packet gives %d bytes, want %d", s, len(pkt), want)
		}
		got, nh, err := in.Open(pkt)
		if err != nil || len(got) != 0 || nh != 4 {
			t.Errorf("%v: Open(empty): %v", s, err)
		}
	}
}

func TestPaddingCheck(t *testing.T) {
	for _, s := range baseSuites() {
		t.Run(s.String(), func(t *testing.T) {
			o, in := newPair(t, s, Limits{})
			align := o.x.align
			inner := payload(4*align-2-3, 1) // leaves 3 bytes of padding
			good := refTrailer(inner, align, 4)
			if good[len(good)-2] != 3 {
				t.Fatalf("test setup: pad length %d", good[len(good)-2])
			}
			got, nh, err := in.Open(sealRaw(t, o, good, 1))
			if err != nil || nh != 4 || !bytes.Equal(got, inner) {
				t.Fatalf("well-padded packet: %v", err)
			}
			bad := map[string][]byte{}
			b := bytes.Clone(good)
			b[len(b)-5] = 0 // padding 0,2,3
			bad["wrong first pad byte"] = b
			b = bytes.Clone(good)
			b[len(b)-3] = 9 // padding 1,2,9
			bad["wrong last pad byte"] = b
			b = bytes.Clone(good)
			b[len(b)-2] = byte(len(b) - 1) // pad length beyond the payload
			bad["pad length too long"] = b
			b = bytes.Clone(good)
			b[len(b)-2] = 0xff
			bad["pad length 255"] = b
			seq := uint64(2)
			for name, pt := range bad {
				if _, _, err := in.Open(sealRaw(t, o, pt, seq)); !errors.Is(err, ErrMalformed) {
					t.Errorf("%s: %v, want ErrMalformed", name, err)
				}
				seq++
			}
			if st := in.Stats(); st.Malformed != uint64(len(bad)) || st.Packets != 1 {
				t.Errorf("stats %+v", st)
			}
			// Padding that uses all of a 255-byte pad length is fine.
			long := append(payload(5, 0), make([]byte, 255)...)
			for i := 0; i < 255; i++ {
				long[5+i] = byte(i + 1)
			}
			long = append(long, 255, 41)
			for (len(long))%align != 0 { // keep CBC aligned: grow the inner part
				long = append([]byte{0xEE}, long...)
			}
			got, nh, err = in.Open(sealRaw(t, o, long, seq))
			if err != nil || nh != 41 || len(got) != len(long)-257 {
				t.Errorf("255-byte padding: %v, %d-byte inner", err, len(got))
			}
		})
	}
}

func TestDummyPacket(t *testing.T) {
	for _, s := range baseSuites() {
		o, in := newPair(t, s, Limits{})
		if _, nh, err := in.Open(seal(t, o, payload(30, 0), NextHeaderDummy)); !errors.Is(err, ErrDummy) || nh != NextHeaderDummy {
			t.Errorf("%v: dummy packet: %v, nh %d", s, err, nh)
		}
		// A dummy consumes its sequence number like any authentic packet.
		if in.HighestSeq() != 1 {
			t.Errorf("%v: window top %d after dummy", s, in.HighestSeq())
		}
		if _, _, err := in.Open(seal(t, o, payload(30, 0), NextHeaderIPv4)); err != nil {
			t.Errorf("%v: packet after dummy: %v", s, err)
		}
	}
}

func TestSeqOverflow(t *testing.T) {
	for _, s := range baseSuites() {
		o, in := newPair(t, s, Limits{})
		o.SetSeq(0xffffffff)
		pkt := seal(t, o, payload(20, 0), 4)
		if binary.BigEndian.Uint32(pkt[4:]) != 0xffffffff {
			t.Fatalf("%v: last seq field %x", s, pkt[4:8])
		}
		if _, _, err := in.Open(pkt); err != nil {
			t.Fatalf("%v: Open(seq 2^32-1): %v", s, err)
		}
		if o.Expired(t0) != true {
			t.Errorf("%v: Expired false with the sequence space exhausted", s)
		}
		for k := 0; k < 3; k++ {
			buf := make([]byte, 200)
			for i := range buf {
				buf[i] = 0x5A
			}
			got, err := o.Seal(buf, o.Headroom(), 20, 4)
			if !errors.Is(err, ErrSeqOverflow) || got != nil {
				t.Fatalf("%v: Seal after 2^32-1: %v, %d bytes", s, err, len(got))
			}
			for i := range buf {
				if buf[i] != 0x5A {
					t.Fatalf("%v: refused Seal wrote byte %d", s, i)
				}
			}
		}
		if st := o.Stats(); st.Packets != 1 {
			t.Errorf("%v: refused packets counted: %+v", s, st)
		}
		// SetSeq never moves back (and cannot revive the counter).
		o.SetSeq(3)
		if _, err := o.Seal(make([]byte, 200), o.Headroom(), 20, 4); !errors.Is(err, ErrSeqOverflow) {
			t.Fatalf("%v: Seal after SetSeq(3): %v", s, err)
		}
	}
}

func TestSetSeqForwardOnly(t *testing.T) {
	o, _ := newPair(t, Suite{Encr: EncrAESGCM16, KeyBits: 128, ESN: true}, Limits{})
	seal(t, o, nil, 4)
	o.SetSeq(100)
	o.SetSeq(50)
	o.SetSeq(0)
	pkt := seal(t, o, nil, 4)
	if got := binary.BigEndian.Uint32(pkt[4:]); got != 100 {
		t.Fatalf("seq after SetSeq(100), SetSeq(50): %d", got)
	}
	if o.LastSeq() != 100 {
		t.Fatalf("LastSeq %d", o.LastSeq())
	}
}

func TestLifetimePackets(t *testing.T) {
	for _, s := range []Suite{{Encr: EncrAESGCM16, KeyBits: 128}, {Encr: EncrAESCBC, KeyBits: 256, Integ: IntegHMACSHA512_256}} {
		o, in := newPair(t, s, Limits{Packets: 3})
		var pkts [][]byte
		for k := 0; k < 3; k++ {
			pkts = append(pkts, seal(t, o, payload(10, 0), 4))
		}
		if !o.Expired(t0) {
			t.Errorf("%v: outbound not Expired after 3 of 3 packets", s)
		}
		if _, err := o.Seal(make([]byte, 200), o.Headroom(), 10, 4); !errors.Is(err, ErrLifetime) {
			t.Fatalf("%v: 4th Seal: %v, want ErrLifetime", s, err)
		}
		if o.LastSeq() != 3 {
			t.Errorf("%v: refused packet spent a sequence number", s)
		}
		for k, p := range pkts {
			if _, _, err := in.Open(p); err != nil {
				t.Fatalf("%v: Open %d: %v", s, k, err)
			}
		}
		o2, _ := newPair(t, s, Limits{})
		o2.SetSeq(4)
		if _, _, err := in.Open(seal(t, o2, payload(10, 0), 4)); !errors.Is(err, ErrLifetime) {
			t.Fatalf("%v: 4th Open: %v, want ErrLifetime", s, err)
		}
		if st := in.Stats(); st.Packets != 3 || in.UsedPackets() != 3 || !in.Expired(t0) {
			t.Errorf("%v: inbound stats %+v", s, st)
		}
	}
}

func TestLifetimeBytes(t *testing.T) {
	s := Suite{Encr: EncrChaCha20Poly1305, ESN: true}
	o, in := newPair(t, s, Limits{Bytes: 250})
	p1 := seal(t, o, payload(100, 0), 4)
	p2 := seal(t, o, payload(100, 0), 4)
	if o.Expired(t0) {
		t.Fatal("Expired at 200 of 250 bytes")
	}
	// 51 more bytes would cross the limit: refused, and the SA is done.
	if _, err := o.Seal(make([]byte, 300), o.Headroom(), 51, 4); !errors.Is(err, ErrLifetime) {
		t.Fatalf("crossing Seal: %v", err)
	}
	if _, err := o.Seal(make([]byte, 300), o.Headroom(), 1, 4); !errors.Is(err, ErrLifetime) {
		t.Fatalf("Seal after the limit: %v", err)
	}
	if o.UsedBytes() != 200 || !o.Expired(t0) {
		t.Fatalf("UsedBytes %d, Expired %v", o.UsedBytes(), o.Expired(t0))
	}
	for _, p := range [][]byte{p1, p2} {
		if _, _, err := in.Open(p); err != nil {
			t.Fatal(err)
		}
	}
	o2, _ := newPair(t, s, Limits{})
	o2.SetSeq(3)
	if _, _, err := in.Open(seal(t, o2, payload(51, 0), 4)); !errors.Is(err, ErrLifetime) {
		t.Fatalf("crossing Open: %v", err)
	}
	if in.UsedBytes() != 200 {
		t.Fatalf("inbound UsedBytes %d", in.UsedBytes())
	}
}

func TestLifetimeTime(t *testing.T) {
	s := Suite{Encr: EncrAESGCM16, KeyBits: 256}
	o, in := newPair(t, s, Limits{Lifetime: time.Hour})
	now := t0.Add(59 * time.Minute)
	clock := func() time.Time { return now }
	o.life.clock, in.life.clock = clock, clock
	p := seal(t, o, payload(10, 0), 4)
	if _, _, err := in.Open(bytes.Clone(p)); err != nil {
		t.Fatal(err)
	}
	if o.Expired(now) || !o.Expired(t0.Add(time.Hour)) {
		t.Fatal("Expired wrong around the deadline")
	}
	now = t0.Add(time.Hour)
	if _, err := o.Seal(make([]byte, 100), o.Headroom(), 10, 4); !errors.Is(err, ErrLifetime) {
		t.Fatalf("Seal after lifetime: %v", err)
	}
	o.SetSeq(2)
	if _, _, err := in.Open(p); !errors.Is(err, ErrLifetime) {
		t.Fatalf("Open after lifetime: %v", err)
	}
}
