package testbed

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
)

// NS is a network namespace created by NewNS and deleted by the test's
// cleanup. Name is its name under /run/netns (as used by `ip netns`).
type NS struct {
	// Name is the namespace's name as `ip netns` knows it.
	Name string
}

// Link is a veth pair joining two namespaces, created by Connect.
type Link struct {
	// A and B are the two namespaces the link joins.
	A, B *NS
	// AIf and BIf are the interface names in A and in B.
	AIf, BIf string
	// AAddr and BAddr are the addresses given to AIf and BIf.
	AAddr, BAddr netip.Prefix
}

// Pair is a client namespace and a gateway namespace joined by one veth
// link, the usual shape of a remote-access VPN test. Built by NewPair.
type Pair struct {
	// Client and Gateway are the two namespaces.
	Client, Gateway *NS
	// Link is the veth pair between them (A is the client).
	Link *Link
	// ClientIP and GatewayIP are the IPv4 addresses on the link.
	ClientIP, GatewayIP netip.Addr
	// ClientIP6 and GatewayIP6 are IPv6 ULA addresses on the link.
	ClientIP6, GatewayIP6 netip.Addr
	// Net is 10.X.Y.0/24, the IPv4 link subnet; X.Y are random and reused
	// by helpers (see PoolPrefix and ProtectedPrefix) so every address a
	// test uses has the same recognisable middle octets.
	Net netip.Prefix
}

// PoolPrefix returns 10.100.Y.0/24 style virtual-IP pool suggestions derived
// from the pair's random octets: a /24 for the client virtual IPs.
func (p *Pair) PoolPrefix() netip.Prefix {
	b := p.Net.Addr().As4()
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 100, b[2], 0}), 24)
}

// ProtectedPrefix returns 10.200.Y.0/24, a subnet suggestion for "hosts
// behind the gateway" (put them on the gateway's lo with AddLoopbackAddr).
func (p *Pair) ProtectedPrefix() netip.Prefix {
	b := p.Net.Addr().As4()
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, b[2], 0}), 24)
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported systems
	return b
}

// randomHex returns n random bytes as 2n hex digits, for unique names.
func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// randomByte returns one random byte in [lo, hi].
func randomByte(lo, hi byte) byte {
	return lo + byte(int(randomBytes(1)[0])%(int(hi)-int(lo)+1))
}
