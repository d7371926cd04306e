package testbed

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

func TestNATChain(t *testing.T) {
	RequireNFTables(t)
	t.Parallel()
	c := NewNATChain(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Client.Ping(ctx, c.GatewayIP); err != nil {
		t.Fatalf("ping gateway through the NAT: %v", err)
	}
	if got := c.PoolPrefix(); got != (&Pair{Net: c.Net}).PoolPrefix() || !c.PrivateNet.Contains(c.ClientIP) {
		t.Errorf("prefixes: pool %v, private %v, client %v", got, c.PrivateNet, c.ClientIP)
	}

	gw, err := c.Gateway.ListenPacket("udp4", netip.AddrPortFrom(c.GatewayIP, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	cl, err := c.Client.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// Each round: the gateway sees the NAT's address and a port from the
	// current range, and its answer finds the way back to the client.
	ranges := [][2]uint16{{20000, 29999}, {30000, 39999}, {20000, 29999}}
	var prev netip.AddrPort
	for round, r := range ranges {
		if round > 0 {
			c.FlushNAT(t)
		}
		src := udpRoundTrip(t, cl, gw)
		if src.Addr() != c.NATOutsideIP || src.Port() < r[0] || src.Port() > r[1] {
			t.Errorf("round %d: gateway saw %v, want %v with a port in %d-%d", round, src, c.NATOutsideIP, r[0], r[1])
		}
		if src == prev {
			t.Errorf("round %d: mapping %v did not change after FlushNAT", round, src)
		}
		prev = src
	}

	// A packet to the flushed mapping is dropped silently.
	c.FlushNAT(t)
	if _, err := gw.WriteTo([]byte("stale"), net.UDPAddrFromAddrPort(prev)); err != nil {
		t.Fatal(err)
	}
	_ = cl.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, _, err := cl.ReadFrom(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("packet to a flushed mapping reached the client (err %v)", err)
	}

	// Loss on the forwarding NAT: all of it, then none.
	SetLoss(t, c.NAT, 100)
	if n := udpBurst(t, cl, gw, 20); n != 0 {
		t.Errorf("100%% loss on the NAT: %d of 20 packets arrived", n)
	}
	SetLoss(t, c.NAT, 0)
	if n := udpBurst(t, cl, gw, 20); n != 20 {
		t.Errorf("no loss on the NAT: %d of 20 packets arrived", n)
	}
}

// udpRoundTrip sends from cl to gw, answers from gw and returns the source
// gw saw.
func udpRoundTrip(t *testing.T, cl, gw net.PacketConn) netip.AddrPort {
	t.Helper()
	if _, err := cl.WriteTo([]byte("ping"), gw.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = gw.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, from, err := gw.ReadFrom(buf)
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	if _, err := gw.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	_ = cl.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, back, err := cl.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("client: answer %q from %v: %v", buf[:n], back, err)
	}
	if want := gw.LocalAddr().String(); back.String() != want {
		t.Errorf("answer came from %v, want %v", back, want)
	}
	return from.(*net.UDPAddr).AddrPort()
}
