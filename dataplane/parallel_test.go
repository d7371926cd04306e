package dataplane

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/qcdvpn/qcdvpn/esp"
	"github.com/qcdvpn/qcdvpn/ike"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
)

// batchDev is a TUN device that reads whole batches, as a Linux TUN with
// offloads does, and records what is written.
type batchDev struct {
	reads  chan [][]byte
	mu     sync.Mutex
	writes [][]byte
	closed chan struct{}
	once   sync.Once
}

func newBatchDev() *batchDev {
	return &batchDev{reads: make(chan [][]byte, 4), closed: make(chan struct{})}
}

func (d *batchDev) File() *os.File           { return nil }
func (d *batchDev) MTU() (int, error)        { return 1400, nil }
func (d *batchDev) Name() (string, error)    { return "batch0", nil }
func (d *batchDev) Events() <-chan tun.Event { return nil }
func (d *batchDev) BatchSize() int           { return 128 }
func (d *batchDev) Close() error             { d.once.Do(func() { close(d.closed) }); return nil }
func (d *batchDev) Read(bufs [][]byte, sizes []int, off int) (int, error) {
	select {
	case b := <-d.reads:
		for i, p := range b {
			sizes[i] = copy(bufs[i][off:], p)
		}
		return len(b), nil
	case <-d.closed:
		return 0, os.ErrClosed
	}
}
func (d *batchDev) Write(bufs [][]byte, off int) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range bufs {
		d.writes = append(d.writes, append([]byte(nil), b[off:]...))
	}
	return len(bufs), nil
}

// TestParallelBatchKeepsOrder seals a 100-packet TUN batch on a crew of
// workers and opens it on another: the ESP sequence numbers go out in
// read order, and the inner packets reach the TUN in that order, intact.
func TestParallelBatchKeepsOrder(t *testing.T) {
	for name, suite := range map[string]ike.Suite{
		"aes256gcm16":   {Encr: ikecrypto.EncrAESGCM16, KeyBits: 256},
		"aes256-sha256": {Encr: ikecrypto.EncrAESCBC, KeyBits: 256, Integ: ikecrypto.IntegHMACSHA2_256_128},
	} {
		t.Run(name, func(t *testing.T) {
			cSA, gSA := pairOfSAs(t, suite)
			dev := newBatchDev()
			cap := &capture{got: make(chan struct{}, 100)}
			c := New(dev, cap, nil)
			c.workers = 3
			peer := netip.MustParseAddrPort("192.0.2.1:4500")
			if err := c.Install(cSA, peer, esp.Limits{}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			defer func() { cancel(); c.Close(); dev.Close(); <-done }()

			var batch [][]byte
			for i := range 100 {
				p := tuntest.Ping(netip.AddrFrom4([4]byte{10, 200, 0, byte(1 + i%200)}), netip.MustParseAddr("10.100.0.1"))
				p = append(p, bytes.Repeat([]byte{byte(i)}, 500+i)...)
				binary.BigEndian.PutUint16(p[2:], uint16(len(p))) // IPv4 total length
				batch = append(batch, p)
			}
			dev.reads <- batch
			select {
			case <-cap.got:
			case <-time.After(5 * time.Second):
				t.Fatal("nothing sent")
			}
			cap.mu.Lock()
			sent := cap.pkts
			cap.mu.Unlock()
			if len(sent) != len(batch) {
				t.Fatalf("sent %d ESP packets for %d read", len(sent), len(batch))
			}
			for i, p := range sent {
				if seq := binary.BigEndian.Uint32(p[4:8]); seq != uint32(i+1) {
					t.Fatalf("ESP packet %d has sequence %d", i, seq)
				}
			}

			gdev := newBatchDev()
			g := New(gdev, cap, nil)
			if err := g.Install(gSA, peer, esp.Limits{}); err != nil {
				t.Fatal(err)
			}
			crew := NewCrew(3)
			defer crew.Stop()
			g.crew.Store(crew)
			var in []ike.ESPPacket
			for _, p := range sent {
				in = append(in, ike.ESPPacket{Data: append(make([]byte, 0, len(p)+64), p...)})
			}
			g.HandleESP(in)
			gdev.mu.Lock()
			got := gdev.writes
			gdev.mu.Unlock()
			if len(got) != len(batch) {
				t.Fatalf("gateway wrote %d packets of %d", len(got), len(batch))
			}
			for i := range batch {
				if !bytes.Equal(got[i], batch[i]) {
					t.Fatalf("packet %d differs after the round trip", i)
				}
			}
			if st := g.Stats(); st.PacketsIn != 100 || st.DropAuth+st.DropReplay+st.DropMalformed != 0 {
				t.Errorf("gateway stats %+v", st)
			}
		})
	}
}

// BenchmarkHandleESPBatch seals a batch of 64 packets of 1400 bytes with
// the client's SA and opens them through the gateway engine's HandleESP
// (TUN write included, to a recording-free device), with and without a
// crew of workers. Reports allocations per batch.
func BenchmarkHandleESPBatch(b *testing.B) {
	for _, workers := range []int{0, 1} {
		b.Run(map[int]string{0: "serial", 1: "crew1"}[workers], func(b *testing.B) {
			cSA, gSA := pairOfSAs(b, ike.Suite{Encr: ikecrypto.EncrAESGCM16, KeyBits: 256})
			now := time.Now()
			s := esp.Suite{Encr: cSA.Suite.Encr, KeyBits: cSA.Suite.KeyBits}
			out, err := esp.NewOutbound(cSA.SPIOut, s, cSA.EncrOut, cSA.IntegOut, esp.Limits{}, now)
			if err != nil {
				b.Fatal(err)
			}
			g := New(&discardDev{}, nil, nil)
			if err := g.Install(gSA, netip.MustParseAddrPort("192.0.2.1:4500"), esp.Limits{}); err != nil {
				b.Fatal(err)
			}
			crew := NewCrew(workers)
			defer crew.Stop()
			g.crew.Store(crew)
			const n = 64
			ping := tuntest.Ping(netip.MustParseAddr("10.200.0.1"), netip.MustParseAddr("10.100.0.1"))
			ping = append(ping, make([]byte, 1400-len(ping))...)
			binary.BigEndian.PutUint16(ping[2:], 1400)
			bufs := make([][]byte, n)
			for i := range bufs {
				bufs[i] = make([]byte, ReadOffset+1400+Tailroom)
			}
			pkts := make([]ike.ESPPacket, n)
			b.SetBytes(n * 1400)
			b.ReportAllocs()
			for b.Loop() {
				for i := range bufs {
					copy(bufs[i][ReadOffset:], ping)
					p, err := out.Seal(bufs[i], ReadOffset, len(ping), 4)
					if err != nil {
						b.Fatal(err)
					}
					pkts[i].Data = p
				}
				g.HandleESP(pkts)
			}
			if st := g.Stats(); st.PacketsIn == 0 || st.DropAuth+st.DropReplay+st.DropMalformed != 0 {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}

// discardDev is a TUN device that drops what is written.
type discardDev struct{ batchDev }

func (*discardDev) Write(bufs [][]byte, off int) (int, error) { return len(bufs), nil }
