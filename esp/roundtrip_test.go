package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestRoundTripAllSuites(t *testing.T) {
	sizes := []int{0, 1, 2, 3, 4, 5, 13, 14, 15, 16, 17, 31, 40, 64, 100, 1280, 1400, 1500, 9000}
	for _, s := range allSuites() {
		t.Run(s.String(), func(t *testing.T) {
			o, in := newPair(t, s, Limits{})
			var wantBytes uint64
			for k, n := range sizes {
				nh := NextHeaderIPv4
				if k%2 == 1 {
					nh = NextHeaderIPv6
				}
				inner := payload(n, byte(k))
				pkt := seal(t, o, inner, nh)
				if spi, ok := SPIOf(pkt); !ok || spi != testSPI {
					t.Fatalf("SPIOf = %#x, %v", spi, ok)
				}
				if got := binary.BigEndian.Uint32(pkt[4:]); got != uint32(k+1) {
					t.Fatalf("seq field = %d, want %d", got, k+1)
				}
				ct := len(pkt) - o.Headroom() - o.x.icvLen
				if ct%o.x.align != 0 || ct < n+2 || ct > n+2+o.x.align-1 {
					t.Fatalf("ciphertext length %d for %d-byte inner: bad padding", ct, n)
				}
				if len(pkt) > o.Headroom()+n+o.Tailroom() {
					t.Fatalf("packet %d bytes exceeds headroom+n+tailroom", len(pkt))
				}
				if n >= 16 && bytes.Contains(pkt, inner[:16]) {
					t.Fatal("plaintext visible in the ESP packet")
				}
				got, gotNH, err := in.Open(pkt)
				if err != nil {
					t.Fatalf("Open(%d-byte inner): %v", n, err)
				}
				if gotNH != nh || !bytes.Equal(got, inner) {
					t.Fatalf("Open returned nh %d, %d bytes; want nh %d, %x", gotNH, len(got), nh, inner)
				}
				wantBytes += uint64(n)
			}
			want := Stats{Packets: uint64(len(sizes)), Bytes: wantBytes}
			if st := in.Stats(); st != want {
				t.Errorf("inbound stats %+v, want %+v", st, want)
			}
			if st := o.Stats(); st != want {
				t.Errorf("outbound stats %+v, want %+v", st, want)
			}
		})
	}
}

func TestSealInPlaceAndBounds(t *testing.T) {
	s := Suite{Encr: EncrAESGCM16, KeyBits: 128}
	o, in := newPair(t, s, Limits{})
	const off, n = 40, 100
	buf := make([]byte, off+n+o.Tailroom()+10)
	for i := range buf {
		buf[i] = 0xAA
	}
	inner := payload(n, 3)
	copy(buf[off:], inner)
	pkt, err := o.Seal(buf[:off+n], off, n, NextHeaderIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if &pkt[0] != &buf[off-o.Headroom()] {
		t.Fatal("Seal did not work in place")
	}
	for i := 0; i < off-o.Headroom(); i++ {
		if buf[i] != 0xAA {
			t.Fatalf("Seal wrote before its headroom at %d", i)
		}
	}
	for i := off - o.Headroom() + len(pkt); i < len(buf); i++ {
		if buf[i] != 0xAA {
			t.Fatalf("Seal wrote after the packet at %d", i)
		}
	}
	got, _, err := in.Open(pkt)
	if err != nil || !bytes.Equal(got, inner) {
		t.Fatalf("Open: %v", err)
	}
	if &got[0] != &pkt[o.Headroom()] {
		t.Fatal("Open did not work in place")
	}

	// Buffers without room are refused without side effects.
	bad := []struct {
		name        string
		buf         []byte
		off, n      int
		wantSeqUsed bool
	}{
		{"no headroom", make([]byte, 200), o.Headroom() - 1, 10, false},
		{"no tailroom", make([]byte, o.Headroom()+10+o.Tailroom()-1), o.Headroom(), 10, false},
		{"negative n", make([]byte, 200), o.Headroom(), -1, false},
		{"n beyond cap", make([]byte, 50), o.Headroom(), 100, false},
		{"off beyond cap", make([]byte, 50), 60, 0, false},
		{"nil", nil, 0, 0, false},
	}
	for _, c := range bad {
		before := o.LastSeq()
		if _, err := o.Seal(c.buf, c.off, c.n, 4); !errors.Is(err, ErrBuffer) {
			t.Errorf("%s: err %v, want ErrBuffer", c.name, err)
		}
		if o.LastSeq() != before {
			t.Errorf("%s: spent a sequence number", c.name)
		}
	}
}

func TestSuiteValidation(t *testing.T) {
	good := Suite{Encr: EncrAESGCM16, KeyBits: 256}
	enc, _ := testKeys(t, good)
	cases := []struct {
		s          Suite
		enc, integ []byte
		want       string
	}{
		{Suite{Encr: EncrAESGCM16, KeyBits: 0}, enc, nil, "key length 0"},
		{Suite{Encr: EncrAESGCM16, KeyBits: 256, Integ: IntegHMACSHA256_128}, enc, nil, "integrity transform"},
		{Suite{Encr: EncrAESGCM16, KeyBits: 256}, enc[:32], nil, "encryption key is 32 bytes, want 36"},
		{Suite{Encr: EncrAESGCM16, KeyBits: 256}, enc, []byte{1}, "integrity key is 1 bytes, want 0"},
		{Suite{Encr: EncrChaCha20Poly1305, KeyBits: 128}, enc, nil, "not 256"},
		{Suite{Encr: EncrAESCBC, KeyBits: 128}, enc[:16], nil, "needs an integrity transform"},
		{Suite{Encr: EncrAESCBC, KeyBits: 128, Integ: 2}, enc[:16], nil, "unsupported integrity transform 2"},
		{Suite{Encr: EncrAESCBC, KeyBits: 128, Integ: IntegHMACSHA256_128}, enc[:16], make([]byte, 31), "want 32"},
		{Suite{Encr: EncrAESCBC, KeyBits: 100, Integ: IntegHMACSHA256_128}, enc[:16], make([]byte, 32), "key length 100"},
		{Suite{Encr: 3}, enc, nil, "unsupported encryption transform 3"},
	}
	for _, c := range cases {
		_, err := NewOutbound(1, c.s, c.enc, c.integ, Limits{}, t0)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewOutbound(%v): %v, want error containing %q", c.s, err, c.want)
		}
		_, err = NewInbound(1, c.s, c.enc, c.integ, Limits{}, t0)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewInbound(%v): %v, want error containing %q", c.s, err, c.want)
		}
	}
	names := map[Suite]string{
		{Encr: EncrAESGCM16, KeyBits: 256}:                           "aes256gcm16",
		{Encr: EncrChaCha20Poly1305, ESN: true}:                      "chacha20poly1305-esn",
		{Encr: EncrAESCBC, KeyBits: 128, Integ: IntegHMACSHA384_192}: "aes128-sha384",
	}
	for s, want := range names {
		if s.String() != want {
			t.Errorf("%#v.String() = %q, want %q", s, s.String(), want)
		}
	}
}

