package testbed

import (
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// natTable is the nftables table NewNATChain loads into the NAT namespace.
const natTable = "ip nat"

// NewNATChain builds a client — NAT — gateway chain (see NATChain): three
// namespaces, two veth links, a default route on the client via the NAT,
// ip_forward=1 in the NAT namespace only, and an nftables masquerade of the
// client subnet on the NAT's outside interface. X and Y are random, X
// avoiding 100 and 200 like NewPair. Needs `nft` (see RequireNFTables).
func NewNATChain(t testing.TB) *NATChain {
	t.Helper()
	x := randomByte(1, 250)
	if x == 100 || x == 200 {
		x++
	}
	y := randomByte(0, 255)
	c := &NATChain{
		Client:       NewNS(t, "tbc"),
		NAT:          NewNS(t, "tbn"),
		Gateway:      NewNS(t, "tbg"),
		ClientIP:     netip.AddrFrom4([4]byte{192, 168, y, 2}),
		NATInsideIP:  netip.AddrFrom4([4]byte{192, 168, y, 1}),
		NATOutsideIP: netip.AddrFrom4([4]byte{10, x, y, 1}),
		GatewayIP:    netip.AddrFrom4([4]byte{10, x, y, 2}),
		PrivateNet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, y, 0}), 24),
		Net:          netip.PrefixFrom(netip.AddrFrom4([4]byte{10, x, y, 0}), 24),
	}
	c.Inside = Connect(t, c.Client, c.NAT, netip.PrefixFrom(c.ClientIP, 24), netip.PrefixFrom(c.NATInsideIP, 24))
	c.Outside = Connect(t, c.NAT, c.Gateway, netip.PrefixFrom(c.NATOutsideIP, 24), netip.PrefixFrom(c.GatewayIP, 24))
	if err := runIP("-n", c.Client.Name, "route", "add", "default", "via", c.NATInsideIP.String()); err != nil {
		t.Fatalf("testbed: NAT chain: %v", err)
	}
	c.NAT.SetSysctl(t, "net.ipv4.ip_forward", "1")
	if err := runNFT(c.NAT, replaceTable(natTable, c.natRules(0))); err != nil {
		t.Fatalf("testbed: NAT chain: %v", err)
	}
	return c
}

// FlushNAT makes the NAT behave as if it had rebooted: it switches the
// masquerade to the other source-port range (20000-29999 and 30000-39999
// alternately) and then drops every conntrack entry, i.e. every mapping, in
// the NAT namespace. The client's next packet gets a NEW mapping with a
// different external port; packets the gateway sends to the old mapping
// are silently dropped.
func (c *NATChain) FlushNAT(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Rule first, flush second: a packet slipping in between must already
	// get a port from the new range.
	if err := runNFT(c.NAT, replaceTable(natTable, c.natRules(c.generation+1))); err != nil {
		t.Fatalf("testbed: FlushNAT: %v", err)
	}
	c.generation++
	if err := c.NAT.Do(func() error { return flushConntrack(unix.AF_INET) }); err != nil {
		t.Fatalf("testbed: FlushNAT: namespace %s: %v", c.NAT.Name, err)
	}
}

// natRules is the body of the NAT's nftables table for the given FlushNAT
// generation. TCP and UDP get an explicit port range (nft only accepts one
// after a transport-protocol match); everything else, e.g. ICMP, is
// masqueraded plainly. Unsolicited packets from the outside (no mapping)
// are dropped silently, as a home router would, instead of drawing ICMP
// port-unreachable from the NAT itself.
func (c *NATChain) natRules(generation int) string {
	lo, hi := natPortRange(generation)
	out := c.Outside.AIf
	return fmt.Sprintf(`  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname %[1]q ip saddr %[2]s meta l4proto { tcp, udp } masquerade to :%[3]d-%[4]d
    oifname %[1]q ip saddr %[2]s masquerade
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname %[1]q ct state new meta l4proto { tcp, udp } drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname %[1]q ct state new drop
  }
`, out, c.PrivateNet, lo, hi)
}
