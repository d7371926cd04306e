package esp

import "testing"

// TestSkipReplay: after SkipReplay(top) every number up to top is refused,
// the next ones (in top's block and beyond) are accepted once, and the
// window never moves back.
func TestSkipReplay(t *testing.T) {
	for _, top := range []uint64{4, 63, 64, 127, 1 << 20, 1<<32 + 5} {
		var in Inbound
		for _, s := range []uint64{1, 2, 3} {
			in.win.update(s)
		}
		in.SkipReplay(top)
		if got := in.HighestSeq(); got != top {
			t.Fatalf("top %d: HighestSeq %d", top, got)
		}
		for _, s := range []uint64{top, top - min(top, 1), top - min(top, 63), top - min(top, 500)} {
			if s > 0 && in.win.check(s) {
				t.Errorf("top %d: %d accepted after the skip", top, s)
			}
		}
		for _, s := range []uint64{top + 1, top + 2, top + 64, top + 200} {
			if !in.win.check(s) || !in.win.update(s) {
				t.Errorf("top %d: %d refused", top, s)
			}
			if in.win.update(s) {
				t.Errorf("top %d: %d accepted twice", top, s)
			}
		}
		in.SkipReplay(1)
		if in.HighestSeq() != top+200 {
			t.Errorf("top %d: SkipReplay moved the window back", top)
		}
	}
}
