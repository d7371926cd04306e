package testbed

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPairConnectivity(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	p := NewPair(t)
	if len(p.Link.AIf) > 15 || len(p.Link.BIf) > 15 {
		t.Errorf("interface names too long: %q %q", p.Link.AIf, p.Link.BIf)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, dst := range []netip.Addr{p.GatewayIP, p.GatewayIP6} {
		if err := p.Client.Ping(ctx, dst); err != nil {
			t.Errorf("ping %v: %v", dst, err)
		}
	}
	host := netip.PrefixFrom(p.ProtectedPrefix().Addr().Next(), 32)
	p.Gateway.AddLoopbackAddr(t, host)
	if err := p.Gateway.Ping(ctx, host.Addr()); err != nil {
		t.Errorf("ping own lo %v: %v", host, err)
	}
	// Not routed from the client: there is no tunnel yet.
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	if err := p.Client.Ping(short, host.Addr()); err == nil {
		t.Errorf("ping %v succeeded without a route", host)
	}

	// Sockets made in Do stay in the namespace; TCP across the link.
	l, err := p.Gateway.Listen("tcp", netip.AddrPortFrom(p.GatewayIP, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_, _ = io.Copy(c, c)
			c.Close()
		}
	}()
	c, err := p.Client.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != p.ClientIP.String() {
		t.Errorf("dialled from %s, want %s", got, p.ClientIP)
	}
	_, _ = c.Write([]byte("hi"))
	buf := make([]byte, 2)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Errorf("echo: %q %v", buf, err)
	}

	// Per-namespace sysctl; the host value is untouched.
	host0, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	p.Gateway.SetSysctl(t, "net.ipv4.ip_forward", "1")
	var got []byte
	if err := p.Gateway.Do(func() (err error) {
		got, err = os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		return err
	}); err != nil || strings.TrimSpace(string(got)) != "1" {
		t.Errorf("sysctl in namespace: %q %v", got, err)
	}
	if host1, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(host1) != string(host0) {
		t.Errorf("host ip_forward changed: %q -> %q", host0, host1)
	}
	if err := p.Client.Do(func() error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic in Do: %v", err)
	}
}

// pskGateway and pskClient are the documented working configurations: a
// PSK responder with a virtual-IP pool and forced UDP encapsulation, and an
// initiator asking for a virtual IP.
const pskGateway = `rw {
  version = 2
  local_addrs = %[1]s
  pools = pool4
  proposals = aes256gcm16-prfsha256-x25519
  encap = yes
  local {
    auth = psk
    id = gw.example
  }
  remote {
    auth = psk
    id = client.example
  }
  children {
    net {
      local_ts = %[2]s
      esp_proposals = aes256gcm16
    }
  }
}`

const pskClient = `vpn {
  version = 2
  remote_addrs = %[1]s
  vips = 0.0.0.0
  proposals = aes256gcm16-prfsha256-x25519
  encap = yes
  local {
    auth = psk
    id = client.example
  }
  remote {
    auth = psk
    id = gw.example
  }
  children {
    net {
      remote_ts = %[2]s
      esp_proposals = aes256gcm16
    }
  }
}`

const pskSecrets = `ike-vpn {
  id-1 = client.example
  id-2 = gw.example
  secret = "qcdvpn-testbed-psk"
}`

