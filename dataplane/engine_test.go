package dataplane

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/qcdvpn/qcdvpn/esp"
	"github.com/qcdvpn/qcdvpn/ike"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// capture is a Sender that keeps copies of what it is asked to send.
type capture struct {
	mu   sync.Mutex
	pkts [][]byte
	got  chan struct{}
}

func (c *capture) SendESPBatch(pkts [][]byte, to *net.UDPAddr, _ []ipv4.Message) error {
	c.mu.Lock()
	for _, p := range pkts {
		c.pkts = append(c.pkts, append([]byte(nil), p...))
	}
	c.mu.Unlock()
	c.got <- struct{}{}
	return nil
}

func sel(p string) []wire.Selector {
	pf := netip.MustParsePrefix(p)
	typ := wire.TSIPv4AddrRange
	a := pf.Addr().As4()
	host := uint32(1)<<(32-pf.Bits()) - 1
	if pf.Bits() == 0 {
		host = ^uint32(0)
	}
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	last := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	return []wire.Selector{{Type: typ, StartPort: 0, EndPort: 65535, Start: pf.Addr(), End: last}}
}

// pairOfSAs returns the client's Child SA and the gateway's mirror image.
func pairOfSAs(t testing.TB, suite ike.Suite) (client, gateway *ike.ChildSA) {
	t.Helper()
	encLen, err := ikecrypto.EncrKeyLen(suite.Encr, suite.KeyBits)
	if err != nil {
		t.Fatal(err)
	}
	integLen := 0
	if suite.Integ != 0 {
		in, _ := ikecrypto.NewIntegrity(suite.Integ)
		integLen = in.KeyLen()
	}
	key := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	client = &ike.ChildSA{Suite: suite, SPIIn: 0x1000, SPIOut: 0x2000,
		EncrIn: key(encLen, 1), IntegIn: key(integLen, 2), EncrOut: key(encLen, 3), IntegOut: key(integLen, 4),
		TSi: sel("10.100.0.1/32"), TSr: sel("10.200.0.0/24")}
	gateway = &ike.ChildSA{Suite: suite, SPIIn: 0x2000, SPIOut: 0x1000,
		EncrIn: client.EncrOut, IntegIn: client.IntegOut, EncrOut: client.EncrIn, IntegOut: client.IntegIn,
		TSi: client.TSr, TSr: client.TSi}
	return client, gateway
}

func startEngine(t *testing.T, c *ike.ChildSA) (*Engine, *tuntest.ChannelTUN, *capture) {
	t.Helper()
	tt := tuntest.NewChannelTUN()
	cap := &capture{got: make(chan struct{}, 100)}
	e := New(tt.TUN(), cap, nil)
	if err := e.Install(c, netip.MustParseAddrPort("192.0.2.1:4500"), esp.Limits{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); e.Close(); tt.TUN().Close(); <-done })
	return e, tt, cap
}

// sendThrough writes pkt into the client's TUN and returns the ESP packet
// the engine sent.
func sendThrough(t *testing.T, tt *tuntest.ChannelTUN, cap *capture, pkt []byte) []byte {
	t.Helper()
	tt.Outbound <- pkt
	select {
	case <-cap.got:
	case <-time.After(2 * time.Second):
		t.Fatal("engine sent nothing")
	}
	cap.mu.Lock()
	defer cap.mu.Unlock()
	return cap.pkts[len(cap.pkts)-1]
}

// deliver hands ESP packets to the gateway engine and returns what it
// wrote to its TUN within a short wait.
func deliver(t *testing.T, e *Engine, tt *tuntest.ChannelTUN, pkts ...[]byte) [][]byte {
	t.Helper()
	var out [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case p := <-tt.Inbound:
				out = append(out, p)
			case <-time.After(100 * time.Millisecond):
				return
			}
		}
	}()
	var batch []ike.ESPPacket
	for _, p := range pkts {
		batch = append(batch, ike.ESPPacket{Data: append(make([]byte, 0, len(p)), p...)})
	}
	e.HandleESP(batch)
	<-done
	return out
}

