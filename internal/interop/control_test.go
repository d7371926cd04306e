package interop

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ctlStatus is the part of `qcdvpn status --json` this test reads.
type ctlStatus struct {
	State     string `json:"state"`
	Gateway   string `json:"gateway"`
	VirtualIP string `json:"virtual_ip"`
	IKESPIi   string `json:"ike_spi_i"`
	Stats     struct {
		PacketsIn  uint64 `json:"packets_in"`
		PacketsOut uint64 `json:"packets_out"`
	} `json:"stats"`
}

// TestInteropStatusDown: `qcdvpn status --json` and `qcdvpn down`, run
// as separate processes, against `qcdvpn up` holding a kernel-TUN tunnel
// to strongSwan: status reports the SA strongSwan has and the traffic
// that went through; down deletes the SA at strongSwan and ends `up`.
func TestInteropStatusDown(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	const prop = "aes256gcm16-prfsha256-x25519"
	e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: prop})
	sock := filepath.Join(t.TempDir(), "qcdvpn", "control.sock")
	c := startClient(t, e.pair.Client, writeProfile(t, e.dir, profileFor(t, e, nil, prop)), "--tun", "qcdc0", "--control", sock)
	ev := c.waitEvent("connected", 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.pair.Client.Ping(ctx, e.pair.ProtectedPrefix().Addr().Next()); err != nil {
		t.Fatalf("ping through the tunnel: %v", err)
	}

	out, err := exec.Command(qcdvpnBin, "status", "--json", "--control", sock).Output()
	if err != nil {
		t.Fatalf("qcdvpn status --json: %v", err)
	}
	var st ctlStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status JSON %q: %v", out, err)
	}
	if st.State != "connected" || st.Gateway != e.pair.GatewayIP.String() || st.IKESPIi != ev["ike_spi_i"] || st.VirtualIP != ev["virtual_ip"] {
		t.Errorf("status %+v, connected event %v", st, ev)
	}
	if _, err := netip.ParseAddr(st.VirtualIP); err != nil {
		t.Errorf("virtual IP %q", st.VirtualIP)
	}
	if st.Stats.PacketsIn == 0 || st.Stats.PacketsOut == 0 {
		t.Errorf("status counts no traffic after a ping: %+v", st.Stats)
	}
	sas, err := e.swan.ListSAs(context.Background())
	if err != nil || len(sas) != 1 {
		t.Fatalf("strongSwan SAs: %v %v", sas, err)
	}

	down := exec.Command(qcdvpnBin, "down", "--control", sock)
	if b, err := down.CombinedOutput(); err != nil {
		t.Fatalf("qcdvpn down: %v: %s", err, b)
	}
	// down returns once up is gone.
	select {
	case <-c.exited:
	case <-time.After(2 * time.Second):
		t.Fatalf("qcdvpn up still running after down returned; stderr:\n%s", c.Stderr())
	}
	if c.err != nil {
		t.Errorf("qcdvpn up exit: %v", c.err)
	}
	waitNoSA(t, e.swan)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket left: %v", err)
	}
	if strings.Contains(c.Stderr(), "DATA RACE") {
		t.Errorf("race: %s", c.Stderr())
	}
}
