// Package ike is qcdvpn's IKEv2 engine (RFC 7296).
//
// A Transport owns the UDP socket: it adds and strips the non-ESP marker of
// the NAT-T port, hands ESP to the data plane and IKE messages to the IKE
// SA named by our SPI. Initiate runs IKE_SA_INIT and IKE_AUTH as a client
// and returns a Session; a Responder answers them as a gateway. A Session
// owns one IKE SA on one goroutine: it retransmits its requests, answers
// the peer's (from a cache when they are repeated), checks liveness,
// rekeys the IKE SA and its Child SA — started by either side — and
// reports changes through Hooks.
package ike
