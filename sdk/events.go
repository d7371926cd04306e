package sdk

import (
	"encoding/json"
	"time"
)

// EventType names what happened. The CLI prints it as the "type" field.
type EventType string

// Event types. Apps switch on these; the JSON form is the same string.
const (
	EventConnecting     EventType = "connecting"
	EventConnected      EventType = "connected"
	EventConnectFailed  EventType = "connect_failed"
	EventDisconnected   EventType = "disconnected"
	EventQCDVerified    EventType = "qcd_verified"
	EventQCDRejected    EventType = "qcd_rejected"
	EventLivenessFailed EventType = "liveness_failed"
	EventFailover       EventType = "failover"
	EventResumed        EventType = "resumed"
	EventRekeyed        EventType = "rekeyed"
	EventStats          EventType = "stats"
)

// Event is one thing the client reports. Which fields are set depends on
// Type; JSON leaves out the ones that do not apply.
type Event struct {
	Time time.Time
	Type EventType

	// Gateway is the gateway address in use (connecting, connected, …).
	Gateway string
	// IKESPIi and IKESPIr identify the IKE SA (hex).
	IKESPIi, IKESPIr string
	// VirtualIP is the address the gateway assigned (connected).
	VirtualIP string
	// DNS lists the gateway's DNS servers (connected).
	DNS []string
	// Resumed is true when the IKE SA came from a resumption ticket.
	Resumed bool
	// IKESuite and ESPSuite name the negotiated algorithms (connected).
	IKESuite, ESPSuite string
	// Reason explains disconnected, connect_failed, failover, liveness_failed.
	Reason string
	// Error is the error text, if any.
	Error string
	// Elapsed is how long the step took (connected: since connecting).
	Elapsed time.Duration
}

// MarshalJSON writes the event as the CLI's `--events json` line: time in
// RFC 3339 with nanoseconds, type, and the context fields of that type.
func (e Event) MarshalJSON() ([]byte, error) {
	m := map[string]any{
		"time": e.Time.Format(time.RFC3339Nano),
		"type": string(e.Type),
	}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("gateway", e.Gateway)
	put("ike_spi_i", e.IKESPIi)
	put("ike_spi_r", e.IKESPIr)
	put("virtual_ip", e.VirtualIP)
	put("ike_suite", e.IKESuite)
	put("esp_suite", e.ESPSuite)
	put("reason", e.Reason)
	put("error", e.Error)
	if len(e.DNS) > 0 {
		m["dns"] = e.DNS
	}
	if e.Type == EventConnected {
		m["resumed"] = e.Resumed
	}
	if e.Elapsed > 0 {
		m["elapsed_ms"] = float64(e.Elapsed.Microseconds()) / 1000
	}
	return json.Marshal(m)
}