func TestEngineRoundTripAndDrops(t *testing.T) {
	suites := map[string]ike.Suite{
		"aes256gcm16":      {Encr: ikecrypto.EncrAESGCM16, KeyBits: 256},
		"chacha20poly1305": {Encr: ikecrypto.EncrChaCha20Poly1305},
		"aes256-sha256":    {Encr: ikecrypto.EncrAESCBC, KeyBits: 256, Integ: ikecrypto.IntegHMACSHA2_256_128},
	}
	for name, suite := range suites {
		t.Run(name, func(t *testing.T) {
			cSA, gSA := pairOfSAs(t, suite)
			c, ctun, ccap := startEngine(t, cSA)
			g, gtun, _ := startEngine(t, gSA)

			ping := tuntest.Ping(netip.MustParseAddr("10.200.0.1"), netip.MustParseAddr("10.100.0.1"))
			espPkt := sendThrough(t, ctun, ccap, ping)
			if bytes.Contains(espPkt, ping[20:]) {
				t.Fatal("ESP packet carries the payload in clear")
			}
			got := deliver(t, g, gtun, espPkt)
			if len(got) != 1 || !bytes.Equal(got[0], ping) {
				t.Fatalf("gateway TUN got %x, want %x", got, ping)
			}

			// Replayed and truncated: dropped and counted.
			if got := deliver(t, g, gtun, espPkt, espPkt[:12]); len(got) != 0 {
				t.Fatalf("bad packets delivered: %x", got)
			}

			// A packet outside the client's selectors never leaves.
			stray := tuntest.Ping(netip.MustParseAddr("192.0.2.50"), netip.MustParseAddr("10.100.0.1"))
			ctun.Outbound <- stray

			// A fresh packet with one bit flipped fails authentication and
			// does not burn its sequence number: the intact copy still passes.
			ping2 := tuntest.Ping(netip.MustParseAddr("10.200.0.2"), netip.MustParseAddr("10.100.0.1"))
			espPkt2 := sendThrough(t, ctun, ccap, ping2)
			flipped := append([]byte(nil), espPkt2...)
			flipped[len(flipped)-5] ^= 0x40
			if got := deliver(t, g, gtun, flipped); len(got) != 0 {
				t.Fatalf("bit-flipped packet delivered")
			}
			if got := deliver(t, g, gtun, espPkt2); len(got) != 1 || !bytes.Equal(got[0], ping2) {
				t.Fatalf("second packet: %x", got)
			}
			st := g.Stats()
			if st.PacketsIn != 2 || st.DropReplay != 1 || st.DropMalformed != 1 || st.DropAuth != 1 {
				t.Errorf("gateway stats %+v", st)
			}
			if cs := c.Stats(); cs.PacketsOut != 2 || cs.DropOutSelector != 1 {
				t.Errorf("client stats %+v", cs)
			}
		})
	}
}

// TestEngineInboundSelector: the gateway may not inject packets for
// addresses outside the negotiated selectors, even correctly encrypted.
func TestEngineInboundSelector(t *testing.T) {
	cSA, gSA := pairOfSAs(t, ike.Suite{Encr: ikecrypto.EncrAESGCM16, KeyBits: 256})
	// The "gateway" sends from an address outside its selector.
	gSA.TSi = sel("0.0.0.0/0")
	_, gtun, gcap := startEngine(t, gSA)
	c, ctun, _ := startEngine(t, cSA)
	spoof := tuntest.Ping(netip.MustParseAddr("10.100.0.1"), netip.MustParseAddr("172.16.0.1"))
	espPkt := sendThrough(t, gtun, gcap, spoof)
	if got := deliver(t, c, ctun, espPkt); len(got) != 0 {
		t.Fatalf("spoofed packet delivered")
	}
	if st := c.Stats(); st.DropSelector != 1 {
		t.Errorf("stats %+v", st)
	}
}

// FuzzHandleESP feeds arbitrary datagrams to an engine with a real SA:
// nothing may panic and nothing unauthenticated may reach the TUN.
func FuzzHandleESP(f *testing.F) {
	_, gSA := pairOfSAs(f, ike.Suite{Encr: ikecrypto.EncrAESGCM16, KeyBits: 256})
	f.Add([]byte{0, 0, 0x10, 0, 0, 0, 0, 1})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		tt := tuntest.NewChannelTUN()
		e := New(tt.TUN(), &capture{got: make(chan struct{}, 1)}, nil)
		if err := e.Install(gSA, netip.MustParseAddrPort("192.0.2.1:4500"), esp.Limits{}); err != nil {
			t.Fatal(err)
		}
		e.HandleESP([]ike.ESPPacket{{Data: pkt}})
		if st := e.Stats(); st.PacketsIn != 0 {
			t.Fatalf("random bytes were delivered: %+v", st)
		}
	})
}
