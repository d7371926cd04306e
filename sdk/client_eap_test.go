package sdk_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/gateway"
	"github.com/qcdvpn/qcdvpn/ike"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// eapPKI writes a CA and a gw.example certificate and key into dir.
func eapPKI(t *testing.T, dir string) (caPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "EAP test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	gwKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	gwT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gw.example"}, DNSNames: []string{"gw.example"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	gwDER, err := x509.CreateCertificate(rand.Reader, gwT, ca, gwKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(gwKey)
	for name, b := range map[string][]byte{
		"gw.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: gwDER}),
		"gw.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

// freeLoopback returns a 127.x.y.1 with port 4500 free.
func freeLoopback(t *testing.T) netip.Addr {
	for range 100 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		a := netip.AddrFrom4([4]byte{127, 16 + b[0]%224, b[1], 1})
		if c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 4500))); err == nil {
			c.Close()
			return a
		}
	}
	t.Fatal("no free loopback address")
	return netip.Addr{}
}

// TestClientEAPMSCHAPv2 runs the SDK with an eap-mschapv2 profile against
// our in-process gateway (netstack, echo on 10.200.0.1:7): the right
// password carries traffic; a wrong one fails Connect at once with
// ErrCredentialsRejected, one connect_failed "authentication failed" and
// no attempt on the second gateway of the list.
func TestClientEAPMSCHAPv2(t *testing.T) {
	dir := t.TempDir()
	caPEM := eapPKI(t, dir)
	addr := netip.AddrPortFrom(freeLoopback(t), 4500)
	listening := make(chan struct{})
	var once sync.Once
	g, err := gateway.New(&gateway.Config{
		Listen: []string{addr.String()}, ID: "gw.example",
		Auth: gateway.AuthConfig{Method: "pubkey", Cert: filepath.Join(dir, "gw.pem"), Key: filepath.Join(dir, "gw.key"),
			EAP: &gateway.EAPConfig{Users: map[string]string{"alice": "correct horse"}}},
		Pool: []string{"10.100.0.0/24"}, LocalTS: []string{"10.200.0.0/24"},
		IKEProposals: []string{"aes256gcm16-prfsha256-x25519"}, ESPProposals: []string{"aes256gcm16"},
		Data: "netstack", StateDir: t.TempDir(),
	}, gateway.Options{OnEvent: func(e gateway.Event) {
		if e.Type == "listening" {
			once.Do(func() { close(listening) })
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-listening:
	case <-time.After(5 * time.Second):
		t.Fatal("gateway: no listening event")
	}

	silent := netip.AddrPortFrom(freeLoopback(t), 4500)
	profile := func(password string) *sdk.Profile {
		return &sdk.Profile{Name: "eap", Gateways: []string{addr.String(), silent.String()},
			RemoteID: "gw.example", LocalID: "client.example", CA: string(caPEM),
			Auth:         sdk.Auth{Method: sdk.AuthEAPMSCHAPv2, Username: "alice", Password: password},
			IKEProposals: []string{"aes256gcm16-prfsha256-x25519"}, ESPProposals: []string{"aes256gcm16"},
			Traffic: sdk.Traffic{Include: []string{"10.200.0.0/24"}}, StateDir: t.TempDir(),
			Timers: sdk.Timers{RetransmitTimeout: "200ms", RetransmitTries: 3}}
	}
	var mu sync.Mutex
	var events []sdk.Event
	onEvent := func(e sdk.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }

	c, err := sdk.NewClient(profile("correct horse"), sdk.Options{DataPlane: sdk.DataPlaneNetstack, OnEvent: onEvent})
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if err := c.Connect(cctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	conn, err := c.Net().DialUDPAddrPort(netip.AddrPort{}, netip.MustParseAddrPort("10.200.0.1:7"))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if _, err := conn.Write([]byte("eap echo")); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "eap echo" {
		t.Fatalf("echo through the tunnel: %q %v", buf[:n], err)
	}
	conn.Close()
	c.Close()

	mu.Lock()
	events = nil
	mu.Unlock()
	c, err = sdk.NewClient(profile("wrong horse"), sdk.Options{DataPlane: sdk.DataPlaneNetstack, OnEvent: onEvent})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.Connect(cctx)
	took := time.Since(start)
	c.Close()
	if !errors.Is(err, ike.ErrCredentialsRejected) || !errors.Is(err, ike.ErrAuthenticationFailed) {
		t.Fatalf("Connect with a wrong password: %v", err)
	}
	if took > 2*time.Second {
		t.Errorf("took %s", took)
	}
	mu.Lock()
	defer mu.Unlock()
	var connecting, failed int
	for _, e := range events {
		switch e.Type {
		case sdk.EventConnecting:
			connecting++
			if e.Gateway == silent.String() {
				t.Errorf("tried the second gateway after the credentials were refused")
			}
		case sdk.EventConnectFailed:
			failed++
			if e.Reason != sdk.ReasonAuthenticationFailed {
				t.Errorf("connect_failed reason %q", e.Reason)
			}
		}
	}
	if connecting != 1 || failed != 1 {
		t.Errorf("%d connecting, %d connect_failed events, want 1 and 1: %v", connecting, failed, events)
	}
}
