package interop

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// TestKillSwitch: with all traffic tunnelled (traffic include 0.0.0.0/0)
// and a default route on the underlay, no inner packet leaves the client
// in the clear while it reconnects or fails over: tcpdump on the client's
// underlay interface (outbound, anything but IKE and ESP) sees nothing
// while echo traffic runs through a failover from the primary to the
// backup gateway (another address pool, so the client's TUN gets new
// addresses), back to the primary, and an outage of both.
func TestKillSwitch(t *testing.T) {
	requireEnv(t)
	testbed.RequireNFTables(t)
	t.Parallel()
	nc := testbed.NewNATChain(t)
	n4 := nc.Net.Addr().As4()
	backupIP := netip.AddrFrom4([4]byte{n4[0], n4[1], n4[2], 3})
	if out, err := nc.Gateway.Exec(context.Background(), "ip", "addr", "add", backupIP.String()+"/24", "dev", nc.Outside.BIf); err != nil {
		t.Fatalf("backup address: %v %s", err, out)
	}
	protected := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, n4[2], 0}), 24)
	dir := t.TempDir()
	gw := func(name string, ip netip.Addr, pool string) *soakGateway {
		cfg := map[string]any{
			"listen": []string{ip.String()}, "id": "gw.example",
			"auth": map[string]any{"method": "psk", "psk": testPSK},
			"pool": []string{pool}, "local_ts": []string{protected.String()},
			"data": "netstack", "state_dir": filepath.Join(dir, name),
		}
		return &soakGateway{t: t, ns: nc.Gateway, cfg: writeJSON(t, filepath.Join(dir, name+".json"), cfg), addr: ip}
	}
	primary := gw("primary", nc.GatewayIP, fmt.Sprintf("10.100.%d.0/24", n4[2]))
	backup := gw("backup", backupIP, fmt.Sprintf("10.101.%d.0/24", n4[2]))
	primary.start()
	backup.start()
	profile := map[string]any{
		"name": "killswitch", "remote_id": "gw.example", "local_id": "client.example",
		"gateways": []string{netip.AddrPortFrom(nc.GatewayIP, 4500).String(), netip.AddrPortFrom(backupIP, 4500).String()},
		"auth":     map[string]any{"method": "psk", "psk": testPSK},
		"traffic":  map[string]any{"include": []string{"0.0.0.0/0"}},
		"qcd":      map[string]any{"enabled": true},
		"timers": map[string]any{"retransmit_timeout": "300ms", "retransmit_tries": 3,
			"liveness": "2s", "fast_liveness": "500ms"},
		"state_dir": filepath.Join(dir, "client"),
	}
	c := startQcdvpn(t, nc.Client, "up", "-p", writeJSON(t, filepath.Join(dir, "profile.json"), profile),
		"--tun", "qcdks0", "--events", "json", "--log-level", "debug")
	if ev := c.waitEvent("connected", 20*time.Second); !strings.HasPrefix(fmt.Sprint(ev["gateway"]), nc.GatewayIP.String()) {
		t.Fatalf("connected to %v, want the primary", ev["gateway"])
	}

	pcap := filepath.Join(dir, "leak.pcap")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dump := nc.Client.Command(ctx, "tcpdump", "-i", nc.Inside.AIf, "-Q", "out", "-U", "-n", "-s", "256", "-w", pcap,
		"ip and not (udp port 500 or udp port 4500 or ip proto 50)")
	var dumpErr strings.Builder
	dump.Stderr = &dumpErr
	if err := dump.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	defer func() { _ = dump.Process.Kill() }()
	time.Sleep(time.Second) // tcpdump attaches

	echo := startSeqEcho(t, nc.Client, netip.AddrPortFrom(protected.Addr().Next(), 7), 10*time.Millisecond)
	waitAnswered := func(what string) {
		t.Helper()
		_, a0, _, _, _ := echo.counts()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if _, a, _, _, _ := echo.counts(); a > a0+20 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: echo traffic does not flow", what)
	}
	connectedTo := func(ip netip.Addr, what string) {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for time.Now().Before(deadline) {
			ev := c.waitEvent("connected", time.Until(deadline))
			if strings.HasPrefix(fmt.Sprint(ev["gateway"]), ip.String()) {
				return
			}
		}
		t.Fatalf("%s: not connected to %s", what, ip)
	}
	waitAnswered("through the primary")
	primary.kill() // no QCD answer: liveness finds out, then failover
	connectedTo(backupIP, "failover to the backup")
	waitAnswered("through the backup")
	// The same TUN took the backup's pool address (its routes stayed).
	if out, err := nc.Client.Exec(context.Background(), "ip", "-4", "addr", "show", "dev", "qcdks0"); err != nil ||
		!strings.Contains(string(out), fmt.Sprintf("10.101.%d.", n4[2])) || strings.Contains(string(out), fmt.Sprintf("10.100.%d.", n4[2])) {
		t.Errorf("TUN addresses after the failover (want the backup pool only): %v\n%s", err, out)
	}
	primary.start()
	backup.kill()
	connectedTo(nc.GatewayIP, "back to the primary")
	waitAnswered("through the primary again")
	primary.kill() // both gone for a while: reconnecting with nowhere to go
	time.Sleep(5 * time.Second)
	primary.start()
	connectedTo(nc.GatewayIP, "after the outage of both")
	waitAnswered("after the outage of both")
	time.Sleep(500 * time.Millisecond)

	_ = dump.Process.Signal(syscall.SIGINT)
	_ = dump.Wait()
	raw, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatalf("reading the capture: %v (tcpdump: %s)", err, dumpErr.String())
	}
	leaks, err := pcapRecords(raw)
	if err != nil {
		t.Fatal(err)
	}
	sent, answered, dups, _, _ := echo.counts()
	t.Logf("echo: %d sent, %d answered, %d duplicates; %d packets left the underlay in the clear", sent, answered, dups, len(leaks))
	for i, p := range leaks {
		if i == 10 {
			break
		}
		t.Errorf("leaked: %s", describeIPv4(p))
	}
}

// pcapRecords returns the packets (from the IP header on) of a pcap file
// of linktype Ethernet.
func pcapRecords(b []byte) ([][]byte, error) {
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		return nil, fmt.Errorf("pcap: not a little-endian pcap file (%d bytes)", len(b))
	}
	if lt := binary.LittleEndian.Uint32(b[20:]); lt != 1 {
		return nil, fmt.Errorf("pcap: linktype %d, want Ethernet", lt)
	}
	var out [][]byte
	for off := 24; off+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		rec := b[off+16 : min(off+16+n, len(b))]
		off += 16 + n
		if len(rec) > 14 {
			out = append(out, rec[14:])
		}
	}
	return out, nil
}

func describeIPv4(p []byte) string {
	if len(p) < 20 {
		return fmt.Sprintf("% x", p)
	}
	src, dst := netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
	return fmt.Sprintf("%s -> %s proto %d, %d bytes", src, dst, p[9], len(p))
}
