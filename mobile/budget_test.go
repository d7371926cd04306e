package mobile

import (
	"runtime"
	"testing"
	"time"
)

// heapBudget is the live Go heap a connected tunnel may hold: iOS gives a
// packet tunnel extension 50 MiB in all, of which about 15 MiB is not Go
// heap (code, stacks, the runtime), and the rest must absorb GC headroom
// under MemoryLimit.
const heapBudget = 8 << 20

// liveHeap is HeapInuse after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestHeapBudget measures the live heap a tunnel adds to its process,
// connected and idle, then under steady UDP traffic. The gateway runs
// in-process, so the heap with the gateway up and one tunnel come and
// gone is the baseline taken away; what the gateway allocates for this
// one client counts against the client, so the figure is an upper bound.
// The tunnel runs over netstack, which a mobile app (with its OS's TUN)
// does not carry.
func TestHeapBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	gw := startGateway(t)
	// A first tunnel, up and down, so that what is allocated once per
	// process (the gateway's buffers, gVisor's and the crypto packages'
	// tables) is in the baseline.
	warm, err := NewTunnel(profileJSON(t, gw), -1, newFakePlatform(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := warm.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := echo(t, warm, []byte("warm up")); err != nil {
		t.Fatalf("echo: %v", err)
	}
	warm.Stop()
	base := liveHeap()

	p := newFakePlatform(t)
	tn, err := NewTunnel(profileJSON(t, gw), -1, p)
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()
	if err := tn.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := echo(t, tn, []byte("warm up")); err != nil {
		t.Fatalf("echo: %v", err)
	}
	idle := liveHeap()

	// Traffic: several flows of 1200-byte datagrams, each waiting for its
	// echo, for two seconds.
	var loaded uint64
	echoed := loadTunnel(t, tn, 4, 2*time.Second, func() { loaded = liveHeap() })
	if echoed < 100 {
		t.Fatalf("only %d datagrams echoed under load", echoed)
	}

	mib := func(v uint64) float64 { return float64(v) / (1 << 20) }
	delta := func(v uint64) uint64 {
		if v < base {
			return 0
		}
		return v - base
	}
	t.Logf("live heap: baseline %.2f MiB; tunnel adds %.2f MiB idle, %.2f MiB under load (%d echoes)",
		mib(base), mib(delta(idle)), mib(delta(loaded)), echoed)
	for _, m := range []struct {
		name string
		v    uint64
	}{{"idle", delta(idle)}, {"under load", delta(loaded)}} {
		if m.v > heapBudget {
			t.Errorf("live heap %s: %.2f MiB, budget %.0f MiB", m.name, mib(m.v), mib(heapBudget))
		}
	}
}
