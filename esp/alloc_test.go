package esp

import (
	"testing"
	"time"
)

// TestZeroAllocs: Seal and Open allocate nothing once the scratch pool is
// warm. Skipped under the race detector, whose sync.Pool drops items at
// random on purpose.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool is lossy under -race")
	}
	for _, s := range allSuites() {
		o, in := newPair(t, s, Limits{Bytes: 1 << 40, Packets: 1 << 30, Lifetime: 100 * 365 * 24 * time.Hour})
		buf := make([]byte, o.Headroom()+benchSize+o.Tailroom())
		if a := testing.AllocsPerRun(200, func() {
			if _, err := o.Seal(buf, o.Headroom(), benchSize, 4); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%v: Seal allocates %.1f per packet", s, a)
		}
		if a := testing.AllocsPerRun(200, func() {
			seq, err := o.Reserve()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := o.SealSeq(buf, o.Headroom(), benchSize, 4, seq); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%v: Reserve+SealSeq allocates %.1f per packet", s, a)
		}
		pkts := make([][]byte, 300)
		for k := range pkts {
			pkts[k] = seal(t, o, payload(benchSize, 1), 4)
		}
		k := 0
		if a := testing.AllocsPerRun(200, func() {
			if _, _, err := in.Open(pkts[k]); err != nil {
				t.Fatal(err)
			}
			k++
		}); a != 0 {
			t.Errorf("%v: Open allocates %.1f per packet", s, a)
		}
	}
}
