package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the demo re-execute this test binary as `qcdvpn gateway`:
// the gateways are real processes, so kill -9 is a real crash.
func TestMain(m *testing.M) {
	if os.Getenv("QCDVPN_AS_CLI") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func demo(t *testing.T, o demoOptions) *demoResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if o.Rate == 0 {
		o.Rate = 50
	}
	if o.Steady == 0 {
		o.Steady = 1500 * time.Millisecond
	}
	if o.After == 0 {
		o.After = 7 * time.Second
	}
	res, err := runDemo(ctx, o)
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	return res
}

// TestDemoQCDRestart is the product's headline: the primary is killed and
// comes back without state; its QCD token tells the client at once, and
// the client resumes on the backup with a ticket. Measured against the
// same drill with QCD off (liveness only), in the same run.
func TestDemoQCDRestart(t *testing.T) {
	// A slower liveness check than the default, so that even when the
	// loaded CI machine takes seconds to restart the gateway, liveness
	// cannot end the SA before the restarted gateway is there to answer.
	on := demo(t, demoOptions{Restart: true, QCD: true, FastLiveness: "2s", After: 11 * time.Second})
	off := demo(t, demoOptions{Restart: true, QCD: false, FastLiveness: "2s", After: 11 * time.Second})
	t.Logf("outage after a restart: QCD on %v (%s), QCD off %v (%s), ratio off/on %.0f",
		on.Outage, on.DetectedBy, off.Outage, off.DetectedBy, float64(off.Outage)/float64(on.Outage))
	if on.DetectedBy != "qcd_verified" {
		t.Errorf("QCD on: detected by %q, want qcd_verified", on.DetectedBy)
	}
	if on.Outage >= time.Second {
		t.Errorf("QCD on: outage %v from the restart, want < 1s", on.Outage)
	}
	if !on.Resumed {
		t.Error("QCD on: the backup was not resumed with a ticket")
	}
	if off.DetectedBy != "liveness_failed" {
		t.Errorf("QCD off: detected by %q, want liveness_failed", off.DetectedBy)
	}
	if off.Outage <= on.Outage {
		t.Errorf("QCD off recovered no later (%v) than QCD on (%v)", off.Outage, on.Outage)
	}
	for _, r := range []*demoResult{on, off} {
		if !strings.HasSuffix(r.FailoverTo, ".2") {
			t.Errorf("failover went to %q, want the backup", r.FailoverTo)
		}
	}
}

// TestDemoBlackhole: the primary dies for good; with default liveness
// settings traffic flows through the backup within 5 s, resumed.
func TestDemoBlackhole(t *testing.T) {
	r := demo(t, demoOptions{Restart: false, QCD: true})
	t.Logf("blackholed primary: detection %v (%s), outage %v, resumed %v, lost %d of %d", r.Detection, r.DetectedBy, r.Outage, r.Resumed, r.Lost, r.Sent)
	if r.DetectedBy != "liveness_failed" {
		t.Errorf("detected by %q, want liveness_failed", r.DetectedBy)
	}
	if r.Outage >= 5*time.Second {
		t.Errorf("outage %v, want < 5s", r.Outage)
	}
	if !r.Resumed || !strings.HasSuffix(r.FailoverTo, ".2") {
		t.Errorf("failover to %q resumed=%v, want the backup, resumed", r.FailoverTo, r.Resumed)
	}
}

// TestDemoCommand runs `qcdvpn demo` as the README does.
func TestDemoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes about 12 s")
	}
	var out, errb bytes.Buffer
	if code := run([]string{"demo"}, &out, &errb); code != 0 {
		t.Fatalf("demo exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"timeline", "detection", "qcd_verified", "resumed with a ticket", "outage", "packets"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestGatewayCLIErrors(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/gw.json"
	os.WriteFile(bad, []byte(`{"listen":["127.0.0.1"],"id":"gw","auth":{"method":"psk","psk":"hunter2-secret"},"pool":["10.100.0.0/24"],"local_ts":["10.200.0.0/24"],"state_dir":"`+dir+`","tickets":{"keys":[{"id":"k1","key_hex":"zz"}]}}`), 0o600)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"gateway"}, 2, "-c GATEWAY.json is required"},
		{[]string{"gateway", "-c", bad, "--events", "xml"}, 2, "--events"},
		{[]string{"gateway", "-c", dir + "/missing.json"}, 1, "missing.json"},
		{[]string{"gateway", "-c", bad}, 1, "tickets.keys[0].key_hex"},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, &out, &errb); code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), c.code, c.want)
		}
		if strings.Contains(errb.String(), "hunter2") {
			t.Errorf("%v: secret leaked", c.args)
		}
		if c.code == 1 && strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("%v: error not one line: %q", c.args, errb.String())
		}
	}
}

// BenchmarkFailover measures, in one run, the failover after a crash
// with resumption and with a full exchange (make bench; one iteration
// each is one crash drill: -benchtime=1x).
func BenchmarkFailover(b *testing.B) {
	for _, mode := range []struct {
		name   string
		noTick bool
	}{{"resumed", false}, {"full", true}} {
		b.Run(mode.name, func(b *testing.B) {
			var outage, reconnect time.Duration
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				r, err := runDemo(ctx, demoOptions{Restart: true, QCD: true, NoResumption: mode.noTick, Rate: 50,
					Steady: time.Second, After: 2 * time.Second})
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				if r.Resumed == mode.noTick {
					b.Fatalf("resumed = %v", r.Resumed)
				}
				outage += r.Outage
				reconnect += r.Reconnect
			}
			b.ReportMetric(float64(outage.Microseconds())/1000/float64(b.N), "outage-ms")
			b.ReportMetric(float64(reconnect.Microseconds())/1000/float64(b.N), "reconnect-ms")
		})
	}
}
