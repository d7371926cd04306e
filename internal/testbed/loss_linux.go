package testbed

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// lossTable is the nftables table SetLoss owns in a namespace.
const lossTable = "inet loss"

// SetLoss makes ns drop percent% of UDP packets at random (nftables
// numgen), independently for each packet, on its input, output and forward
// paths, IPv4 and IPv6 alike. With udpPorts only packets to or from one of
// those ports are affected (a packet with both ports listed still has one
// chance of being dropped, not two); with none, all UDP is. Each call
// replaces the previous setting; percent 0 removes it. The rules vanish
// with the namespace.
//
// Each packet is judged once per namespace it crosses: for a Pair,
// SetLoss(p.Gateway, 20) loses 20% of what the client sends and 20% of
// what the gateway answers; on a NATChain's NAT it hits forwarded traffic
// in both directions. Traffic a namespace sends to itself crosses output
// and input and so is judged twice. Needs `nft` (see RequireNFTables).
func SetLoss(t testing.TB, ns *NS, percent int, udpPorts ...uint16) {
	t.Helper()
	body, err := lossRules(percent, udpPorts)
	if err != nil {
		t.Fatalf("testbed: SetLoss in %s: %v", ns.Name, err)
	}
	if err := runNFT(ns, replaceTable(lossTable, body)); err != nil {
		t.Fatalf("testbed: SetLoss: %v", err)
	}
}

// lossRules is the body of the loss table, "" when percent is 0.
func lossRules(percent int, udpPorts []uint16) (string, error) {
	if percent < 0 || percent > 100 {
		return "", fmt.Errorf("percent %d is outside 0..100", percent)
	}
	if slices.Contains(udpPorts, 0) {
		return "", fmt.Errorf("UDP port 0 in %v", udpPorts)
	}
	if percent == 0 {
		return "", nil
	}
	drop := "numgen random mod 100 < " + strconv.Itoa(percent) + " drop"
	if percent == 100 {
		drop = "drop" // nft rejects "< 100" for a value that is always below 100
	}
	var rules []string
	if len(udpPorts) == 0 {
		rules = []string{"meta l4proto udp " + drop}
	} else {
		ports := slices.Clone(udpPorts)
		slices.Sort(ports)
		ports = slices.Compact(ports)
		names := make([]string, len(ports))
		for i, p := range ports {
			names[i] = strconv.Itoa(int(p))
		}
		set := "{ " + strings.Join(names, ", ") + " }"
		// The second rule skips packets the first one already judged.
		rules = []string{"udp dport " + set + " " + drop, "udp sport " + set + " udp dport != " + set + " " + drop}
	}
	var b strings.Builder
	for _, hook := range []string{"input", "output", "forward"} {
		fmt.Fprintf(&b, "  chain %s {\n    type filter hook %s priority filter; policy accept;\n", hook, hook)
		for _, r := range rules {
			b.WriteString("    " + r + "\n")
		}
		b.WriteString("  }\n")
	}
	return b.String(), nil
}