func TestSPIOf(t *testing.T) {
	cases := []struct {
		pkt  []byte
		spi  uint32
		isOK bool
	}{
		{nil, 0, false},
		{[]byte{0xff}, 0, false}, // NAT keepalive
		{[]byte{1, 2, 3, 4, 0, 0, 0}, 0, false},
		{[]byte{0, 0, 0, 0, 1, 2, 3, 4, 5}, 0, false}, // non-ESP marker
		{[]byte{1, 2, 3, 4, 0, 0, 0, 1}, 0x01020304, true},
	}
	for _, c := range cases {
		spi, ok := SPIOf(c.pkt)
		if ok != c.isOK || (ok && spi != c.spi) {
			t.Errorf("SPIOf(%x) = %#x, %v", c.pkt, spi, ok)
		}
	}
}

func TestWrongSPI(t *testing.T) {
	s := Suite{Encr: EncrAESGCM16, KeyBits: 128}
	o, _ := newPair(t, s, Limits{})
	enc, _ := testKeys(t, s)
	other, err := NewInbound(testSPI+1, s, enc, nil, Limits{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Open(seal(t, o, payload(50, 1), 4)); !errors.Is(err, ErrAuth) {
		t.Fatalf("packet for another SPI: %v, want ErrAuth", err)
	}
}

// TestReserveSealSeq: numbers reserved in order and sealed out of order (as
// a parallel data plane does) carry the reserved numbers and open; a
// number outside the reserved range is refused.
func TestReserveSealSeq(t *testing.T) {
	for _, s := range allSuites() {
		o, in := newPair(t, s, Limits{})
		var seqs []uint64
		for range 4 {
			q, err := o.Reserve()
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, q)
		}
		if seqs[0] != 1 || seqs[3] != 4 {
			t.Fatalf("%v: reserved %v, want 1..4", s, seqs)
		}
		pkts := make([][]byte, len(seqs))
		for i := len(seqs) - 1; i >= 0; i-- {
			p := payload(300+i, byte(i))
			buf := make([]byte, o.Headroom()+len(p)+o.Tailroom())
			copy(buf[o.Headroom():], p)
			pkt, err := o.SealSeq(buf, o.Headroom(), len(p), 4, seqs[i])
			if err != nil {
				t.Fatal(err)
			}
			if got := uint64(pkt[4])<<24 | uint64(pkt[5])<<16 | uint64(pkt[6])<<8 | uint64(pkt[7]); got != seqs[i]&0xffffffff {
				t.Errorf("%v: packet %d has sequence %d, want %d", s, i, got, seqs[i])
			}
			pkts[i] = pkt
		}
		for i, pkt := range pkts {
			inner, _, err := in.Open(pkt)
			if err != nil || len(inner) != 300+i || inner[0] != payload(300+i, byte(i))[0] {
				t.Fatalf("%v: open %d: %v", s, i, err)
			}
		}
		buf := make([]byte, o.Headroom()+100+o.Tailroom())
		if _, err := o.SealSeq(buf, o.Headroom(), 100, 4, 0); !errors.Is(err, ErrSeqOverflow) {
			t.Errorf("%v: SealSeq(0) = %v, want ErrSeqOverflow", s, err)
		}
		if o.LastSeq() != 4 {
			t.Errorf("%v: LastSeq = %d after 4 reservations", s, o.LastSeq())
		}
	}
}