func TestStrongSwanPSKTunnel(t *testing.T) {
	RequireStrongSwan(t)
	t.Parallel()
	p := NewPair(t)
	protected, pool := p.ProtectedPrefix(), p.PoolPrefix()
	host := protected.Addr().Next() // 10.200.Y.1 stands for a host behind the gateway
	p.Gateway.AddLoopbackAddr(t, netip.PrefixFrom(host, 32))

	gw := StartStrongSwan(t, p.Gateway, SwanConfig{
		Connections: fmt.Sprintf(pskGateway, p.GatewayIP, protected),
		Secrets:     pskSecrets,
		Pools:       fmt.Sprintf("pool4 {\n  addrs = %s\n}", pool),
	})
	cl := StartStrongSwan(t, p.Client, SwanConfig{
		Connections: fmt.Sprintf(pskClient, p.GatewayIP, protected),
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
	if sa.EncrAlg != "AES_GCM_16" || sa.EncrKeysize != 256 || sa.PRFAlg != "PRF_HMAC_SHA2_256" ||
		sa.DHGroup != "CURVE_25519" || sa.IntegAlg != "" || sa.RemoteID != "gw.example" || !sa.Initiator {
		t.Errorf("client IKE SA: %+v", sa)
	}
	if len(sa.LocalVIPs) != 1 || !pool.Contains(sa.LocalVIPs[0]) {
		t.Fatalf("client virtual IP %v not from pool %v", sa.LocalVIPs, pool)
	}
	vip := sa.LocalVIPs[0]
	child, ok := sa.Child("net")
	if !ok || child.State != "INSTALLED" || child.Protocol != "ESP" || !child.Encap ||
		child.EncrAlg != "AES_GCM_16" || child.EncrKeysize != 256 || child.SPIIn == "" || child.SPIOut == "" ||
		strings.Join(child.LocalTS, ",") != netip.PrefixFrom(vip, 32).String() ||
		strings.Join(child.RemoteTS, ",") != protected.String() {
		t.Errorf("client CHILD SA: %+v", child)
	}

	gsa, err := gw.WaitSA(ctx, "rw", nil)
	if err != nil {
		t.Fatal(err)
	}
	if gsa.RemoteID != "client.example" || len(gsa.RemoteVIPs) != 1 || gsa.RemoteVIPs[0] != vip ||
		gsa.Initiator || gsa.InitiatorSPI != sa.InitiatorSPI || gsa.ResponderSPI != sa.ResponderSPI {
		t.Errorf("gateway IKE SA: %+v", gsa)
	}

	// Data plane: ICMP through kernel-libipsec on both sides.
	if err := p.Client.Ping(ctx, host); err != nil {
		t.Fatalf("ping %v through the tunnel: %v", host, err)
	}
	sas, err := cl.ListSAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := sas[0].Child("net"); c.PacketsOut == 0 || c.PacketsIn == 0 {
		t.Errorf("ESP counters did not move: %+v", c)
	}

	// Crash drill: after SIGKILL the gateway no longer answers.
	gw.Kill()
	if gw.Running() {
		t.Fatal("charon still running after Kill")
	}
	short, cancelShort := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancelShort()
	if err := p.Client.Ping(short, host); err == nil {
		t.Error("ping still answered after the gateway's charon was killed")
	}
}

// TestStrongSwanCookies shows how to make charon demand COOKIEs: with
// cookie_threshold = 1 one half-open IKE SA is enough (0 disables cookies,
// and no setting demands them for the very first IKE_SA_INIT). The
// gateway holds IKE_AUTH requests back (receive_delay), so the first IKE SA
// stays half-open while a second one starts.
func TestStrongSwanCookies(t *testing.T) {
	RequireStrongSwan(t)
	t.Parallel()
	p := NewPair(t)
	protected, pool := p.ProtectedPrefix(), p.PoolPrefix()
	// kernel-libipsec needs a local address inside local_ts for its routes.
	host := netip.PrefixFrom(protected.Addr().Next(), 32)
	p.Gateway.AddLoopbackAddr(t, host)
	StartStrongSwan(t, p.Gateway, SwanConfig{
		Connections: fmt.Sprintf(pskGateway, p.GatewayIP, protected),
		Secrets:     pskSecrets,
		Pools:       fmt.Sprintf("pool4 {\n  addrs = %s\n}", pool),
		// receive_delay holds IKE_AUTH requests back (without blocking the
		// receiver), so the first IKE SA stays half-open for a while.
		CharonOptions: "cookie_threshold = 1\ndos_protection = yes\n" +
			"receive_delay = 1500\nreceive_delay_type = 35\nreceive_delay_request = yes",
	})
	// A second connection with a narrower remote_ts, so that its CHILD SA
	// is not refused as a duplicate of the first one.
	second := strings.Replace(fmt.Sprintf(pskClient, p.GatewayIP, host), "vpn {", "vpn2 {", 1)
	second = strings.Replace(second, "net {", "net2 {", 1)
	// A differing IKE setting, or charon would reuse the first IKE SA.
	second = strings.Replace(second, "version = 2", "version = 2\n  rekey_time = 5h", 1)
	cl := StartStrongSwan(t, p.Client, SwanConfig{
		Connections: fmt.Sprintf(pskClient, p.GatewayIP, protected) + "\n" + second,
		Secrets:     pskSecrets,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Start the first IKE SA without waiting for it, then the second.
	first := cl.swanctlCmd(ctx, "--initiate", "--child", "net", "--ike", "vpn")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Wait() }()
	if _, err := cl.WaitSA(ctx, "vpn", func(sa SA) bool { return sa.State == "CONNECTING" }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the IKE_SA_INIT exchange finish
	if out, err := cl.Initiate(ctx, "vpn2", "net2"); err != nil {
		t.Fatalf("second initiate: %v\n%s", err, out)
	}
	for _, ike := range []string{"vpn", "vpn2"} {
		if _, err := cl.WaitSA(ctx, ike, nil); err != nil {
			t.Fatal(err)
		}
	}
	var cookies []string
	for _, l := range strings.Split(cl.Log(), "\n") {
		if strings.Contains(l, "COOKIE") {
			cookies = append(cookies, l)
		}
	}
	if len(cookies) == 0 {
		t.Errorf("no COOKIE seen by the initiator; log %s", cl.LogPath)
	}
	t.Logf("initiator log lines about cookies:\n%s", strings.Join(cookies, "\n"))
}

// TestStrongSwanCertAuth checks that the PKI's certificates (ECDSA, with an
// intermediate CA on the gateway's side) work with charon.
func TestStrongSwanCertAuth(t *testing.T) {
	RequireStrongSwan(t)
	t.Parallel()
	p := NewPair(t)
	protected := p.ProtectedPrefix()
	host := protected.Addr().Next()
	p.Gateway.AddLoopbackAddr(t, netip.PrefixFrom(host, 32))
	pki := NewPKI(t, "ecdsa")
	gwFiles := pki.SwanFiles("gw", pki.IssueChain(t, 1, "gw.example"))
	clFiles := pki.SwanFiles("client", pki.IssueChain(t, 0, "client.example", "client.example", "user@example.org"))

	StartStrongSwan(t, p.Gateway, SwanConfig{
		Connections: fmt.Sprintf(`rw {
  local_addrs = %s
  pools = pool4
  local {
    auth = pubkey
    certs = gw.pem
    id = gw.example
  }
  remote {
    auth = pubkey
    id = user@example.org
  }
  children {
    net {
      local_ts = %s
    }
  }
}`, p.GatewayIP, protected),
		Pools: fmt.Sprintf("pool4 {\n  addrs = %s\n}", p.PoolPrefix()),
		Files: gwFiles,
	})
	cl := StartStrongSwan(t, p.Client, SwanConfig{
		Connections: fmt.Sprintf(`vpn {
  remote_addrs = %s
  vips = 0.0.0.0
  local {
    auth = pubkey
    certs = client.pem
    id = user@example.org
  }
  remote {
    auth = pubkey
    id = gw.example
  }
  children {
    net {
      remote_ts = %s
    }
  }
}`, p.GatewayIP, protected),
		Files: map[string][]byte{"x509ca/ca.pem": pki.CAPEM, "x509/client.pem": clFiles["x509/client.pem"],
			"private/client.key": clFiles["private/client.key"]},
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
	if sa.RemoteID != "gw.example" || sa.LocalID != "user@example.org" {
		t.Errorf("ids: %q %q", sa.LocalID, sa.RemoteID)
	}
	if err := p.Client.Ping(ctx, host); err != nil {
		t.Fatalf("ping %v through the tunnel: %v", host, err)
	}
}
