package interop

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// TestNetThroughput is `make bench-net`: iperf3 TCP client->gateway through
// qcdvpn<->strongSwan and through strongSwan<->strongSwan (both ends
// kernel-libipsec), one after the other in the same run. The gateway side
// is the same strongSwan configuration in both, so the ratio measures our
// client. It runs only with QCDVPN_BENCH_NET=1.
func TestNetThroughput(t *testing.T) {
	if os.Getenv("QCDVPN_BENCH_NET") == "" {
		t.Skip("SKIP: set QCDVPN_BENCH_NET=1 (make bench-net) to measure throughput")
	}
	requireEnv(t)
	secs := 5
	const ikeProp, espProp = "aes256gcm16-prfsha256-x25519", "aes256gcm16"

	// An optimised build, not the race-detector one the other tests use.
	bin := filepath.Join(t.TempDir(), "qcdvpn")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/qcdvpn/qcdvpn/cmd/qcdvpn").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	// qcdvpn client.
	var ours float64
	t.Run("qcdvpn-strongswan", func(t *testing.T) {
		e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: ikeProp, espProposal: espProp})
		p := profileFor(t, e, nil, ikeProp)
		p["esp_proposals"] = []string{espProp}
		saved := qcdvpnBin
		qcdvpnBin = bin
		c := startClient(t, e.pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdb0", "--log-level", "warn")
		qcdvpnBin = saved
		c.waitEvent("connected", 20*time.Second)
		ours = iperf(t, e, e.pair.ProtectedPrefix().Addr().Next(), secs, false)
		c.stop()
	})

	// strongSwan client.
	var theirs float64
	t.Run("strongswan-strongswan", func(t *testing.T) {
		e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: ikeProp, espProposal: espProp})
		sc := testbed.SwanClient{
			Remote: e.pair.GatewayIP, Proposals: ikeProp, ESPProposals: espProp,
			LocalID: "client.example", RemoteID: "gw.example", PSK: testPSK,
			RemoteTS: []netip.Prefix{e.pair.ProtectedPrefix()},
		}
		cl := testbed.StartStrongSwan(t, e.pair.Client, sc.Config())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := cl.Up(ctx, sc); err != nil {
			t.Fatalf("strongSwan client: %v", err)
		}
		theirs = iperf(t, e, e.pair.ProtectedPrefix().Addr().Next(), secs, false)
	})
	if ours == 0 || theirs == 0 {
		t.Fatal("a measurement failed")
	}
	ratio := ours / theirs
	t.Logf("iperf3 TCP client->gateway, %d s, ESP %s:", secs, espProp)
	t.Logf("  qcdvpn client    -> strongSwan: %8.1f Mbit/s", ours/1e6)
	t.Logf("  strongSwan client-> strongSwan: %8.1f Mbit/s", theirs/1e6)
	t.Logf("  ratio qcdvpn/strongSwan: %.2f", ratio)
	if ratio < 1.0 {
		t.Errorf("qcdvpn client is slower than strongSwan's: ratio %.2f < 1.0", ratio)
	}
}
