package mobile

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

// profileWithTimers is profileJSON(gw) with the given timers object.
func profileWithTimers(t testing.TB, gw netip.AddrPort, timers map[string]any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(profileJSON(t, gw)), &m); err != nil {
		t.Fatal(err)
	}
	m["timers"] = timers
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMobileKeepaliveDefault(t *testing.T) {
	gw := netip.MustParseAddrPort("192.0.2.1:4500")
	for _, c := range []struct {
		name   string
		timers map[string]any
		want   time.Duration
	}{
		{"no timers", nil, 45 * time.Second},
		{"timers without keepalive", map[string]any{"liveness": "30s"}, 45 * time.Second},
		{"empty keepalive", map[string]any{"keepalive": ""}, 45 * time.Second},
		{"keepalive set", map[string]any{"keepalive": "10s"}, 10 * time.Second},
		{"keepalive off", map[string]any{"keepalive": "0s"}, 0},
	} {
		doc := profileJSON(t, gw)
		if c.timers != nil {
			doc = profileWithTimers(t, gw, c.timers)
		}
		tn, err := NewTunnel(doc, TUNNetstack, newFakePlatform(t))
		if err != nil {
			t.Fatalf("%s: NewTunnel: %v", c.name, err)
		}
		if got := tn.profile.Keepalive(); got != c.want {
			t.Errorf("%s: keepalive %s, want %s", c.name, got, c.want)
		}
		if got := tn.profile.Liveness(); got != 30*time.Second {
			t.Errorf("%s: liveness %s, want the profile's 30s", c.name, got)
		}
		tn.Stop()
	}
	// A bad keepalive is still the profile's error, naming the field.
	_, err := NewTunnel(profileWithTimers(t, gw, map[string]any{"keepalive": "1ms"}), TUNNetstack, newFakePlatform(t))
	if err == nil {
		t.Fatal("keepalive 1ms accepted")
	}
	t.Logf("keepalive 1ms: %v", err)
}

// TestIdleWakeups counts the timer wake-ups of a connected tunnel that
// carries no traffic for 60 s, with the mobile keepalive default (45 s)
// and a 30 s liveness interval: one keepalive and two liveness checks,
// whatever the machine's load, since nothing polls.
func TestIdleWakeups(t *testing.T) {
	if testing.Short() {
		t.Skip("60 s; skipped with -short")
	}
	const (
		window   = 60 * time.Second
		liveness = 30 * time.Second
	)
	gw := startGateway(t)
	p := newFakePlatform(t)
	tn, err := NewTunnel(profileWithTimers(t, gw, map[string]any{"liveness": liveness.String()}), TUNNetstack, p)
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()
	keepalive := tn.profile.Keepalive()
	if keepalive != 45*time.Second {
		t.Fatalf("keepalive %s, want the mobile default 45s", keepalive)
	}
	if err := tn.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	p.waitEvent(t, "connected", 5*time.Second)
	s := tn.client.Session()
	w0, st0 := tn.client.Wakeups(), tn.client.Stats()
	time.Sleep(window)
	w1, st1 := tn.client.Wakeups(), tn.client.Stats()
	if tn.client.Session() != s {
		t.Fatalf("the IKE SA changed while idle; events: %s", p.types())
	}
	ka, sess := w1.Keepalives-w0.Keepalives, w1.Session-w0.Session
	t.Logf("idle %s (keepalive %s, liveness %s): %d wake-ups: %d keepalives, %d of the IKE session; ESP packets out %d, in %d",
		window, keepalive, liveness, ka+sess, ka, sess, st1.PacketsOut-st0.PacketsOut, st1.PacketsIn-st0.PacketsIn)
	// One of slack each: a timer armed at connect may fire just inside
	// the window's end.
	maxKA := uint64(window/keepalive) + 1
	maxSess := uint64(window/liveness) + 1
	if ka < 1 || ka > maxKA {
		t.Errorf("%d keepalive wake-ups in %s, want 1..%d", ka, window, maxKA)
	}
	if sess < 1 || sess > maxSess {
		t.Errorf("%d IKE session wake-ups in %s, want 1..%d (liveness checks only)", sess, window, maxSess)
	}
	if st1.PacketsOut != st0.PacketsOut {
		t.Errorf("the idle tunnel sent %d ESP packets", st1.PacketsOut-st0.PacketsOut)
	}

	// NetworkChanged checks liveness at once, without a timer.
	seen := s.LastSeen()
	tn.NetworkChanged()
	deadline := time.Now().Add(3 * time.Second)
	for !s.LastSeen().After(seen) {
		if time.Now().After(deadline) {
			t.Fatal("no liveness answer within 3 s of NetworkChanged")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if w := tn.client.Wakeups(); w.Keepalives != w1.Keepalives {
		t.Errorf("NetworkChanged fired the keepalive timer: %+v", w)
	}
	if err := echo(t, tn, []byte("after an idle minute")); err != nil {
		t.Fatalf("echo: %v", err)
	}
}
