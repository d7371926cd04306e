package sdk

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 11, 24, 8, 0, 0, 123456789, time.UTC)
	b, err := json.Marshal(Event{Time: at, Type: EventConnected, Gateway: "192.0.2.1",
		IKESPIi: "0102030405060708", IKESPIr: "1112131415161718", VirtualIP: "10.100.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"time": "2026-11-24T08:00:00.123456789Z", "type": "connected", "gateway": "192.0.2.1",
		"ike_spi_i": "0102030405060708", "ike_spi_r": "1112131415161718", "virtual_ip": "10.100.0.1", "resumed": false}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("extra fields in %s", b)
	}
	b, _ = json.Marshal(Event{Time: at, Type: EventConnected, KeyExchanges: []string{"CURVE_25519", "ML_KEM_768"}})
	if want := `"key_exchanges":["CURVE_25519","ML_KEM_768"]`; !strings.Contains(string(b), want) {
		t.Errorf("connected with key exchanges: %s, want %s", b, want)
	}
	b, _ = json.Marshal(Event{Time: at, Type: EventDisconnected, Reason: "closed by user"})
	var d map[string]any
	json.Unmarshal(b, &d)
	if _, ok := d["resumed"]; ok || d["reason"] != "closed by user" || d["type"] != "disconnected" {
		t.Errorf("disconnected: %s", b)
	}
}

// TestConnectedEventDNS: the servers and split domains reach the app as
// "dns" and "dns_domains" (mobile apps hand them to the OS).
func TestConnectedEventDNS(t *testing.T) {
	e := Event{Type: EventConnected, DNS: []string{"10.200.0.53"}, Domains: []string{"corp.test", "lab.test"}}
	b, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m["dns"]) != "[10.200.0.53]" || fmt.Sprint(m["dns_domains"]) != "[corp.test lab.test]" {
		t.Fatalf("connected event JSON %s", b)
	}
	b, _ = Event{Type: EventConnected}.MarshalJSON()
	if strings.Contains(string(b), "dns") {
		t.Fatalf("empty DNS fields written: %s", b)
	}
}
