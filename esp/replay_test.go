package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"golang.zx2c4.com/wireguard/replay"
)

func TestReplay(t *testing.T) {
	for _, s := range []Suite{
		{Encr: EncrAESGCM16, KeyBits: 128}, {Encr: EncrAESGCM16, KeyBits: 128, ESN: true},
		{Encr: EncrAESCBC, KeyBits: 128, Integ: IntegHMACSHA256_128, ESN: true},
	} {
		t.Run(s.String(), func(t *testing.T) {
			o, in := newPair(t, s, Limits{})
			const n = windowSize + 200
			pkts := make([][]byte, n+1) // pkts[seq]
			for seq := 1; seq <= n; seq++ {
				pkts[seq] = seal(t, o, payload(20, byte(seq)), 4)
			}
			open := func(seq int) error {
				_, _, err := in.Open(bytes.Clone(pkts[seq]))
				return err
			}
			// Reordered delivery within the window: 10 down to 1.
			for seq := 10; seq >= 1; seq-- {
				if err := open(seq); err != nil {
					t.Fatalf("reordered seq %d: %v", seq, err)
				}
			}
			for seq := 1; seq <= 10; seq++ {
				if err := open(seq); !errors.Is(err, ErrReplay) {
					t.Fatalf("duplicate seq %d: %v, want ErrReplay", seq, err)
				}
			}
			// Jump ahead, leaving a gap, then fill the oldest in-window one.
			if err := open(n); err != nil {
				t.Fatal(err)
			}
			if err := open(n - windowSize); err != nil {
				t.Fatalf("oldest in-window seq: %v", err)
			}
			// Left of the window. With ESN the receiver cannot tell such a
			// number from one 2^32 later: RFC 4303 A2.2 infers the next
			// subspace and the authentication fails (as in Linux), so the
			// error is ErrAuth and the window is not touched.
			wantOld := ErrReplay
			if s.ESN {
				wantOld = ErrAuth
			}
			if err := open(n - windowSize - 1); !errors.Is(err, wantOld) {
				t.Fatalf("just left of the window: %v, want %v", err, wantOld)
			}
			if err := open(11); !errors.Is(err, wantOld) {
				t.Fatalf("far old: %v, want %v", err, wantOld)
			}
			if in.HighestSeq() != n {
				t.Fatalf("window top moved to %d", in.HighestSeq())
			}
			// The replay pre-check runs before the crypto: a replayed
			// sequence number with a forged body is ErrReplay, not ErrAuth.
			forged := bytes.Clone(pkts[n])
			forged[len(forged)-1] ^= 1
			if _, _, err := in.Open(forged); !errors.Is(err, ErrReplay) {
				t.Fatalf("forged replay: %v, want ErrReplay", err)
			}
			wantStats := Stats{Packets: 12, Bytes: 12 * 20, Replayed: 13}
			if s.ESN {
				wantStats.Replayed, wantStats.AuthFailed = 11, 2
			}
			if st := in.Stats(); st != wantStats {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestReplaySeqZero(t *testing.T) {
	for _, esn := range []bool{false, true} {
		s := Suite{Encr: EncrChaCha20Poly1305, ESN: esn}
		o, in := newPair(t, s, Limits{})
		// A packet authenticated with sequence number 0 (which no conforming
		// sender produces) is still refused.
		pkt := sealRaw(t, o, refTrailer(payload(8, 0), 4, 4), 0)
		if _, _, err := in.Open(pkt); !errors.Is(err, ErrReplay) {
			t.Errorf("%v: seq 0: %v, want ErrReplay", s, err)
		}
	}
}

// TestESNWrap crosses the 2^32 boundary with reordering: the receiver must
// infer the high half for packets on both sides of it.
func TestESNWrap(t *testing.T) {
	for _, s := range allSuites() {
		if !s.ESN {
			continue
		}
		t.Run(s.String(), func(t *testing.T) {
			o, in := newPair(t, s, Limits{})
			const start uint64 = 1<<32 - 8
			o.SetSeq(start)
			var pkts [][]byte
			for k := 0; k < 16; k++ {
				pkts = append(pkts, seal(t, o, payload(33, byte(k)), 4))
			}
			if got := binary.BigEndian.Uint32(pkts[8][4:]); got != 0 {
				t.Fatalf("seq field of packet 2^32: %d, want 0 (low half)", got)
			}
			order := []int{0, 1, 2, 9, 3, 4, 8, 5, 6, 10, 7, 15, 11, 12, 14, 13}
			for _, k := range order {
				if _, _, err := in.Open(bytes.Clone(pkts[k])); err != nil {
					t.Fatalf("packet %d (seq %#x): %v", k, start+uint64(k), err)
				}
			}
			if in.HighestSeq() != start+15 {
				t.Fatalf("window top %#x, want %#x", in.HighestSeq(), start+15)
			}
			for _, k := range []int{0, 7, 8, 15} {
				if _, _, err := in.Open(bytes.Clone(pkts[k])); !errors.Is(err, ErrReplay) {
					t.Fatalf("replay of packet %d: %v", k, err)
				}
			}
			// Without ESN the same seq numbers are out of range at once.
			if s.Encr == EncrAESGCM16 {
				ns := s
				ns.ESN = false
				o2, _ := newPair(t, ns, Limits{})
				o2.SetSeq(start + 8)
				if _, err := o2.Seal(make([]byte, 100), o2.Headroom(), 10, 4); !errors.Is(err, ErrSeqOverflow) {
					t.Fatalf("non-ESN seal at 2^32: %v", err)
				}
			}
		})
	}
}

func TestInferSeq(t *testing.T) {
	const w = windowSize
	cases := []struct {
		top  uint64
		seql uint32
		want uint64
	}{
		{0, 1, 1},
		{0, 0xfffffff0, 0xfffffff0}, // nothing below subspace 0
		{100, 50, 50},
		{100, 0xffffff00, 0xffffff00},
		{1 << 32, 0xffffffff, 1<<32 - 1},                             // case B, just below
		{1<<32 + 5, 7, 1<<32 + 7},                                    // case B, ahead
		{1<<32 + 5, 0xfffffff0, 0xfffffff0},                          // case B, previous subspace
		{0xfffffff0, 3, 1<<32 + 3},                                   // case A, wrapped ahead
		{0xfffffff0, 0xffffffff - w, 0xffffffff - w},                 // case A, in window
		{0xfffffff0, 0xfffffff0 - w, 0xfffffff0 - w},                 // case A, bottom of window
		{0xfffffff0, 0xfffffff0 - w - 1, 1<<32 + 0xfffffff0 - w - 1}, // case A, below: next subspace
		{5<<32 + w, 0, 5<<32 + 0},
	}
	for _, c := range cases {
		if got := inferSeq(c.top, c.seql); got != c.want {
			t.Errorf("inferSeq(%#x, %#x) = %#x, want %#x", c.top, c.seql, got, c.want)
		}
	}
}

// TestWindowMatchesWireGuard runs the split check/update window against
// golang.zx2c4.com/wireguard/replay (same RFC 6479 geometry) on random
// counter streams: check+update must accept exactly what ValidateCounter
// accepts.
func TestWindowMatchesWireGuard(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 20; round++ {
		var w window
		var f replay.Filter
		var top uint64 = 1
		for k := 0; k < 20000; k++ {
			var c uint64
			switch rng.IntN(6) {
			case 0: // far jump
				c = top + uint64(rng.IntN(3*windowSize))
			case 1: // near the left edge
				c = top - min(top-1, uint64(windowSize-5+rng.IntN(10)))
			default: // recent
				c = top - min(top-1, uint64(rng.IntN(200))) + uint64(rng.IntN(100))
			}
			if c == 0 {
				c = 1
			}
			want := f.ValidateCounter(c, 1<<63)
			pre := w.check(c)
			got := pre && w.update(c)
			// Without concurrency the lock-free pre-check is exact too.
			if got != want || pre != want {
				t.Fatalf("round %d step %d counter %d (top %d): window %v, wireguard %v", round, k, c, w.top.Load(), got, want)
			}
			top = max(top, c)
		}
	}
}

// TestConcurrent seals from several goroutines on one SA and opens from
// several on the other (run with -race): every packet is accepted exactly
// once, with unique sequence numbers.
func TestConcurrent(t *testing.T) {
	for _, s := range []Suite{{Encr: EncrAESGCM16, KeyBits: 128, ESN: true}, {Encr: EncrAESCBC, KeyBits: 128, Integ: IntegHMACSHA256_128}} {
		o, in := newPair(t, s, Limits{})
		const workers, per = 4, 300
		ch := make(chan []byte, workers*per)
		var wg sync.WaitGroup
		for g := 0; g < workers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 2000)
				for k := 0; k < per; k++ {
					n := 100 + k%50
					copy(buf[o.Headroom():], payload(n, byte(k)))
					pkt, err := o.Seal(buf, o.Headroom(), n, 4)
					if err != nil {
						t.Error(err)
						return
					}
					ch <- bytes.Clone(pkt)
				}
			}()
		}
		wg.Wait()
		close(ch)
		var all [][]byte
		for p := range ch {
			all = append(all, p, bytes.Clone(p)) // each packet twice
		}
		seen := map[uint32]bool{}
		for _, p := range evens(all) {
			seq := binary.BigEndian.Uint32(p[4:])
			if seen[seq] {
				t.Fatalf("%v: sequence number %d used twice", s, seq)
			}
			seen[seq] = true
		}
		work := make(chan []byte, len(all))
		for _, p := range all {
			work <- p
		}
		close(work)
		var mu sync.Mutex
		var ok, replayed int
		for g := 0; g < workers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range work {
					_, _, err := in.Open(p)
					mu.Lock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, ErrReplay):
						replayed++
					default:
						t.Errorf("Open: %v", err)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ok != workers*per || replayed != workers*per {
			t.Fatalf("%v: %d accepted, %d replays; want %d each", s, ok, replayed, workers*per)
		}
	}
}

func evens(ps [][]byte) [][]byte {
	var out [][]byte
	for i := 0; i < len(ps); i += 2 {
		out = append(out, ps[i])
	}
	return out
}
