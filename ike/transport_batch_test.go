package ike

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/qcdvpn/qcdvpn/udpbatch"
)

// espLike returns n fake ESP packets (non-zero SPI, index in the sequence
// field) of size bytes each, the last one last bytes.
func espLike(n, size, last int) [][]byte {
	pkts := make([][]byte, n)
	for i := range pkts {
		l := size
		if i == n-1 {
			l = last
		}
		p := make([]byte, l)
		binary.BigEndian.PutUint32(p, 0x1000)
		binary.BigEndian.PutUint32(p[4:], uint32(i))
		for j := 8; j < l; j++ {
			p[j] = byte(i + j)
		}
		pkts[i] = p
	}
	return pkts
}

// TestSendESPBatchSegmentsAndSplits sends runs of equal-sized ESP packets
// over loopback, which on Linux go out as UDP_SEGMENT sends and, with
// UDP_GRO on the receiver, may come back coalesced: every packet must
// arrive once, whole and in order, in a buffer of its own.
func TestSendESPBatchSegmentsAndSplits(t *testing.T) {
	rx, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	rx.SetNATT(true) // every datagram is ESP unless marked
	t.Logf("receiver GRO %v, sender GSO %v", rx.gro, tx.gso.Load())

	var mu sync.Mutex
	var got [][]byte
	maxPerBatch := 0
	rx.SetESPHandler(func(pkts []ESPPacket) {
		mu.Lock()
		defer mu.Unlock()
		maxPerBatch = max(maxPerBatch, len(pkts))
		for i, p := range pkts {
			got = append(got, append([]byte(nil), p.Data...))
			// A packet's buffer must not run into the next one's.
			if i+1 < len(pkts) && cap(p.Data) > len(p.Data) {
				q := pkts[i+1].Data
				end := p.Data[len(p.Data):cap(p.Data)]
				if len(end) > 0 && len(q) > 0 && &end[0] == &q[0] {
					t.Errorf("packet %d ends where packet %d begins", i, i+1)
				}
			}
		}
	})
	// 3 runs: 150 packets of 1400 bytes (more than one segment limit), a
	// short tail, and single odd sizes.
	var want [][]byte
	want = append(want, espLike(150, 1400, 900)...)
	want = append(want, espLike(3, 100, 61)...)
	want = append(want, espLike(1, 1500, 1500)...)
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.LocalPort()))
	scratch := make([]ipv4.Message, 8)
	for off := 0; off < len(want); off += 40 {
		if err := tx.SendESPBatch(want[off:min(off+40, len(want))], to, scratch); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("received %d packets, sent %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("packet %d: got %d bytes %x..., want %d bytes %x...", i, len(got[i]), got[i][:8], len(want[i]), want[i][:8])
		}
	}
	t.Logf("largest handler batch: %d packets", maxPerBatch)
}

func TestSegmentRun(t *testing.T) {
	mk := func(ls ...int) [][]byte {
		var p [][]byte
		for _, l := range ls {
			p = append(p, make([]byte, l))
		}
		return p
	}
	for _, c := range []struct {
		lens []int
		want int
	}{
		{[]int{100}, 1},
		{[]int{100, 100, 100}, 3},
		{[]int{100, 100, 50, 100}, 3}, // shorter one ends the run
		{[]int{100, 200}, 1},          // longer one starts a new run
		{make([]int, 0), 0},
	} {
		if len(c.lens) == 0 {
			continue
		}
		if got := segmentRun(mk(c.lens...)); got != c.want {
			t.Errorf("segmentRun(%v) = %d, want %d", c.lens, got, c.want)
		}
	}
	many := make([]int, 100)
	for i := range many {
		many[i] = 1400
	}
	if got := segmentRun(mk(many...)); got != udpbatch.MaxGSOBytes/1400 {
		t.Errorf("segmentRun(100×1400) = %d, want %d (bytes limit)", got, udpbatch.MaxGSOBytes/1400)
	}
	for i := range many {
		many[i] = 100
	}
	if got := segmentRun(mk(many...)); got != udpbatch.MaxSegments {
		t.Errorf("segmentRun(100×100) = %d, want %d", got, udpbatch.MaxSegments)
	}
}

// BenchmarkSendESPBatch measures sending a TUN batch worth of 1400-byte
// ESP packets over loopback (UDP_SEGMENT where available).
func BenchmarkSendESPBatch(b *testing.B) {
	rx, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()
	rx.SetNATT(true)
	rx.SetESPHandler(func([]ESPPacket) {})
	tx, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	pkts := espLike(64, 1400, 1400)
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.LocalPort()))
	scratch := make([]ipv4.Message, 64)
	b.SetBytes(64 * 1400)
	b.ReportAllocs()
	for b.Loop() {
		if err := tx.SendESPBatch(pkts, to, scratch); err != nil {
			b.Fatal(err)
		}
	}
}
