package interop

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// soakFor is how long the rekey soak runs: 3 minutes as the issue asks,
// shorter with QCDVPN_SHORT=1 while developing.
func soakFor() time.Duration {
	if os.Getenv("QCDVPN_SHORT") != "" {
		return 40 * time.Second
	}
	return 3 * time.Minute
}

// TestInteropRekeySoak: strongSwan rekeys IKE every 20 s and the Child SA
// every 10 s, the client rekeys on its own lifetimes too, and a ping at
// 20/s through the tunnel loses nothing.
func TestInteropRekeySoak(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	const prop = "aes256gcm16-prfsha256-x25519"
	e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: prop,
		connExtras:  "rekey_time = 20s\nover_time = 5s\nrand_time = 2s",
		childExtras: "rekey_time = 10s\nlife_time = 15s\nrand_time = 2s"})
	p := profileFor(t, e, nil, prop)
	p["timers"] = map[string]any{"ike_lifetime": "27s", "child_lifetime": "13s"}
	c := startClient(t, e.pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdr0")
	c.waitEvent("connected", 20*time.Second)
	behind := e.pair.ProtectedPrefix().Addr().Next()
	pg := startPinger(t, e.pair.Client, behind, 50*time.Millisecond)

	var ikeRekeys, childRekeys int
	deadline := time.After(soakFor())
loop:
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatalf("client exited during the soak: %v\n%s", c.err, c.Stderr())
			}
			switch ev["type"] {
			case "rekeyed":
				if ev["reason"] == "ike" {
					ikeRekeys++
				} else {
					childRekeys++
				}
			case "disconnected", "liveness_failed":
				t.Fatalf("tunnel dropped during rekeys: %v", ev)
			}
		case <-deadline:
			break loop
		}
	}
	cutoff := time.Now().Add(-time.Second)
	pg.halt()
	sent, answered := pg.counts()
	lost := pg.lost(cutoff)
	t.Logf("%s: %d pings, %d answered, %d lost; client saw %d IKE and %d child rekeys", soakFor(), sent, answered, len(lost), ikeRekeys, childRekeys)
	if len(lost) > 0 {
		t.Errorf("%d pings lost (seq %v)", len(lost), lost[:min(len(lost), 20)])
	}
	secs := soakFor().Seconds()
	if float64(childRekeys) < secs/15 || float64(ikeRekeys) < secs/30 {
		t.Errorf("too few rekeys for %s: %d child, %d IKE", soakFor(), childRekeys, ikeRekeys)
	}
	log := e.swan.Log()
	if n := strings.Count(log, "generating CREATE_CHILD_SA"); float64(n) < secs/15 {
		t.Errorf("strongSwan's log shows %d CREATE_CHILD_SA exchanges", n)
	}
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestInteropGatewayDelete: when strongSwan deletes the IKE SA, the client
// reconnects within 1 s.
func TestInteropGatewayDelete(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	const prop = "aes256gcm16-prfsha256-x25519"
	e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: prop})
	c := startClient(t, e.pair.Client, writeProfile(t, e.dir, profileFor(t, e, nil, prop)), "--tun", "qcdd0")
	first := c.waitEvent("connected", 20*time.Second)
	start := time.Now()
	if out, err := e.swan.Swanctl(context.Background(), "--terminate", "--ike", "rw"); err != nil {
		t.Fatalf("terminate: %v\n%s", err, out)
	}
	again := c.waitEvent("connected", 5*time.Second)
	took := time.Since(start)
	t.Logf("reconnected %s after swanctl --terminate", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("reconnect took %s, want under 1 s", took)
	}
	if again["ike_spi_i"] == first["ike_spi_i"] {
		t.Error("reconnect reused the old IKE SA")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.pair.Client.Ping(ctx, e.pair.ProtectedPrefix().Addr().Next()); err != nil {
		t.Errorf("no traffic after reconnect: %v", err)
	}
	c.stop()
}

// TestInteropGatewayKilled: charon is killed with SIGKILL while a ping
// runs; the client's fast liveness check notices within 10 s of the first
// unanswered packet, and once strongSwan is back the client reconnects by
// itself.
func TestInteropGatewayKilled(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	const prop = "aes256gcm16-prfsha256-x25519"
	o := gwOpts{auth: "psk", ikeProposal: prop}
	e, _ := gateway(t, o)
	c := startClient(t, e.pair.Client, writeProfile(t, e.dir, profileFor(t, e, nil, prop)), "--tun", "qcdk0")
	c.waitEvent("connected", 20*time.Second)
	behind := e.pair.ProtectedPrefix().Addr().Next()
	pg := startPinger(t, e.pair.Client, behind, 100*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	e.swan.Kill()
	killed := time.Now()
	ev := c.waitEvent("liveness_failed", 15*time.Second)
	detect := time.Since(killed)
	t.Logf("liveness_failed %s after kill -9: %v", detect.Round(time.Millisecond), ev["reason"])
	if detect > 10*time.Second {
		t.Errorf("detection took %s, want within 10 s", detect)
	}
	// strongSwan comes back (same namespace, same config).
	restarted := restartGateway(t, e, o)
	c.waitEvent("connected", 30*time.Second)
	time.Sleep(time.Second)
	if at, ok := pg.firstAnsweredAfter(restarted); !ok {
		t.Errorf("no ping answered after the restart")
	} else {
		t.Logf("traffic back %s after the restart", at.Sub(restarted).Round(time.Millisecond))
	}
	c.stop()
}

// restartGateway starts strongSwan again in e's gateway namespace with
// the configuration gateway() used.
func restartGateway(t *testing.T, e *env, o gwOpts) time.Time {
	t.Helper()
	e.swan = testbed.StartStrongSwan(t, e.pair.Gateway, e.swanCfg)
	return time.Now()
}
