// Package sdk is the API an app embeds to run a qcdvpn IKEv2/IPsec tunnel.
// No other package of this module is needed to use it; package mobile
// wraps it for gomobile (Android AAR, iOS framework).
//
// # Profiles
//
// A connection is described by a Profile, one JSON document that users
// write by hand or import:
//
//	{"name": "corp", "gateways": ["192.0.2.1", "192.0.2.9:4500"],
//	 "remote_id": "gw.example", "local_id": "client.example",
//	 "auth": {"method": "psk", "psk": "..."},
//	 "ike_proposals": ["aes256gcm16-prfsha256-x25519"], "esp_proposals": ["aes256gcm16"],
//	 "traffic": {"include": ["10.200.0.0/24"]}}
//
// auth.method is "psk", "pubkey" (cert and key), "eap-mschapv2" (username
// and password) or "eap-tls" (cert and key; username is the EAP identity,
// default local_id). With pubkey and EAP the gateway proves itself with
// its certificate, verified against ca. Credentials the gateway rejects
// end Connect (and Wait's reconnects) with an error that
// errors.Is ike.ErrCredentialsRejected, after one connect_failed event
// with Reason ReasonAuthenticationFailed: no retry, no other gateway.
//
// Proposals use strongSwan's syntax. ParseProfile and LoadProfile are
// strict: an unknown field or a bad value is a one-line *ProfileError that
// names the field. Omitted fields take defaults (DefaultIKEProposals,
// DefaultTimerValues, …); Profile.Resolve gives every value parsed.
//
// # Connecting
//
// NewClient prepares a Client; Connect runs IKE_SA_INIT and IKE_AUTH with
// the first gateway that answers and brings up the data plane: a kernel
// TUN with routes (DataPlaneKernel), an in-process network stack
// (DataPlaneNetstack, see Client.Net), or a TUN the app already has
// (DataPlaneDevice: Android's VpnService or iOS's packet tunnel). Wait
// keeps the tunnel up — rekeying, checking liveness, reconnecting when the
// gateway goes away — until its context ends; Close deletes the SA at the
// gateway and removes the TUN and its routes. See the NewClient example.
//
// # Recovery
//
// Recovery is what sets qcdvpn apart. The gateway's RFC 6290 QCD token is
// kept with each IKE SA; when a gateway that crashed and came back without
// state (or its HA standby, from any address) presents that token in an
// unprotected INVALID_IKE_SPI or INVALID_SPI, the SA is dropped at once
// (event qcd_verified) instead of after minutes of dead-peer detection.
// A bare INVALID_SPI, or outbound traffic that goes unanswered, starts a
// short liveness check instead. The client then fails over immediately to
// the next gateway of the profile's list (failover event), resuming with
// an RFC 5723 ticket where it holds one (connected with resumed true: one
// round trip, no Diffie-Hellman on the gateway), else with a full
// exchange; only after every gateway failed once does it back off.
// Gateways may also redirect the client (RFC 5685), which it follows up to
// 5 times in 300 s.
//
// Tickets and tokens live in one AES-GCM sealed record per IKE SA in a
// bbolt database under the state directory (Options.StateDir, the
// profile's state_dir, or the user config directory), so a restarted app
// still resumes; Options.KeyProvider supplies the sealing key (mobile:
// Keystore/Keychain), by default a 0600 key file beside the store.
//
// # DNS
//
// Gateway names are resolved with the underlying network's DNS servers
// (Options.DNS.NetworkServers, else the resolver file read before the
// tunnel changes it), over sockets passed to Options.Protect and, with a
// kernel TUN, marked to bypass the tunnel. Every A and AAAA record is a
// candidate for failover; answers are cached for their TTL and refreshed
// in the background, so a failover asks no one. The gateway's DNS servers
// and RFC 8598 split domains come in the connected event (DNS, Domains);
// with DataPlaneKernel on Linux the client applies them itself (systemd-
// resolved, else a local forwarder with the resolver file rewritten and
// restored exactly, even after a crash: RestoreSystemDNS), and holds
// queries for the tunnel during a failover rather than leak them.
//
// # Events and counters
//
// Everything that happens is reported as an Event through Options.OnEvent,
// in order, from one goroutine; the CLI prints the same events as JSON
// lines (Event.MarshalJSON). Client.Stats are the data plane's counters,
// Client.Session the IKE SA in use (SPIs, suite, addresses).
//
// # Mobile apps and battery
//
// On Android, Options.Protect receives the client's UDP socket before it
// is used, for VpnService.protect; Options.Device with DataPlaneDevice is
// the TUN the OS handed over. Call Client.NetworkChanged when the device's
// network changes: the client sends a NAT keepalive and, with MOBIKE (RFC
// 4555, profile "mobike", on by default, and a gateway that offers it),
// moves the IKE SA to the new address with UPDATE_SA_ADDRESSES, keeping
// its SPIs and keys (event roamed, with the old and new local address in
// From and To); if the new path does not answer within a few seconds, or
// without MOBIKE, the usual liveness check and reconnect take over. On
// Linux the client also watches addresses and routes itself.
//
// Nothing polls. A connected client with no traffic wakes only for its
// NAT keepalive (timers.keepalive, 20 s by default; package mobile uses
// 45 s), its liveness check (timers.liveness, 30 s) and the refresh of a
// gateway name at 3/4 of its TTL (DNSOptions.MinTTL); the first packet
// after a quiet spell wakes the IKE session rather than a timer, and while
// traffic flows the session looks at it twice per timers.fast_liveness.
// Client.Wakeups counts the timer wake-ups. SA lifetimes and ticket expiry
// are wall-clock time, so the time a device spends asleep counts (Go's
// monotonic clock stops meanwhile): an SA due for a rekey is rekeyed on
// the first wake-up after its time, and an expired ticket is not offered.
package sdk
