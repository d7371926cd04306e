package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLossRules(t *testing.T) {
	body, err := lossRules(30, []uint16{4500, 500, 4500})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"udp dport { 500, 4500 } numgen random mod 100 < 30 drop",
		"udp sport { 500, 4500 } udp dport != { 500, 4500 } numgen random mod 100 < 30 drop",
		"hook input", "hook output", "hook forward",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("rules lack %q:\n%s", want, body)
		}
	}
	if body, err := lossRules(100, nil); err != nil || !strings.Contains(body, "meta l4proto udp drop") {
		t.Errorf("percent 100: %q %v", body, err)
	}
	if body, err := lossRules(0, nil); err != nil || body != "" {
		t.Errorf("percent 0: %q %v", body, err)
	}
	for _, bad := range []struct {
		p     int
		ports []uint16
	}{{-1, nil}, {101, nil}, {10, []uint16{0}}} {
		if _, err := lossRules(bad.p, bad.ports); err == nil {
			t.Errorf("lossRules(%d, %v) accepted", bad.p, bad.ports)
		}
	}
}

func TestSetLoss(t *testing.T) {
	RequireNFTables(t)
	t.Parallel()
	p := NewPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Resolve ARP first: a burst to an unresolved neighbour could overflow
	// the kernel's queue and look like loss.
	if err := p.Client.Ping(ctx, p.GatewayIP); err != nil {
		t.Fatal(err)
	}
	listen := func(ns *NS, ip netip.Addr) net.PacketConn {
		c, err := ns.ListenPacket("udp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	gwA, gwB := listen(p.Gateway, p.GatewayIP), listen(p.Gateway, p.GatewayIP)
	cl := listen(p.Client, p.ClientIP)
	cl6, gw6 := listen(p.Client, p.ClientIP6), listen(p.Gateway, p.GatewayIP6)

	const n = 400
	SetLoss(t, p.Gateway, 50)
	if got := udpBurst(t, cl, gwA, n); got < n*30/100 || got > n*70/100 {
		t.Errorf("50%% loss: %d of %d packets arrived", got, n)
	} else {
		t.Logf("50%% loss: %d of %d packets arrived", got, n)
	}
	SetLoss(t, p.Gateway, 0)
	if got := udpBurst(t, cl, gwA, n); got != n {
		t.Errorf("loss removed: %d of %d packets arrived", got, n)
	}

	// Port filter: to and from port A, both directions, IPv4 and IPv6.
	portA := uint16(gwA.LocalAddr().(*net.UDPAddr).Port)
	port6 := uint16(gw6.LocalAddr().(*net.UDPAddr).Port)
	SetLoss(t, p.Gateway, 100, portA, port6)
	for _, tc := range []struct {
		name     string
		from, to net.PacketConn
		want     int
	}{
		{"to port A", cl, gwA, 0},
		{"from port A", gwA, cl, 0},
		{"to port B", cl, gwB, 20},
		{"from port B", gwB, cl, 20},
		{"IPv6 to listed port", cl6, gw6, 0},
	} {
		if got := udpBurst(t, tc.from, tc.to, 20); got != tc.want {
			t.Errorf("100%% loss on ports %d,%d: %s: %d of 20 arrived, want %d", portA, port6, tc.name, got, tc.want)
		}
	}
}

// udpBurst sends n tagged packets from one socket to another and returns
// how many distinct ones arrived. It reads concurrently and paces the
// sender a little, so that no socket buffer overflows, and stops once the
// sender is done and the receiver has been idle for a while.
func udpBurst(t *testing.T, from, to net.PacketConn, n int) int {
	t.Helper()
	tag := "burst-" + randomHex(4) + "-"
	sent := make(chan struct{})
	got := make(chan int, 1)
	go func() {
		seen := make(map[string]bool)
		buf := make([]byte, 128)
		finishing := false
		for {
			_ = to.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
			m, _, err := to.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if finishing {
					break
				}
				select {
				case <-sent: // one more idle period for stragglers
					finishing = true
				default:
				}
				continue
			}
			if err != nil {
				break
			}
			if s := string(buf[:m]); strings.HasPrefix(s, tag) {
				seen[s] = true
			}
		}
		got <- len(seen)
	}()
	dst := to.LocalAddr()
	for i := 0; i < n; i++ {
		if _, err := from.WriteTo([]byte(fmt.Sprintf("%s%d", tag, i)), dst); err != nil {
			// EPERM is how the output chain's drop shows up at the sender.
			if !errors.Is(err, os.ErrPermission) {
				t.Errorf("send %d: %v", i, err)
			}
		}
		if i%20 == 19 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	close(sent)
	return <-got
}
