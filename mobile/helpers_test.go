package mobile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/gateway"
)

const (
	gwID     = "gw.mobile.test"
	clientID = "client.mobile.test"
	pskHex   = "0x6d6f62696c652d7073b2d6b579a0cf3c"
)

var echoTarget = netip.MustParseAddrPort("10.200.0.1:7")

// loopbackAddr returns a random 127.x.y.1 that is free at port 4500.
func loopbackAddr(t testing.TB) netip.Addr {
	t.Helper()
	for range 100 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		a := netip.AddrFrom4([4]byte{127, 16 + b[0]%224, b[1], 1})
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 4500)))
		if err != nil {
			continue
		}
		c.Close()
		return a
	}
	t.Fatal("no free loopback address")
	return netip.Addr{}
}

func testLogger() *slog.Logger {
	if os.Getenv("QCDVPN_MOBILE_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startGateway runs an in-process netstack gateway (echo on
// 10.200.0.1:7) until the test ends.
func startGateway(t testing.TB) netip.AddrPort {
	t.Helper()
	addr := loopbackAddr(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := &gateway.Config{
		Listen:       []string{netip.AddrPortFrom(addr, 4500).String()},
		ID:           gwID,
		Auth:         gateway.AuthConfig{Method: "psk", PSK: pskHex},
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
	g, err := gateway.New(cfg, gateway.Options{Logger: testLogger(), OnEvent: func(e gateway.Event) {
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
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("gateway did not stop")
		}
	})
	return g.Addrs()[0]
}

// profileJSON is a client profile for gw.
func profileJSON(t testing.TB, gw netip.AddrPort) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"name": "mobile-test", "gateways": []string{gw.String()},
		"remote_id": gwID, "local_id": clientID,
		"auth":          map[string]any{"method": "psk", "psk": pskHex},
		"ike_proposals": []string{"aes256gcm16-prfsha256-x25519"}, "esp_proposals": []string{"aes256gcm16"},
		"traffic": map[string]any{"include": []string{"10.200.0.0/24"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fakePlatform records what the tunnel asks of the app.
type fakePlatform struct {
	dir     string
	key     []byte
	refuse  bool
	mu      sync.Mutex
	events  []map[string]any
	raw     []string
	logs    []string
	protect []int32
	kick    chan struct{}
}

func newFakePlatform(t testing.TB) *fakePlatform {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &fakePlatform{dir: t.TempDir(), key: key, kick: make(chan struct{}, 1)}
}

func (p *fakePlatform) Protect(fd int32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.protect = append(p.protect, fd)
	return !p.refuse
}

func (p *fakePlatform) OnEvent(s string) {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m = map[string]any{"type": "unparsable", "raw": s}
	}
	p.mu.Lock()
	p.events = append(p.events, m)
	p.raw = append(p.raw, s)
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *fakePlatform) Log(level int32, msg string) {
	p.mu.Lock()
	p.logs = append(p.logs, msg)
	p.mu.Unlock()
	if os.Getenv("QCDVPN_MOBILE_LOG") != "" {
		println("platform log", level, msg)
	}
}

func (p *fakePlatform) StoreKey() []byte { return p.key }
func (p *fakePlatform) StateDir() string { return p.dir }

// waitEvent waits for an event of type typ and returns it.
func (p *fakePlatform) waitEvent(t testing.TB, typ string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		for _, e := range p.events {
			if e["type"] == typ {
				p.mu.Unlock()
				return e
			}
		}
		p.mu.Unlock()
		select {
		case <-p.kick:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %s event within %s; events: %s", typ, timeout, p.types())
			return nil
		}
	}
}

func (p *fakePlatform) types() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s []string
	for _, e := range p.events {
		s = append(s, e["type"].(string))
	}
	return strings.Join(s, " ")
}

func (p *fakePlatform) protected() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int32(nil), p.protect...)
}

// echo sends one UDP datagram to the gateway's echo service through the
// tunnel's network stack and waits for it to come back.
func echo(t testing.TB, tn *Tunnel, payload []byte) error {
	t.Helper()
	n := tn.client.Net()
	if n == nil {
		t.Fatal("no netstack")
	}
	c, err := n.DialUDPAddrPort(netip.AddrPort{}, echoTarget)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, len(payload)+16)
	for range 3 {
		if _, err := c.Write(payload); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		m, err := c.Read(buf)
		if err == nil && string(buf[:m]) == string(payload) {
			return nil
		}
	}
	return net.ErrClosed
}

func netipAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
