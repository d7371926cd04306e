package gateway

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike"
	"github.com/qcdvpn/qcdvpn/ike/auth"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

var testHAKey = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

func rep(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// testSessionState is a well-formed AES-GCM/SHA-256 IKE SA.
func testSessionState(spir uint64) *ike.SessionState {
	sel := wire.Selector{Type: 7, EndPort: 65535, Start: netip.MustParseAddr("10.100.0.1"), End: netip.MustParseAddr("10.100.0.1")}
	sel2 := wire.Selector{Type: 7, EndPort: 65535, Start: netip.MustParseAddr("10.200.0.0"), End: netip.MustParseAddr("10.200.0.255")}
	gcm := ike.Suite{Encr: ikecrypto.EncrAESGCM16, KeyBits: 256}
	return &ike.SessionState{
		SPIi: 0x1111, SPIr: spir,
		Suite: ike.Suite{Encr: ikecrypto.EncrAESGCM16, KeyBits: 256, PRF: ikecrypto.PRFHMACSHA2_256, DH: 31},
		SKd:   rep(1, 32), SKei: rep(2, 36), SKer: rep(3, 36), SKpi: rep(4, 32), SKpr: rep(5, 32),
		NextID: 3, PeerNext: 7, Remote: netip.MustParseAddrPort("192.0.2.7:4500"), Encap: true,
		PeerID:      auth.ParseIdentity("client.example"),
		VirtualIPs:  []netip.Prefix{netip.MustParsePrefix("10.100.0.1/32")},
		HAMessageID: true, HAReplay: true,
		Child: &ike.ChildSA{Suite: gcm, SPIIn: 0x1234, SPIOut: 0x5678, EncrIn: rep(6, 36), EncrOut: rep(7, 36),
			TSi: []wire.Selector{sel}, TSr: []wire.Selector{sel2}, Encap: true},
		Established: time.Unix(1700000000, 0).UTC(),
	}
}

func testHAPlain(t testing.TB, ss ...*ike.SessionState) []byte {
	st := haState{Version: haVersion, Written: time.Now().UTC(), Gateway: "gw.example"}
	for _, s := range ss {
		st.Sessions = append(st.Sessions, haSessionR{Listen: "192.0.2.1:4500", IKE: s, ESPOut: 10, ESPIn: 20})
	}
	b, err := json.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHAStateFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ha.state")
	sealed, err := sealHAState(testHAKey, testHAPlain(t, testSessionState(0x2222), testSessionState(0x3333)))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, rep(6, 36)) || bytes.Contains(sealed, []byte("client.example")) {
		t.Fatal("the sealed file shows keys or identities")
	}
	if err := writeFileAtomic(path, sealed); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
	written, ss, err := InspectHAState(path, testHAKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 || ss[0].SPIr != 0x2222 || ss[1].NextID != 3 || ss[1].PeerNext != 7 || ss[0].ESPOut != 10 || ss[0].ESPIn != 20 ||
		!ss[0].HAMessageID || ss[0].Peer != "client.example" || time.Since(written) > time.Minute {
		t.Errorf("InspectHAState = %v %+v", written, ss)
	}
	st, err := readHAState(path, testHAKey)
	if err != nil {
		t.Fatal(err)
	}
	got := st.Sessions[0].IKE
	if !bytes.Equal(got.Child.EncrOut, rep(7, 36)) || got.Remote != netip.MustParseAddrPort("192.0.2.7:4500") || got.Child.TSr[0].End != netip.MustParseAddr("10.200.0.255") {
		t.Errorf("state did not round-trip: %+v", got)
	}
}

func TestHAStateFileRefused(t *testing.T) {
	good, err := sealHAState(testHAKey, testHAPlain(t, testSessionState(0x2222)))
	if err != nil {
		t.Fatal(err)
	}
	other := testHAKey
	other[0] ^= 1
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-20] ^= 1
	for name, c := range map[string]struct {
		key  [32]byte
		data []byte
		want string
	}{
		"wrong key": {other, good, "does not open with ha.key_hex"},
		"tampered":  {testHAKey, tampered, "does not open"},
		"truncated": {testHAKey, good[:len(haMagic)+5], "truncated"},
		"not ours":  {testHAKey, []byte("{\"version\":1}"), "not a qcdvpn HA state file"},
		"empty":     {testHAKey, nil, "not a qcdvpn HA state file"},
	} {
		_, err := openHAState(c.key, c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	bad := func(f func(*ike.SessionState)) []byte {
		s := testSessionState(0x2222)
		f(s)
		return testHAPlain(t, s)
	}
	for name, c := range map[string]struct {
		plain []byte
		want  string
	}{
		"version":     {[]byte(`{"version":2,"sessions":[]}`), "version 2"},
		"unknown key": {[]byte(`{"version":1,"sessions":[],"x":1}`), "invalid JSON"},
		"trailing":    {[]byte(`{"version":1,"sessions":[]} {}`), "trailing data"},
		"twice":       {testHAPlain(t, testSessionState(9), testSessionState(9)), "twice"},
		"no ike":      {[]byte(`{"version":1,"sessions":[{"listen":"192.0.2.1:4500"}]}`), "no ike state"},
		"zero spi":    {bad(func(s *ike.SessionState) { s.SPIi = 0 }), "SPI is zero"},
		"short key":   {bad(func(s *ike.SessionState) { s.SKei = s.SKei[:10] }), "initiator keys"},
		"prf key":     {bad(func(s *ike.SessionState) { s.SKd = nil }), "SK_d"},
		"child key":   {bad(func(s *ike.SessionState) { s.Child.EncrIn = nil }), "Child SA keys"},
		"no child":    {bad(func(s *ike.SessionState) { s.Child = nil }), "no Child SA"},
		"child spi":   {bad(func(s *ike.SessionState) { s.Child.SPIIn = 1 }), "Child SA SPI"},
		"no ts":       {bad(func(s *ike.SessionState) { s.Child.TSi = nil }), "traffic selectors"},
		"no remote":   {bad(func(s *ike.SessionState) { s.Remote = netip.AddrPort{} }), "invalid remote"},
		"no peer":     {bad(func(s *ike.SessionState) { s.PeerID.Data = nil }), "peer identity"},
		"rate":        {[]byte(strings.Replace(string(testHAPlain(t, testSessionState(9))), `"esp_in":20`, `"esp_in":20,"in_rate":-1`, 1)), "negative packet rate"},
	} {
		_, err := decodeHAState(c.plain)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func TestHAConfig(t *testing.T) {
	base := func(ha string) string {
		return `{"listen":["192.0.2.1"],"id":"gw.example","auth":{"method":"psk","psk":"` + testPSK + `"},
  "pool":["10.100.0.0/24"],"local_ts":["10.200.0.0/24"],"state_dir":"/var/lib/qcdvpn-gw","ha":` + ha + `}`
	}
	c, err := ParseConfig([]byte(base(`{"export_file":"/x/ha.state","key_hex":"` + testKeyHex + `"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if c.HAExportInterval() != time.Second || c.HACounterSkip() != 1<<20 {
		t.Errorf("defaults: %v %v", c.HAExportInterval(), c.HACounterSkip())
	}
	c, err = ParseConfig([]byte(base(`{"import_file":"/x/ha.state","key_hex":"` + testKeyHex + `","export_interval":"50ms","counter_skip":1000}`)))
	if err != nil || c.HAExportInterval() != 50*time.Millisecond || c.HACounterSkip() != 1000 {
		t.Fatalf("explicit values: %v %v", c, err)
	}
	for ha, want := range map[string]string{
		`{"export_file":"/x/ha.state"}`:                                              "ha.key_hex: want 64 hex digits",
		`{"export_file":"/x/ha.state","key_hex":"zz"}`:                               "ha.key_hex",
		`{"key_hex":"` + testKeyHex + `"}`:                                           "needs export_file or import_file",
		`{"export_file":"/x","key_hex":"` + testKeyHex + `","export_interval":"1h"}`: "ha.export_interval",
		`{"export_file":"/x","key_hex":"` + testKeyHex + `","counter_skip":-1}`:      "ha.counter_skip",
		`{"export_file":"/x","key_hex":"` + strings.Repeat("0", 64) + `"}`:           "all zeros",
		`{"exportfile":"/x"}`:                                                        `unknown field "exportfile" (did you mean "export_file"?)`,
	} {
		_, err := ParseConfig([]byte(base(ha)))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), testKeyHex) {
			t.Errorf("ha %s: %v, want %q", ha, err, want)
		}
	}
}

func TestHASkip(t *testing.T) {
	for _, c := range []struct {
		rate  float64
		since time.Duration
		want  uint64
	}{
		{0, time.Hour, 1 << 20},               // idle SA: the margin
		{1000, 3 * time.Second, 1 << 20},      // 6000 < margin
		{200000, 10 * time.Second, 4_000_000}, // 2 x 2e6 packets
		{1e9, time.Hour, 1 << 31},             // capped
		{1000, -time.Minute, 1 << 20},         // clock skew
	} {
		if got := haSkip(1<<20, c.rate, c.since); got != c.want {
			t.Errorf("haSkip(rate %g, since %v) = %d, want %d", c.rate, c.since, got, c.want)
		}
	}
}

// FuzzHAState: opening and decoding a state file never panics; what
// decodes passes the IKE state checks the standby relies on.
func FuzzHAState(f *testing.F) {
	f.Add(testHAPlain(f, testSessionState(0x2222)))
	f.Add([]byte(`{"version":1,"sessions":[]}`))
	if sealed, err := sealHAState(testHAKey, testHAPlain(f, testSessionState(0x2222))); err == nil {
		f.Add(sealed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if plain, err := openHAState(testHAKey, b); err == nil {
			b = plain
		}
		st, err := decodeHAState(b)
		if err != nil {
			return
		}
		for _, s := range st.Sessions {
			if err := s.IKE.Check(); err != nil {
				t.Fatalf("decoded state fails its check: %v", err)
			}
		}
	})
}
