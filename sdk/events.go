package sdk

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/qcdvpn/qcdvpn/dataplane"
	"github.com/qcdvpn/qcdvpn/ike"
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
	// EventHASynced: a hot-standby gateway took the IKE SA over and
	// synchronised message IDs and/or ESP replay counters (RFC 6311);
	// the tunnel carries on with the same SPIs.
	EventHASynced EventType = "ha_synced"
)

// ReasonAuthenticationFailed is connect_failed's reason when the gateway
// refused our credentials or its own did not verify; with refused
// credentials the client stops trying (no other gateway, no retry).
const ReasonAuthenticationFailed = "authentication failed"

// Event is one thing the client reports. Which fields are set depends on
// Type; JSON leaves out the ones that do not apply.
type Event struct {
	// Time is when it happened.
	Time time.Time
	// Type is what happened; it says which of the fields below are set.
	Type EventType

	// Gateway is the gateway address in use (connecting, connected, …).
	Gateway string
	// IKESPIi and IKESPIr identify the IKE SA (hex).
	IKESPIi, IKESPIr string
	// VirtualIP is the address the gateway assigned (connected).
	VirtualIP string
	// DNS lists the gateway's DNS servers (connected).
	DNS []string
	// Domains are the split-DNS domains (RFC 8598) that DNS resolves
	// (connected): queries for them and their subdomains go to DNS, the
	// rest to the network's resolvers; empty means every query goes to
	// DNS. Apps hand them to VpnService.Builder.addDnsServer and
	// NEDNSSettings.matchDomains.
	Domains []string
	// Resumed is true when the IKE SA came from a resumption ticket.
	Resumed bool
	// IKESuite and ESPSuite name the negotiated algorithms (connected).
	IKESuite, ESPSuite string
	// KeyExchanges names every key exchange behind the IKE SA's keys, in
	// order (connected), e.g. ["CURVE_25519", "ML_KEM_768"] for a
	// quantum-safe hybrid; a resumed SA reports those of the SA its
	// ticket came from, whose SK_d it continues.
	KeyExchanges []string
	// Reason explains disconnected, connect_failed, failover, liveness_failed.
	Reason string
	// Error is the error text, if any.
	Error string
	// Elapsed is how long the step took (connected: since connecting).
	Elapsed time.Duration
	// Stats are the data plane counters (stats).
	Stats *Stats
	// Source is where an unprotected QCD message came from (qcd_verified,
	// qcd_rejected): any address, not only the gateway's.
	Source string
	// From and To are the gateways of a failover, or our old and new
	// local addresses when the IKE SA roamed (MOBIKE).
	From, To string
	// SinceInbound is how long the gateway had been silent when its QCD
	// token was verified.
	SinceInbound time.Duration
	// HASync is what an RFC 6311 synchronisation set (ha_synced).
	HASync *HASyncInfo
}

// HASyncInfo is the outcome of an RFC 6311 synchronisation.
type HASyncInfo struct {
	// MessageIDs is true when message IDs were synchronised; NextID is
	// then the client's next request ID and PeerNext the gateway request
	// ID it expects next.
	MessageIDs bool   `json:"message_ids"`
	NextID     uint32 `json:"next_id"`
	PeerNext   uint32 `json:"peer_next"`
	// ReplayDelta is what was added to the outbound ESP sequence numbers.
	ReplayDelta uint64 `json:"replay_delta"`
	// Retried is true when an unanswered request was sent again with the
	// new message IDs.
	Retried bool `json:"retried"`
}

// Stats are the data plane counters of a tunnel: what went through, and
// what was dropped and why.
type Stats struct {
	// Packets carried: out, read from the TUN and sent in ESP; in,
	// decrypted and written to the TUN. Bytes count the inner IP packets.
	PacketsOut uint64 `json:"packets_out"`
	BytesOut   uint64 `json:"bytes_out"`
	PacketsIn  uint64 `json:"packets_in"`
	BytesIn    uint64 `json:"bytes_in"`
	// Inbound drops: failed authentication, replayed, malformed, outside
	// the traffic selectors, unknown SPI.
	DropAuth      uint64 `json:"drop_auth"`
	DropReplay    uint64 `json:"drop_replay"`
	DropMalformed uint64 `json:"drop_malformed"`
	DropSelector  uint64 `json:"drop_selector"`
	DropNoSA      uint64 `json:"drop_no_sa"`
	// Outbound drops: outside the selectors, no SA, SA exhausted.
	DropOutSelector uint64 `json:"drop_out_selector"`
	DropOutNoSA     uint64 `json:"drop_out_no_sa"`
	DropOutLimit    uint64 `json:"drop_out_limit"`
	// SendErrors counts batches of ESP packets the socket failed to send.
	SendErrors uint64 `json:"send_errors"`
}

func haSyncedEvent(gw string, r ike.HASync) Event {
	return Event{Time: time.Now(), Type: EventHASynced, Gateway: gw,
		IKESPIi: fmt.Sprintf("%016x", r.SPIi), IKESPIr: fmt.Sprintf("%016x", r.SPIr),
		HASync: &HASyncInfo{MessageIDs: r.MessageIDs, NextID: r.NextID, PeerNext: r.PeerNext, ReplayDelta: r.ReplayDelta, Retried: r.Abandoned}}
}

func statsEvent(st dataplane.Stats, gateway string) Event {
	s := Stats(st)
	return Event{Time: time.Now(), Type: EventStats, Gateway: gateway, Stats: &s}
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
	put("source", e.Source)
	put("from", e.From)
	put("to", e.To)
	if e.SinceInbound > 0 {
		m["since_inbound_ms"] = float64(e.SinceInbound.Microseconds()) / 1000
	}
	if len(e.DNS) > 0 {
		m["dns"] = e.DNS
	}
	if len(e.KeyExchanges) > 0 {
		m["key_exchanges"] = e.KeyExchanges
	}
	if len(e.Domains) > 0 {
		m["dns_domains"] = e.Domains
	}
	if e.Type == EventConnected {
		m["resumed"] = e.Resumed
	}
	if e.Stats != nil {
		m["stats"] = e.Stats
	}
	if e.HASync != nil {
		m["ha_sync"] = e.HASync
	}
	if e.Elapsed > 0 {
		m["elapsed_ms"] = float64(e.Elapsed.Microseconds()) / 1000
	}
	return json.Marshal(m)
}
