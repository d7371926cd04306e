package esp

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen feeds arbitrary packets to an Inbound of every suite (Open must
// return one of the package's errors or a packet, never panic) and checks
// the Seal→Open round trip with the input as the inner packet.
func FuzzOpen(f *testing.F) {
	suites := allSuites()
	type pair struct {
		o  *Outbound
		in *Inbound
	}
	pairs := make([]pair, len(suites))
	for k, s := range suites {
		o, in := newPair(f, s, Limits{})
		pairs[k] = pair{o, in}
		f.Add(seal(f, o, payload(60, byte(k)), 4), uint8(k))
	}
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 0}, uint8(3))
	f.Add(bytes.Repeat([]byte{0xff}, 100), uint8(7))
	known := []error{ErrReplay, ErrAuth, ErrMalformed, ErrDummy, ErrLifetime}

	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		for _, p := range pairs {
			inner, _, err := p.in.Open(bytes.Clone(data))
			if err == nil {
				if len(inner) > len(data) {
					t.Fatal("inner longer than the packet")
				}
				continue // a seed packet: authentic once
			}
			isKnown := false
			for _, e := range known {
				isKnown = isKnown || errors.Is(err, e)
			}
			if !isKnown {
				t.Fatalf("Open: unexpected error %v", err)
			}
		}
		p := pairs[int(which)%len(pairs)]
		nh := which
		if nh == NextHeaderDummy {
			nh = NextHeaderIPv4
		}
		buf := make([]byte, p.o.Headroom()+len(data)+p.o.Tailroom())
		copy(buf[p.o.Headroom():], data)
		pkt, err := p.o.Seal(buf, p.o.Headroom(), len(data), nh)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		inner, gotNH, err := p.in.Open(pkt)
		if err != nil || gotNH != nh || !bytes.Equal(inner, data) {
			t.Fatalf("round trip via %v: err %v, nh %d/%d, equal %v", suites[int(which)%len(pairs)], err, gotNH, nh, bytes.Equal(inner, data))
		}
	})
}
