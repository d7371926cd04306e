package qcd

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// clock is an injectable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func srcV4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

var gw = netip.MustParseAddr("192.0.2.1")

// generous limits that the functional tests never hit.
var noLimits = Limits{PerSource: 1e9, PerSourceBurst: 1 << 30, Global: 1e9, GlobalBurst: 1 << 30}

// fixture: a store with one SA whose token came from a real maker.
type fixture struct {
	secrets *Secrets
	store   *Store
	sa      SAKey
	clk     *clock
}

func newFixture(t testing.TB) *fixture {
	sec, err := NewSecrets(seq32(0x40))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{secrets: sec, store: NewStore(nil), sa: SAKey{0x1122334455667788, 0x99aabbccddeeff00}, clk: newClock()}
	if !f.store.Add(f.sa, sec.Token(f.sa.SPIi, f.sa.SPIr)) {
		t.Fatal("Add failed")
	}
	return f
}

func mustParse(t testing.TB, b []byte) *Message {
	t.Helper()
	m := new(Message)
	if err := Parse(b, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// reply is what the rebooted maker sends: every generation's token.
func (f *fixture) reply(t testing.TB) *Message {
	return mustParse(t, unprotected(f.sa.SPIi, f.sa.SPIr, f.secrets.Tokens(f.sa.SPIi, f.sa.SPIr)...))
}

func TestCheckHitMiss(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(f.store, noLimits, f.clk.now)

	if d := v.Check(gw, f.reply(t)); d.Result != Verified || d.SA != f.sa {
		t.Fatalf("hit: %+v", d)
	}
	// A rolled-over maker sends the new token first; the old one still matches.
	f.secrets.Rollover("", nil)
	if d := v.Check(gw, f.reply(t)); d.Result != Verified {
		t.Fatalf("after rollover: %+v", d)
	}
	// Miss: a wrong token for the right SA.
	miss := mustParse(t, unprotected(f.sa.SPIi, f.sa.SPIr, tok(32, 0x55), tok(64, 0x66)))
	if d := v.Check(gw, miss); d.Result != Rejected || d.SA != f.sa {
		t.Fatalf("miss: %+v", d)
	}
	// A prefix of the right token is not the token.
	good := f.secrets.Tokens(f.sa.SPIi, f.sa.SPIr)[1]
	if d := v.Check(gw, mustParse(t, unprotected(f.sa.SPIi, f.sa.SPIr, good[:16]))); d.Result != Rejected {
		t.Fatalf("prefix: %+v", d)
	}
	// Another SA's token (valid for that SA) does not verify this one.
	other := SAKey{5, 6}
	f.store.Add(other, f.secrets.Token(other.SPIi, other.SPIr))
	cross := mustParse(t, unprotected(f.sa.SPIi, f.sa.SPIr, f.secrets.Token(other.SPIi, other.SPIr)))
	if d := v.Check(gw, cross); d.Result != Rejected {
		t.Fatalf("other SA's token: %+v", d)
	}
	// A bare INVALID_IKE_SPI.
	if d := v.Check(gw, mustParse(t, unprotected(f.sa.SPIi, f.sa.SPIr))); d.Result != NoToken || d.SA != f.sa {
		t.Fatalf("no token: %+v", d)
	}
	if d := v.Check(gw, nil); d.Result != Unknown {
		t.Fatalf("nil: %+v", d)
	}
	st := v.Stats()
	if st.Verified != 2 || st.Rejected != 3 || st.NoToken != 1 || st.Unknown != 1 || st.Limited != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCheckUnknownSpendsNoBudget(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(f.store, Limits{PerSourceBurst: 1, GlobalBurst: 1}, f.clk.now)
	unknown := mustParse(t, unprotected(1, 2, tok(32, 1)))
	noTok := mustParse(t, unprotected(f.sa.SPIi, f.sa.SPIr))
	for range 1000 {
		if d := v.Check(gw, unknown); d.Result != Unknown || d.SA != (SAKey{1, 2}) {
			t.Fatalf("%+v", d)
		}
		if d := v.Check(gw, noTok); d.Result != NoToken {
			t.Fatalf("%+v", d)
		}
	}
	if d := v.Check(gw, f.reply(t)); d.Result != Verified {
		t.Fatalf("budget spent by unknown SPIs: %+v", d)
	}
	if d := v.Check(gw, f.reply(t)); d.Result != Limited {
		t.Fatalf("burst of 1 allowed two: %+v", d)
	}
}

func TestCheckChildSPI(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(f.store, noLimits, f.clk.now)
	f.store.AddChild(0xc0ffee01, f.sa)
	toks := f.secrets.Tokens(f.sa.SPIi, f.sa.SPIr)
	spi := []byte{0xc0, 0xff, 0xee, 0x01}

	// The rebooted gateway knows only the child SPI (header SPIs unknown).
	for name, n := range map[string]payload{
		"spi field": notify(3, 11, spi, nil),
		"data":      notify(3, 11, nil, spi),
	} {
		m := mustParse(t, buildMsg(0xdead, 0, 37, 0, 0, n, nQCD(toks[0])))
		if d := v.Check(gw, m); d.Result != Verified || d.SA != f.sa {
			t.Fatalf("%s: %+v", name, d)
		}
	}
	// INVALID_SPI with the parent's header SPIs resolves without a child.
	m := mustParse(t, buildMsg(f.sa.SPIi, f.sa.SPIr, 37, 0, 0, notify(3, 11, nil, nil), nQCD(toks[0])))
	if d := v.Check(gw, m); d.Result != Verified {
		t.Fatalf("header: %+v", d)
	}
	// Unmapped child SPI: unknown.
	m = mustParse(t, buildMsg(0xdead, 0, 37, 0, 0, notify(3, 11, []byte{9, 9, 9, 9}, nil), nQCD(toks[0])))
	if d := v.Check(gw, m); d.Result != Unknown {
		t.Fatalf("unmapped: %+v", d)
	}
	// INVALID_IKE_SPI never consults the child map.
	m = mustParse(t, buildMsg(0xdead, 0, 37, 0, 0, nInvalidIKESPI(), notify(3, 11, spi, nil), nQCD(toks[0])))
	if d := v.Check(gw, m); d.Result != Unknown {
		t.Fatalf("INVALID_IKE_SPI via child: %+v", d)
	}
	// After an IKE rekey the child maps to the new SA and its new token.
	nw := SAKey{0x77, 0x88}
	f.store.Rekeyed(f.sa, nw)
	f.store.Add(nw, f.secrets.Token(nw.SPIi, nw.SPIr))
	m = mustParse(t, buildMsg(0xdead, 0, 37, 0, 0, notify(3, 11, spi, nil), nQCD(toks[0])))
	if d := v.Check(gw, m); d.Result != Rejected || d.SA != nw {
		t.Fatalf("old token after rekey: %+v", d)
	}
	m = mustParse(t, buildMsg(0xdead, 0, 37, 0, 0, notify(3, 11, spi, nil), nQCD(f.secrets.Token(nw.SPIi, nw.SPIr))))
	if d := v.Check(gw, m); d.Result != Verified || d.SA != nw {
		t.Fatalf("new token after rekey: %+v", d)
	}
}

func TestCheckPerSourceLimit(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(f.store, Limits{PerSource: 1, PerSourceBurst: 3, Global: 1e6, GlobalBurst: 1e6}, f.clk.now)
	m := f.reply(t)
	for i := range 3 {
		if d := v.Check(gw, m); d.Result != Verified {
			t.Fatalf("check %d: %+v", i, d)
		}
	}
	if d := v.Check(gw, m); d.Result != Limited || d.SA != f.sa {
		t.Fatalf("4th: %+v", d)
	}
	// The same IPv6 /64 shares a bucket; a different /64 does not.
	a := netip.MustParseAddr("2001:db8:1:2::1")
	for range 3 {
		v.Check(a, m)
	}
	if d := v.Check(netip.MustParseAddr("2001:db8:1:2::ffff"), m); d.Result != Limited {
		t.Fatalf("same /64: %+v", d)
	}
	if d := v.Check(netip.MustParseAddr("2001:db8:1:3::1"), m); d.Result != Verified {
		t.Fatalf("other /64: %+v", d)
	}
	// IPv4-mapped is the IPv4 source.
	if d := v.Check(netip.MustParseAddr("::ffff:192.0.2.1"), m); d.Result != Limited {
		t.Fatalf("mapped: %+v", d)
	}
	// Another source is not limited.
	if d := v.Check(netip.MustParseAddr("198.51.100.7"), m); d.Result != Verified {
		t.Fatalf("other source: %+v", d)
	}
	// One unit per second refills.
	f.clk.advance(time.Second)
	if d := v.Check(gw, m); d.Result != Verified {
		t.Fatalf("after 1s: %+v", d)
	}
	if d := v.Check(gw, m); d.Result != Limited {
		t.Fatalf("after 1s, 2nd: %+v", d)
	}
	// A clock stepping back neither refills nor breaks anything.
	f.clk.advance(-time.Hour)
	if d := v.Check(gw, m); d.Result != Limited {
		t.Fatalf("clock back: %+v", d)
	}
}

func TestCheckGlobalLimit(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(f.store, Limits{Global: 2, GlobalBurst: 5}, f.clk.now)
	m := f.reply(t)
	for i := range 5 {
		if d := v.Check(srcV4(i), m); d.Result != Verified {
			t.Fatalf("check %d: %+v", i, d)
		}
	}
	if d := v.Check(srcV4(100), m); d.Result != Limited {
		t.Fatalf("6th: %+v", d)
	}
	f.clk.advance(500 * time.Millisecond) // 2/s: one unit
	if d := v.Check(srcV4(101), m); d.Result != Verified {
		t.Fatalf("after refill: %+v", d)
	}
	if d := v.Check(srcV4(102), m); d.Result != Limited {
		t.Fatalf("after refill, 2nd: %+v", d)
	}
	if st := v.Stats(); st.Limited != 2 || st.Verified != 6 {
		t.Fatalf("stats %+v", st)
	}
}

// TestFlood: 100k spoofed sources with wrong tokens neither grow the
// Verifier's memory nor lock out the real gateway for good.
func TestFlood(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(f.store, Limits{}, f.clk.now)
	if len(v.table) != DefaultTable {
		t.Fatalf("table %d", len(v.table))
	}
	bad := mustParse(t, unprotected(f.sa.SPIi, f.sa.SPIr, tok(32, 0x13)))
	r := rand.New(rand.NewPCG(1, 2))
	var b16 [16]byte
	srcs := make([]netip.Addr, 100_000)
	for i := range srcs {
		if i%2 == 0 {
			srcs[i] = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		} else {
			for j := range b16 {
				b16[j] = byte(r.Uint32())
			}
			srcs[i] = netip.AddrFrom16(b16)
		}
	}
	i := 0
	allocs := testing.AllocsPerRun(len(srcs)-1, func() {
		v.Check(srcs[i], bad)
		i++
		if i%1000 == 0 && i < len(srcs) {
			f.clk.advance(time.Millisecond)
		}
	})
	if allocs != 0 {
		t.Errorf("flood allocates %v per message", allocs)
	}
	if len(v.table) != DefaultTable || cap(v.table) != DefaultTable {
		t.Fatalf("table grew to %d", len(v.table))
	}
	st := v.Stats()
	if st.Verified != 0 || st.Limited == 0 || st.Rejected+st.Limited != uint64(len(srcs)) {
		t.Fatalf("stats %+v", st)
	}
	// Rejected is bounded by the global budget: burst + rate * elapsed.
	if maxRej := uint64(DefaultGlobalBurst + DefaultGlobal*0.1 + 1); st.Rejected > maxRej {
		t.Fatalf("%d verifications, global limit allows %d", st.Rejected, maxRej)
	}
	// During the flood the gateway is limited too...
	if d := v.Check(gw, f.reply(t)); d.Result != Limited {
		t.Fatalf("during flood: %+v", d)
	}
	// ...but once the global bucket has refilled its real token verifies.
	f.clk.advance(time.Second)
	if d := v.Check(gw, f.reply(t)); d.Result != Verified {
		t.Fatalf("after flood: %+v", d)
	}
}

func TestCheckAllocs(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(f.store, noLimits, f.clk.now)
	hit := f.reply(t)
	miss := mustParse(t, unprotected(f.sa.SPIi, f.sa.SPIr, tok(32, 1), tok(32, 2), tok(32, 3), tok(32, 4)))
	unknown := mustParse(t, unprotected(1, 2, tok(32, 1)))
	for name, m := range map[string]*Message{"hit": hit, "miss": miss, "unknown": unknown} {
		if a := testing.AllocsPerRun(200, func() { v.Check(gw, m) }); a != 0 {
			t.Errorf("%s: %v allocs", name, a)
		}
	}
	// With the real clock as well.
	v = NewVerifier(f.store, noLimits, nil)
	if a := testing.AllocsPerRun(200, func() { v.Check(gw, hit) }); a != 0 {
		t.Errorf("time.Now: %v allocs", a)
	}
}

func TestCheckHandMadeMessage(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(f.store, noLimits, f.clk.now)
	m := &Message{SPIi: f.sa.SPIi, SPIr: f.sa.SPIr, Kind: KindInvalidIKESPI, NTokens: 99}
	m.Tokens[7] = f.secrets.Token(f.sa.SPIi, f.sa.SPIr)
	if d := v.Check(gw, m); d.Result != Verified {
		t.Fatalf("%+v", d)
	}
	m.NTokens = -3
	if d := v.Check(gw, m); d.Result != NoToken {
		t.Fatalf("%+v", d)
	}
	m.Kind = 77
	if d := v.Check(netip.Addr{}, m); d.Result != Unknown {
		t.Fatalf("%+v", d)
	}
}

func TestLimitsDefaults(t *testing.T) {
	nan := 0.0
	nan = nan / nan
	l := Limits{PerSource: nan, PerSourceBurst: -1, Global: -5, Table: 1 << 40}.withDefaults()
	if l.PerSource != DefaultPerSource || l.PerSourceBurst != DefaultPerSourceBurst ||
		l.Global != DefaultGlobal || l.GlobalBurst != DefaultGlobalBurst || l.Table != MaxTable {
		t.Fatalf("%+v", l)
	}
	if NewVerifier(nil, Limits{Table: 7}, nil).Check(gw, &Message{}).Result != Unknown {
		t.Fatal("nil store")
	}
}

func TestResultString(t *testing.T) {
	for r, s := range map[Result]string{Unknown: "unknown", Verified: "verified", Rejected: "rejected",
		Limited: "limited", NoToken: "no-token", 42: "Result(?)"} {
		if r.String() != s {
			t.Errorf("%d: %q", r, r.String())
		}
	}
}
