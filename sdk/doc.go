// Package sdk is the API an app embeds to run a qcdvpn IKEv2/IPsec tunnel.
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
// Proposals use strongSwan's syntax. ParseProfile and LoadProfile are
// strict: an unknown field or a bad value is a one-line *ProfileError that
// names the field.
//
// NewClient prepares a Client; Connect runs IKE_SA_INIT and IKE_AUTH with
// the first gateway that answers and brings up the data plane: a kernel
// TUN with routes (DataPlaneKernel), an in-process network stack
// (DataPlaneNetstack, see Client.Net), or a TUN the app already has
// (DataPlaneDevice: Android's VpnService or iOS's packet tunnel). Wait
// keeps the tunnel up — rekeying, checking liveness, reconnecting when the
// gateway goes away — until its context ends; Close deletes the SA at the
// gateway and removes the TUN and its routes.
//
// Everything that happens is reported as an Event through Options.OnEvent,
// in order; the CLI prints the same events as JSON lines.
package sdk
