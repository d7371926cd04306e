package dataplane

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/qcdvpn/qcdvpn/esp"
	"github.com/qcdvpn/qcdvpn/ike"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
)

// TestEngineReorderReplayCrossSA: ESP an attacker on the path shuffles,
// replays or moves to another SA. 200 packets delivered in random order
// each arrive exactly once; all of them again, reordered, are dropped as
// replays; a packet's SPI rewritten to the other SA of a rekey fails
// authentication there. Each drop is counted, and afterwards fresh
// traffic still flows on both SAs.
func TestEngineReorderReplayCrossSA(t *testing.T) {
	cSA, gSA := pairOfSAs(t, ike.Suite{Encr: ikecrypto.EncrAESGCM16, KeyBits: 256})
	_, ctun, ccap := startEngine(t, cSA)
	g, gtun, _ := startEngine(t, gSA)

	const n = 200
	var esps, plain [][]byte
	for i := range n {
		ping := tuntest.Ping(netip.AddrFrom4([4]byte{10, 200, 0, byte(1 + i%250)}), netip.MustParseAddr("10.100.0.1"))
		plain = append(plain, ping)
		esps = append(esps, sendThrough(t, ctun, ccap, ping))
	}
	shuffled := func() [][]byte {
		s := append([][]byte(nil), esps...)
		rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		return s
	}
	got := deliver(t, g, gtun, shuffled()...)
	if len(got) != n {
		t.Fatalf("reordered: %d of %d delivered", len(got), n)
	}
	seen := map[string]int{}
	for _, p := range got {
		seen[string(p)]++
	}
	for i, p := range plain {
		if seen[string(p)] != 1 {
			t.Fatalf("packet %d delivered %d times", i, seen[string(p)])
		}
	}
	if again := deliver(t, g, gtun, shuffled()...); len(again) != 0 {
		t.Fatalf("%d replayed packets delivered", len(again))
	}
	st := g.Stats()
	if st.PacketsIn != n || st.DropReplay != n {
		t.Errorf("after the replay: %+v, want %d in and %d replays", st, n, n)
	}

	// A rekey on the gateway's side: a second inbound SA with its own keys.
	next := *gSA
	next.SPIIn, next.SPIOut = 0x2001, 0x1001
	next.EncrIn = bytes.Repeat([]byte{9}, len(gSA.EncrIn))
	next.EncrOut = bytes.Repeat([]byte{8}, len(gSA.EncrOut))
	if err := g.Install(&next, netip.MustParseAddrPort("192.0.2.1:4500"), esp.Limits{}); err != nil {
		t.Fatal(err)
	}
	moved := append([]byte(nil), esps[0]...)
	binary.BigEndian.PutUint32(moved, next.SPIIn)
	if got := deliver(t, g, gtun, moved); len(got) != 0 {
		t.Fatal("a packet moved to another SA was delivered")
	}
	if st2 := g.Stats(); st2.DropAuth != st.DropAuth+1 {
		t.Errorf("moved packet: %+v, want one more auth drop", st2)
	}
	// Fresh traffic on the old SA (make before break) still passes.
	ping := tuntest.Ping(netip.MustParseAddr("10.200.0.9"), netip.MustParseAddr("10.100.0.1"))
	if got := deliver(t, g, gtun, sendThrough(t, ctun, ccap, ping)); len(got) != 1 || !bytes.Equal(got[0], ping) {
		t.Fatalf("fresh packet after the attacks: %d delivered", len(got))
	}
}
