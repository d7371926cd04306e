package testbed

import (
	"net/netip"
	"sync"
)

// NATChain is a client namespace behind a NAT namespace in front of a
// gateway namespace: client — nat — gateway, the shape of a VPN client on a
// home or mobile network. Built by NewNATChain.
//
// The client has a private address (192.168.Y.2/24, the NAT's inside end is
// 192.168.Y.1 and the client's default route). The NAT masquerades
// everything from the private subnet out of its outside address (10.X.Y.1/24;
// the gateway is 10.X.Y.2) with nftables, so the gateway never sees the
// client's private address. Like a real NAT it silently drops unsolicited
// packets arriving from the outside. Only the NAT forwards (ip_forward=1);
// there is no IPv6 on the chain.
type NATChain struct {
	// Client, NAT and Gateway are the three namespaces.
	Client, NAT, Gateway *NS
	// Inside is the veth pair client (A) — NAT (B).
	Inside *Link
	// Outside is the veth pair NAT (A) — gateway (B).
	Outside *Link
	// ClientIP is the client's private address, 192.168.Y.2.
	ClientIP netip.Addr
	// NATInsideIP is the NAT's private address, 192.168.Y.1, the client's
	// default gateway.
	NATInsideIP netip.Addr
	// NATOutsideIP is the NAT's public-side address, 10.X.Y.1: the source
	// address the gateway sees for everything the client sends.
	NATOutsideIP netip.Addr
	// GatewayIP is the gateway's address, 10.X.Y.2.
	GatewayIP netip.Addr
	// PrivateNet is 192.168.Y.0/24, the client's subnet.
	PrivateNet netip.Prefix
	// Net is 10.X.Y.0/24, the NAT–gateway subnet; PoolPrefix and
	// ProtectedPrefix derive from it exactly as Pair's do.
	Net netip.Prefix

	mu         sync.Mutex // guards generation
	generation int        // FlushNAT count; picks the masquerade port range
}

// PoolPrefix returns 10.100.Y.0/24, a virtual-IP pool suggestion (see
// Pair.PoolPrefix).
func (c *NATChain) PoolPrefix() netip.Prefix { return (&Pair{Net: c.Net}).PoolPrefix() }

// ProtectedPrefix returns 10.200.Y.0/24, a suggestion for "hosts behind the
// gateway" (see Pair.ProtectedPrefix).
func (c *NATChain) ProtectedPrefix() netip.Prefix { return (&Pair{Net: c.Net}).ProtectedPrefix() }

// natPortRange is the masquerade source-port range used after n calls of
// FlushNAT: 20000-29999 and 30000-39999 alternately, so every flush moves
// the client's mapping to a port it cannot have had just before.
func natPortRange(n int) (lo, hi uint16) {
	if n%2 == 0 {
		return 20000, 29999
	}
	return 30000, 39999
}
