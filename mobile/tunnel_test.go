package mobile

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestTunnelNetstack(t *testing.T) {
	gw := startGateway(t)
	p := newFakePlatform(t)
	tn, err := NewTunnel(profileJSON(t, gw), -1, p)
	if err != nil {
		t.Fatalf("NewTunnel: %v", err)
	}
	defer tn.Stop()
	if st := statusOf(t, tn); st["state"] != StateIdle {
		t.Fatalf("state before Start = %v", st["state"])
	}
	if err := tn.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	ev := p.waitEvent(t, "connected", 5*time.Second)
	if ev["gateway"] != gw.Addr().String() || ev["virtual_ip"] == "" || ev["ike_spi_i"] == "" || ev["resumed"] != false {
		t.Errorf("connected event = %v", ev)
	}
	if _, err := time.Parse(time.RFC3339Nano, ev["time"].(string)); err != nil {
		t.Errorf("connected event time: %v", err)
	}
	if len(p.protected()) != 1 || p.protected()[0] < 0 {
		t.Errorf("Protect calls = %v, want one with the UDP socket", p.protected())
	}
	if err := tn.Start(); err == nil {
		t.Error("a second Start succeeded")
	}
	if err := echo(t, tn, []byte("hello through the tunnel")); err != nil {
		t.Fatalf("echo: %v", err)
	}
	st := statusOf(t, tn)
	if st["state"] != StateConnected || st["gateway"] != gw.Addr().String() || st["virtual_ip"] != ev["virtual_ip"] {
		t.Errorf("status = %v", st)
	}
	if stats, _ := st["stats"].(map[string]any); stats == nil || stats["packets_in"].(float64) < 1 {
		t.Errorf("status stats = %v", st["stats"])
	}
	// A network change checks liveness at once; the gateway answers, so
	// the tunnel stays.
	tn.NetworkChanged()
	time.Sleep(300 * time.Millisecond)
	if err := echo(t, tn, []byte("after the network change")); err != nil {
		t.Fatalf("echo after NetworkChanged: %v", err)
	}
	if strings.Contains(p.types(), "liveness_failed") {
		t.Errorf("liveness failed after NetworkChanged: %s", p.types())
	}
	tn.Stop()
	ev = p.waitEvent(t, "disconnected", 5*time.Second)
	if ev["reason"] != "closed by user" {
		t.Errorf("disconnected event = %v", ev)
	}
	if st := statusOf(t, tn); st["state"] != StateStopped {
		t.Errorf("state after Stop = %v", st["state"])
	}
	tn.Stop() // a second Stop is a no-op
	if err := tn.Start(); err == nil {
		t.Error("Start after Stop succeeded")
	}
	// No secret reaches the platform.
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range append(append([]string(nil), p.logs...), p.raw...) {
		if strings.Contains(s, strings.TrimPrefix(pskHex, "0x")) {
			t.Errorf("secret in %q", s)
		}
	}
}

func TestStopFromOnEvent(t *testing.T) {
	gw := startGateway(t)
	p := &stopOnConnect{fakePlatform: newFakePlatform(t)}
	tn, err := NewTunnel(profileJSON(t, gw), -1, p)
	if err != nil {
		t.Fatal(err)
	}
	p.tn = tn
	if err := tn.Start(); err != nil && !strings.Contains(err.Error(), "stop") {
		t.Fatalf("Start: %v", err)
	}
	p.waitEvent(t, "disconnected", 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for statusOf(t, tn)["state"] != StateStopped && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := statusOf(t, tn); st["state"] != StateStopped {
		t.Errorf("state = %v", st["state"])
	}
}

// stopOnConnect stops its tunnel from inside OnEvent(connected).
type stopOnConnect struct {
	*fakePlatform
	tn *Tunnel
}

func (p *stopOnConnect) OnEvent(s string) {
	p.fakePlatform.OnEvent(s)
	if strings.Contains(s, `"type":"connected"`) {
		p.tn.Stop()
	}
}

func TestProtectRefused(t *testing.T) {
	gw := startGateway(t)
	p := newFakePlatform(t)
	p.refuse = true
	tn, err := NewTunnel(profileJSON(t, gw), -1, p)
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()
	err = tn.Start()
	if err == nil || !strings.Contains(err.Error(), "protect") {
		t.Fatalf("Start with Protect refusing = %v, want an error about protect", err)
	}
	if st := statusOf(t, tn); st["state"] != StateIdle {
		t.Errorf("state = %v", st["state"])
	}
}

func TestNewTunnelErrors(t *testing.T) {
	p := newFakePlatform(t)
	for _, tc := range []struct {
		name, profile string
		fd            int32
		p             Platform
		want          string
	}{
		{"bad json", `{"name":`, -1, p, "profile"},
		{"unknown field", `{"name":"x","gateways":["192.0.2.1"],"remote_id":"gw","auth":{"method":"psk","psk":"0x0102030405060708"},"bogus":1}`, -1, p, "bogus"},
		{"nil platform", `{}`, -1, nil, "platform"},
		{"bad fd", profileJSON(t, netipAddrPort("192.0.2.1:4500")), -7, p, "tunFD"},
	} {
		_, err := NewTunnel(tc.profile, tc.fd, tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %q", tc.name, err, tc.want)
		}
	}
}

func statusOf(t testing.TB, tn *Tunnel) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(tn.StatusJSON()), &m); err != nil {
		t.Fatalf("StatusJSON: %v", err)
	}
	return m
}
