package sdk

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike"
)

func TestProfileHASync(t *testing.T) {
	parse := func(v any) (*Profile, error) {
		m := baseProfile()
		if v != nil {
			m["ha_sync"] = v
		}
		b, _ := json.Marshal(m)
		return ParseProfile(b)
	}
	p, err := parse(nil)
	if err != nil || !p.HASyncEnabled() {
		t.Fatalf("default: %v %v, want on", p.HASyncEnabled(), err)
	}
	cfg, err := ikeConfig(p, nil)
	if err != nil || !cfg.HASync {
		t.Errorf("ike config HASync = %v, %v", cfg != nil && cfg.HASync, err)
	}
	p, err = parse(map[string]any{"enabled": false})
	if err != nil || p.HASyncEnabled() {
		t.Fatalf("off: %v %v", p.HASyncEnabled(), err)
	}
	if cfg, _ := ikeConfig(p, nil); cfg.HASync {
		t.Error("ha_sync off still announces RFC 6311")
	}
	for v, want := range map[any]string{
		"yes":               "ha_sync",
		`{"enabled":"yes"}`: "ha_sync.enabled",
		`{"enabld":true}`:   "ha_sync",
	} {
		var jv any = v
		if s, ok := v.(string); ok && strings.HasPrefix(s, "{") {
			_ = json.Unmarshal([]byte(s), &jv)
		}
		if _, err := parse(jv); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ha_sync %v: %v, want an error naming %s", v, err, want)
		}
	}
}

func TestHASyncedEventJSON(t *testing.T) {
	e := haSyncedEvent("192.0.2.1", ike.HASync{SPIi: 1, SPIr: 2, MessageIDs: true, NextID: 5, PeerNext: 12, ReplayDelta: 1 << 20, Abandoned: true})
	e.Time = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"gateway":"192.0.2.1","ha_sync":{"message_ids":true,"next_id":5,"peer_next":12,"replay_delta":1048576,"retried":true},` +
		`"ike_spi_i":"0000000000000001","ike_spi_r":"0000000000000002","time":"2026-01-02T03:04:05.000000006Z","type":"ha_synced"}`
	if string(b) != want {
		t.Errorf("ha_synced JSON\n got %s\nwant %s", b, want)
	}
}
