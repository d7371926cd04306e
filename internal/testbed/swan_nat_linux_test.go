package testbed

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestStrongSwanBehindNAT runs the PSK configuration through a NATChain:
// charon detects the NAT (NAT-D) and floats to UDP 4500, and the gateway
// sees the client at the NAT's outside address.
func TestStrongSwanBehindNAT(t *testing.T) {
	RequireStrongSwan(t)
	RequireNFTables(t)
	t.Parallel()
	c := NewNATChain(t)
	protected, pool := c.ProtectedPrefix(), c.PoolPrefix()
	host := protected.Addr().Next()
	c.Gateway.AddLoopbackAddr(t, netip.PrefixFrom(host, 32))
	// Without forced encapsulation: the NAT alone must cause UDP 4500.
	noEncap := func(s string) string { return strings.Replace(s, "  encap = yes\n", "", 1) }
	gw := StartStrongSwan(t, c.Gateway, SwanConfig{
		Connections: noEncap(fmt.Sprintf(pskGateway, c.GatewayIP, protected)),
		Secrets:     pskSecrets,
		Pools:       fmt.Sprintf("pool4 {\n  addrs = %s\n}", pool),
	})
	cl := StartStrongSwan(t, c.Client, SwanConfig{
		Connections: noEncap(fmt.Sprintf(pskClient, c.GatewayIP, protected)),
		Secrets:     pskSecrets,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := cl.Initiate(ctx, "vpn", "net"); err != nil {
		t.Fatalf("initiate: %v\n%s", err, out)
	}
	sa, err := cl.WaitSA(ctx, "vpn", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sa.NATLocal || sa.LocalHost != c.ClientIP.String() || sa.RemotePort != 4500 {
		t.Errorf("client IKE SA: %+v", sa)
	}
	gsa, err := gw.WaitSA(ctx, "rw", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !gsa.NATRemote || gsa.RemoteHost != c.NATOutsideIP.String() || gsa.RemotePort < 20000 || gsa.RemotePort > 29999 {
		t.Errorf("gateway IKE SA: %+v", gsa)
	}
	if err := c.Client.Ping(ctx, host); err != nil {
		t.Fatalf("ping %v through the tunnel behind the NAT: %v", host, err)
	}
}
