package ippkt

import (
	"net/netip"
	"testing"

	"github.com/qcdvpn/qcdvpn/esp"
)

func v4(src, dst string) []byte {
	p := make([]byte, 20)
	p[0] = 0x45
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	return p
}

func v6(src, dst string) []byte {
	p := make([]byte, 40)
	p[0] = 0x60
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	return p
}

func TestHeader(t *testing.T) {
	for _, tc := range []struct {
		name     string
		p        []byte
		nh       byte
		src, dst string
		ok       bool
	}{
		{"v4", v4("192.0.2.1", "198.51.100.2"), esp.NextHeaderIPv4, "192.0.2.1", "198.51.100.2", true},
		{"v6", v6("2001:db8::1", "2001:db8::2"), esp.NextHeaderIPv6, "2001:db8::1", "2001:db8::2", true},
		{"v4 with payload", append(v4("10.0.0.1", "10.0.0.2"), 1, 2, 3), esp.NextHeaderIPv4, "10.0.0.1", "10.0.0.2", true},
		{"empty", nil, 0, "", "", false},
		{"v4 short", v4("10.0.0.1", "10.0.0.2")[:19], 0, "", "", false},
		{"v6 short", v6("::1", "::2")[:39], 0, "", "", false},
		{"version 5", append([]byte{0x50}, make([]byte, 40)...), 0, "", "", false},
	} {
		nh, src, dst, ok := Header(tc.p)
		if ok != tc.ok || nh != tc.nh {
			t.Errorf("%s: nh %d ok %v, want %d %v", tc.name, nh, ok, tc.nh, tc.ok)
			continue
		}
		if !ok {
			if src.IsValid() || dst.IsValid() {
				t.Errorf("%s: addresses %v %v on failure", tc.name, src, dst)
			}
			continue
		}
		if src != netip.MustParseAddr(tc.src) || dst != netip.MustParseAddr(tc.dst) {
			t.Errorf("%s: %v -> %v, want %s -> %s", tc.name, src, dst, tc.src, tc.dst)
		}
	}
}

func TestContains(t *testing.T) {
	ps := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for a, want := range map[string]bool{"10.1.2.3": true, "11.0.0.1": false, "2001:db8::1": true, "::ffff:10.0.0.1": false} {
		if got := Contains(ps, netip.MustParseAddr(a)); got != want {
			t.Errorf("Contains(%s) = %v", a, got)
		}
	}
	if Contains(nil, netip.MustParseAddr("10.0.0.1")) {
		t.Error("empty list contains an address")
	}
}

func TestNoAllocs(t *testing.T) {
	p4, p6 := v4("10.0.0.1", "10.0.0.2"), v6("2001:db8::1", "2001:db8::2")
	ps := []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("2001:db8::/32")}
	if a := testing.AllocsPerRun(100, func() {
		for _, p := range [][]byte{p4, p6} {
			_, src, dst, _ := Header(p)
			Contains(ps, src)
			Contains(ps, dst)
		}
	}); a != 0 {
		t.Errorf("%v allocations per run", a)
	}
}

func BenchmarkHeaderContains(b *testing.B) {
	p := v6("2001:db8::1", "2001:db8::2")
	ps := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	b.ReportAllocs()
	for b.Loop() {
		_, src, dst, ok := Header(p)
		if !ok || !Contains(ps, src) || !Contains(ps, dst) {
			b.Fatal("no match")
		}
	}
}
