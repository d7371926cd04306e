package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"log/slog"

	"github.com/qcdvpn/qcdvpn/gateway"
	"github.com/qcdvpn/qcdvpn/sdk"
)

const (
	testGwID     = "gw.control.test"
	testClientID = "client.control.test"
	testPSK      = "0x6332652d7073b2d6b579a0cf3c4d1e8f"
)

func testLog() *slog.Logger {
	if os.Getenv("QCDVPN_CONTROL_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startGateway runs an in-process netstack gateway on a random loopback
// port until the test ends.
func startGateway(t *testing.T) netip.AddrPort {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	cfg := &gateway.Config{
		Listen:       []string{freeLoopback(t).String()},
		ID:           testGwID,
		Auth:         gateway.AuthConfig{Method: "psk", PSK: testPSK},
		Pool:         []string{"10.100.0.0/24"},
		LocalTS:      []string{"10.200.0.0/24"},
		IKEProposals: []string{"aes256gcm16-prfsha256-x25519"},
		ESPProposals: []string{"aes256gcm16"},
		Tickets: gateway.TicketsConfig{
			Keys:     []gateway.TicketKeyEntry{{ID: "k1", KeyHex: hex.EncodeToString(key)}},
			Lifetime: "1h",
		},
		Data:     "netstack",
		StateDir: t.TempDir(),
	}
	listening := make(chan struct{})
	var once sync.Once
	g, err := gateway.New(cfg, gateway.Options{Logger: testLog(), OnEvent: func(e gateway.Event) {
		if e.Type == "listening" {
			once.Do(func() { close(listening) })
		}
	}})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	select {
	case <-listening:
	case <-time.After(5 * time.Second):
		t.Fatal("gateway: no listening event")
	}
	t.Cleanup(func() { cancel(); <-done })
	return g.Addrs()[0]
}

// freeLoopback picks a random 127.X.Y.Z:4500 that is free now.
func freeLoopback(t *testing.T) netip.AddrPort {
	t.Helper()
	for range 100 {
		var b [3]byte
		rand.Read(b[:])
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 16 + b[0]%224, b[1], 1 + b[2]%250}), 4500)
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(a))
		if err != nil {
			continue
		}
		c.Close()
		return a
	}
	t.Fatal("no free loopback address")
	return netip.AddrPort{}
}

func testProfile(t *testing.T, gws ...string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"name": "control-test", "gateways": gws,
		"remote_id": testGwID, "local_id": testClientID,
		"auth":          map[string]any{"method": "psk", "psk": testPSK},
		"ike_proposals": []string{"aes256gcm16-prfsha256-x25519"}, "esp_proposals": []string{"aes256gcm16"},
		"traffic":   map[string]any{"include": []string{"10.200.0.0/24"}},
		"timers":    map[string]any{"retransmit_timeout": "200ms", "retransmit_tries": 2},
		"state_dir": t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEngineOverSocket drives a real engine (sdk client, netstack data
// plane) against an in-process gateway through the control socket.
func TestEngineOverSocket(t *testing.T) {
	gw := startGateway(t)
	var mu sync.Mutex
	var seen []sdk.EventType
	e := NewEngine(EngineOptions{Options: sdk.Options{Logger: testLog(), DataPlane: sdk.DataPlaneNetstack,
		OnEvent: func(ev sdk.Event) { mu.Lock(); seen = append(seen, ev.Type); mu.Unlock() }}})
	if st := e.Status(); st.State != StateIdle {
		t.Errorf("new engine: %q, want idle", st.State)
	}
	s := serve(t, e, ServerOptions{Log: testLog()})
	c := dialT(t, s.Path())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := c.Connect(ctx, nil); err == nil || err.Error() != "no profile to connect with: send one" {
		t.Errorf("Connect without a profile: %v", err)
	}
	evs, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The first gateway answers nothing: the engine fails over to the second.
	dead := "127.0.0.1:9"
	if err := c.Connect(ctx, testProfile(t, dead, gw.String())); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateConnected || st.Gateway != gw.Addr().String() || st.Profile != "control-test" || !st.QCD || !st.Resumption {
		t.Errorf("status after connect: %+v", st)
	}
	if a, err := netip.ParseAddr(st.VirtualIP); err != nil || !netip.MustParsePrefix("10.100.0.0/24").Contains(a) {
		t.Errorf("virtual IP %q not from the pool", st.VirtualIP)
	}
	if st.IKESuite == "" || st.ESPSuite == "" || len(st.IKESPIi) != 16 || st.ConnectedSince.IsZero() {
		t.Errorf("status lacks SA details: %+v", st)
	}
	if len(st.Gateways) != 2 || st.Gateways[0].Active || !st.Gateways[1].Active {
		t.Errorf("gateways: %+v, want the second active", st.Gateways)
	}
	// Wait for the stream to have delivered the connect.
	waitEvent(t, evs, sdk.EventConnected)

	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Status(ctx); st.State != StateDisconnected || e.Client() != nil {
		t.Errorf("after disconnect: %q", st.State)
	}
	ev := waitEvent(t, evs, sdk.EventDisconnected)
	if ev.Reason != "closed by user" {
		t.Errorf("disconnected event reason %q", ev.Reason)
	}
	// Reconnect with the same profile: resumed with the ticket? No: the
	// user's Close forgets it; a full exchange, and connected again.
	if err := c.Connect(ctx, nil); err != nil {
		t.Fatalf("reconnect: %v", err)
	}
	if st, _ := c.Status(ctx); st.State != StateConnected {
		t.Errorf("after reconnect: %q", st.State)
	}
	// A broken profile is refused with the sdk's error.
	if err := c.Connect(ctx, []byte(`{"name":"x","gatways":[]}`)); err == nil || err.Error() != `profile: unknown field "gatways" (did you mean "gateways"?)` {
		t.Errorf("bad profile: %v", err)
	}
	if err := c.Down(ctx); err != nil {
		t.Logf("Down: %v", err) // the server closes when the test does
	}
	select {
	case <-e.Done():
	case <-ctx.Done():
		t.Fatal("engine not done after down")
	}
	for range evs { // the stream ends with the engine
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 || seen[0] != sdk.EventConnecting {
		t.Errorf("OnEvent saw %v", seen)
	}
}

func waitEvent(t *testing.T, evs <-chan sdk.Event, typ sdk.EventType) sdk.Event {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case e, ok := <-evs:
			if !ok {
				t.Fatalf("stream closed before %s", typ)
			}
			if e.Type == typ {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event", typ)
		}
	}
}
