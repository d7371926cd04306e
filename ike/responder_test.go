package ike

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// leakCheck fails the test if it leaves goroutines behind. Call it first:
// its cleanup then runs after all others.
func leakCheck(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf)
		}
	})
}

func gwProposals(t *testing.T, esp bool, ss ...string) []ikecrypto.Proposal {
	t.Helper()
	var out []ikecrypto.Proposal
	for _, s := range ss {
		p, err := ikecrypto.ParseProposal(s, esp)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func gwAddr(tr *Transport) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), tr.LocalPort())
}

var (
	gwClientID = auth.ParseIdentity("client.example")
	gwLocalID  = auth.ParseIdentity("gw.example")
)

// testGateway is a Responder on loopback.
type testGateway struct {
	r    *Responder
	tr   *Transport
	addr netip.AddrPort
}

func startGateway(t *testing.T, mutate func(*ResponderConfig)) *testGateway {
	t.Helper()
	tr := listen(t)
	cfg := &ResponderConfig{
		LocalID: gwLocalID,
		PSK: func(id auth.Identity) []byte {
			if id.Equal(gwClientID) {
				return []byte("secret")
			}
			return nil
		},
		IKEProposals: gwProposals(t, false, "aes256gcm16-prfsha256-x25519"),
		ESPProposals: gwProposals(t, true, "aes256gcm16"),
		Pool4:        netip.MustParsePrefix("10.100.0.0/24"),
		Pool6:        netip.MustParsePrefix("fd00:100::/120"),
		DNS:          []netip.Addr{netip.MustParseAddr("10.100.0.53"), netip.MustParseAddr("fd00:100::53")},
		LocalTS:      []netip.Prefix{netip.MustParsePrefix("10.200.0.0/24"), netip.MustParsePrefix("fd00:200::/64")},
		Retransmit:   Retransmit{Timeout: 200 * time.Millisecond, Base: 1.5, Tries: 5},
		Workers:      2,
	}
	if mutate != nil {
		mutate(cfg)
	}
	r, err := NewResponder(cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		for s := range r.Sessions() {
			s.Abandon(ErrClosed)
		}
	})
	return &testGateway{r: r, tr: tr, addr: gwAddr(tr)}
}

func gwClientConfig(t *testing.T, ike string, esp string) *Config {
	t.Helper()
	return &Config{
		LocalID:      gwClientID,
		RemoteID:     gwLocalID,
		PSK:          []byte("secret"),
		IKEProposals: gwProposals(t, false, strings.Split(ike, ",")...),
		ESPProposals: gwProposals(t, true, strings.Split(esp, ",")...),
		TSi:          []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")},
		TSr:          []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		RequestIPv4:  true,
		Retransmit:   Retransmit{Timeout: 200 * time.Millisecond, Base: 1.5, Tries: 5},
	}
}

// gwConnect runs a client handshake against g and returns both ends.
func gwConnect(t *testing.T, g *testGateway, cfg *Config) (client, server *Session) {
	t.Helper()
	client, err := gwDial(t, g.addr, cfg)
	if err != nil {
		t.Fatalf("Initiate: %v", err)
	}
	select {
	case server = <-g.r.Sessions():
	case <-time.After(5 * time.Second):
		t.Fatal("the responder delivered no session")
	}
	t.Cleanup(func() { server.Abandon(ErrClosed) })
	return client, server
}

// gwDial runs Initiate from a new transport towards to.
func gwDial(t *testing.T, to netip.AddrPort, cfg *Config) (*Session, error) {
	t.Helper()
	ctr := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Initiate(ctx, cfg, ctr, to)
	if err == nil {
		t.Cleanup(func() { s.Abandon(ErrClosed) })
	}
	return s, err
}

// checkChildMirror checks that two ends of a Child SA fit together.
func checkChildMirror(t *testing.T, c, s *ChildSA) {
	t.Helper()
	if c == nil || s == nil {
		t.Fatalf("missing child SA: client %v, server %v", c, s)
	}
	if c.SPIIn != s.SPIOut || c.SPIOut != s.SPIIn {
		t.Errorf("child SPIs: client in/out %08x/%08x, server in/out %08x/%08x", c.SPIIn, c.SPIOut, s.SPIIn, s.SPIOut)
	}
	if c.Suite != s.Suite {
		t.Errorf("child suites differ: %v vs %v", c.Suite, s.Suite)
	}
	if len(c.EncrOut) == 0 || !bytes.Equal(c.EncrOut, s.EncrIn) || !bytes.Equal(c.EncrIn, s.EncrOut) ||
		!bytes.Equal(c.IntegOut, s.IntegIn) || !bytes.Equal(c.IntegIn, s.IntegOut) {
		t.Errorf("child keys do not mirror")
	}
	if bytes.Equal(c.EncrOut, c.EncrIn) {
		t.Errorf("both directions use the same key")
	}
	if c.Encap != s.Encap {
		t.Errorf("encapsulation: client %v, server %v", c.Encap, s.Encap)
	}
	// TSi is the client's side on both ends, after rekeys by either too.
	if fmt.Sprint(c.TSi) != fmt.Sprint(s.TSi) || fmt.Sprint(c.TSr) != fmt.Sprint(s.TSr) || len(c.TSi) == 0 || len(c.TSr) == 0 {
		t.Errorf("traffic selectors: client TSi %v TSr %v, server TSi %v TSr %v", c.TSi, c.TSr, s.TSi, s.TSr)
	}
}

func checkSessionMirror(t *testing.T, c, s *Session) {
	t.Helper()
	if c.SPIi != s.SPIi || c.SPIr != s.SPIr || c.SPIi == 0 || c.SPIr == 0 {
		t.Errorf("IKE SPIs: client %016x/%016x, server %016x/%016x", c.SPIi, c.SPIr, s.SPIi, s.SPIr)
	}
	if c.Suite != s.Suite {
		t.Errorf("IKE suites differ: %v vs %v", c.Suite, s.Suite)
	}
	if !s.PeerID.Equal(gwClientID) || !c.PeerID.Equal(gwLocalID) {
		t.Errorf("peer identities: server sees %s, client sees %s", s.PeerID, c.PeerID)
	}
	checkChildMirror(t, c.Child, s.Child)
	for _, pair := range [][2][]wire.Selector{{c.Child.TSi, s.Child.TSi}, {c.Child.TSr, s.Child.TSr}} {
		if !slices.EqualFunc(pair[0], pair[1], selectorEqual) {
			t.Errorf("traffic selectors differ: %v vs %v", pair[0], pair[1])
		}
	}
}

// testPKI is a CA with certificates for both ends.
type testPKI struct {
	ca                  *x509.Certificate
	caKey               crypto.Signer
	gwKey, clientKey    crypto.Signer
	gwChain, clientDERs [][]byte
}

func newPKI(t *testing.T, useRSA bool) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{ca: ca, caKey: caKey}
	p.gwKey, p.gwChain = p.issue(t, useRSA, "gw.example", 2)
	p.clientKey, p.clientDERs = p.issue(t, useRSA, "client.example", 3)
	return p
}

func (p *testPKI) issue(t *testing.T, useRSA bool, name string, serial int64) (crypto.Signer, [][]byte) {
	t.Helper()
	var key crypto.Signer
	var err error
	if useRSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, [][]byte{der}
}

// useCerts switches both ends to certificate authentication.
func (p *testPKI) useCerts(rc *ResponderConfig, cc *Config) {
	rc.Signer, rc.CertChain, rc.CAs = p.gwKey, p.gwChain, []*x509.Certificate{p.ca}
	cc.PSK = nil
	cc.Signer, cc.CertChain, cc.CAs = p.clientKey, p.clientDERs, []*x509.Certificate{p.ca}
}

func TestResponderHandshake(t *testing.T) {
	leakCheck(t)
	pkis := map[string]*testPKI{"ecdsa": newPKI(t, false), "rsa": newPKI(t, true)}
	suites := []struct{ ike, esp string }{
		{"aes256gcm16-prfsha256-x25519", "aes256gcm16"},
		{"aes256-sha256-modp2048", "aes256-sha256"},
		{"chacha20poly1305-prfsha256-ecp256", "chacha20poly1305"},
	}
	for i, sc := range suites {
		for _, authMode := range []string{"psk", "ecdsa", "rsa"} {
			encap := (i+len(authMode))%2 == 0
			t.Run(sc.ike+"/"+authMode, func(t *testing.T) {
				cc := gwClientConfig(t, sc.ike, sc.esp)
				cc.ForceEncap = encap
				if i == 2 {
					cc.RequestIPv6 = true
					cc.TSi = append(cc.TSi, netip.MustParsePrefix("::/0"))
					cc.TSr = append(cc.TSr, netip.MustParsePrefix("fd00::/8"))
				}
				g := startGateway(t, func(rc *ResponderConfig) {
					rc.IKEProposals = gwProposals(t, false, sc.ike)
					rc.ESPProposals = gwProposals(t, true, sc.esp)
					if p := pkis[authMode]; p != nil {
						p.useCerts(rc, cc)
						rc.PSK = nil
					}
				})
				c, s := gwConnect(t, g, cc)
				checkSessionMirror(t, c, s)
				if c.Child.Encap != encap {
					t.Errorf("child Encap = %v, want %v", c.Child.Encap, encap)
				}
				want := []netip.Prefix{netip.MustParsePrefix("10.100.0.1/32")}
				wantTSr := []netip.Prefix{netip.MustParsePrefix("10.200.0.0/24")}
				wantDNS := []netip.Addr{netip.MustParseAddr("10.100.0.53")}
				if cc.RequestIPv6 {
					want = append(want, netip.MustParsePrefix("fd00:100::1/128"))
					wantTSr = append(wantTSr, netip.MustParsePrefix("fd00:200::/64"))
					wantDNS = append(wantDNS, netip.MustParseAddr("fd00:100::53"))
				}
				if !slices.Equal(c.VirtualIPs, want) || !slices.Equal(s.VirtualIPs, want) {
					t.Errorf("virtual IPs: client %v, server %v, want %v", c.VirtualIPs, s.VirtualIPs, want)
				}
				if !slices.Equal(c.DNS, wantDNS) {
					t.Errorf("DNS = %v, want %v", c.DNS, wantDNS)
				}
				if got := Prefixes(c.Child.TSi); !slices.Equal(got, want) {
					t.Errorf("TSi = %v, want %v", got, want)
				}
				if got := Prefixes(c.Child.TSr); !slices.Equal(got, wantTSr) {
					t.Errorf("TSr = %v, want %v", got, wantTSr)
				}
				if st := g.r.Stats(); st.Established != 1 || st.HalfOpen != 0 {
					t.Errorf("stats %+v", st)
				}
			})
		}
	}
}

// rawPeer sends hand-made IKE_SA_INIT requests.
type rawPeer struct {
	t    *testing.T
	conn *net.UDPConn
	to   netip.AddrPort
	ke   ikecrypto.KeyExchange
	ni   []byte
}

func newRawPeer(t *testing.T, to netip.AddrPort) *rawPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ke, err := ikecrypto.NewKeyExchange(ikecrypto.GroupCurve25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &rawPeer{t: t, conn: c, to: to, ke: ke, ni: bytes.Repeat([]byte{7}, 32)}
}

// request builds an IKE_SA_INIT request offering aes256gcm16-prfsha256-x25519.
func (p *rawPeer) request(spii uint64, cookie []byte) []byte {
	p.t.Helper()
	var ps []wire.Payload
	if cookie != nil {
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyCookie, Data: cookie})
	}
	ps = append(ps,
		&wire.SA{Proposals: wireProposals(gwProposals(p.t, false, "aes256gcm16-prfsha256-x25519"), wire.ProtoIKE, nil)},
		&wire.KE{Group: p.ke.Group(), Data: p.ke.PublicKey()},
		&wire.Nonce{Data: p.ni})
	m := wire.Message{Header: wire.Header{SPIi: spii, Version: wire.Version2, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagInitiator}, Payloads: ps}
	raw, err := m.Encode()
	if err != nil {
		p.t.Fatal(err)
	}
	return raw
}

// exchange sends raw and returns the response and its bytes.
func (p *rawPeer) exchange(raw []byte) (*wire.Message, []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(raw, p.to); err != nil {
		p.t.Fatal(err)
	}
	buf := make([]byte, 65536)
	p.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		p.t.Fatalf("no response: %v", err)
	}
	m, err := wire.Parse(buf[:n])
	if err != nil {
		p.t.Fatal(err)
	}
	return m, buf[:n]
}

// expectCookie sends a request and wants a COOKIE back.
func (p *rawPeer) expectCookie(spii uint64, cookie []byte) []byte {
	p.t.Helper()
	m, _ := p.exchange(p.request(spii, cookie))
	n := m.Notify(wire.NotifyCookie)
	if n == nil || m.Header.SPIr != 0 || len(m.Payloads) != 1 {
		p.t.Fatalf("want a COOKIE response, got %s", m)
	}
	return n.Data
}

// expectSA sends a request and wants a new IKE SA.
func (p *rawPeer) expectSA(spii uint64, cookie []byte) *wire.Message {
	p.t.Helper()
	m, _ := p.exchange(p.request(spii, cookie))
	if m.Header.SPIr == 0 || wire.Find[*wire.SA](m.Payloads) == nil {
		p.t.Fatalf("want an IKE SA, got %s", m)
	}
	return m
}

func gwWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestResponderCookies(t *testing.T) {
	leakCheck(t)
	t.Run("threshold 0", func(t *testing.T) {
		g := startGateway(t, nil)
		p := newRawPeer(t, g.addr)
		for spi := uint64(1); spi <= 3; spi++ {
			p.expectSA(spi, nil)
		}
		gwConnect(t, g, gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16"))
		if st := g.r.Stats(); st.CookiesSent != 0 || st.HalfOpen != 3 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("forced", func(t *testing.T) {
		g := startGateway(t, func(rc *ResponderConfig) { rc.CookieThreshold = 1 })
		p := newRawPeer(t, g.addr)
		p.expectSA(1, nil) // the first half-open SA needs no cookie
		cookie := p.expectCookie(2, nil)
		p.expectCookie(2, []byte("forged cookie"))
		p.expectCookie(3, cookie) // bound to SPIi
		p.expectSA(2, cookie)
		c, s := gwConnect(t, g, gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16"))
		checkSessionMirror(t, c, s)
		if st := g.r.Stats(); st.CookiesSent != 4 || st.HalfOpen != 2 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("rotation", func(t *testing.T) {
		var mu sync.Mutex
		now := time.Now()
		clock := func(d time.Duration) {
			mu.Lock()
			now = now.Add(d)
			mu.Unlock()
		}
		g := startGateway(t, func(rc *ResponderConfig) {
			rc.CookieThreshold = 1
			rc.Now = func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				return now
			}
		})
		p := newRawPeer(t, g.addr)
		p.expectSA(1, nil)
		cookie := p.expectCookie(2, nil)
		clock(cookieRotation)
		p.expectSA(2, cookie) // the previous secret still counts
		cookie = p.expectCookie(3, nil)
		clock(2 * cookieRotation)
		p.expectCookie(3, cookie) // too old
	})
}

func TestResponderRetransmittedInit(t *testing.T) {
	leakCheck(t)
	g := startGateway(t, nil)
	p := newRawPeer(t, g.addr)
	req := p.request(42, nil)
	_, first := p.exchange(req)
	first = bytes.Clone(first)
	_, again := p.exchange(req)
	if !bytes.Equal(first, again) {
		t.Error("a retransmitted IKE_SA_INIT got a different response")
	}
	if st := g.r.Stats(); st.HalfOpen != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestResponderHalfOpenTimeout(t *testing.T) {
	leakCheck(t)
	g := startGateway(t, func(rc *ResponderConfig) { rc.HalfOpenTimeout = 100 * time.Millisecond })
	p := newRawPeer(t, g.addr)
	p.expectSA(1, nil)
	if st := g.r.Stats(); st.HalfOpen != 1 {
		t.Fatalf("stats %+v", st)
	}
	gwWaitFor(t, "the half-open SA to expire", func() bool { return g.r.Stats().HalfOpen == 0 })
}

func TestResponderKeyExchange(t *testing.T) {
	leakCheck(t)
	cases := []struct {
		name      string
		gw        []string
		client    string
		wantDH    uint16
		invalidKE uint64
	}{
		{"gateway wants ecp256", []string{"aes256gcm16-prfsha256-ecp256"}, "aes256gcm16-prfsha256-x25519-ecp256", ikecrypto.GroupECP256, 1},
		{"initiator's group taken when acceptable", []string{"aes256gcm16-prfsha256-ecp256-x25519"}, "aes256gcm16-prfsha256-x25519-ecp256", ikecrypto.GroupCurve25519, 0},
		{"configured order wins", []string{"aes256-sha256-modp2048", "aes256gcm16-prfsha256-x25519"},
			"aes256gcm16-prfsha256-x25519,aes256-sha256-modp2048", ikecrypto.GroupMODP2048, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, func(rc *ResponderConfig) { rc.IKEProposals = gwProposals(t, false, tc.gw...) })
			c, s := gwConnect(t, g, gwClientConfig(t, tc.client, "aes256gcm16"))
			checkSessionMirror(t, c, s)
			if c.Suite.DH != tc.wantDH {
				t.Errorf("group %d, want %d", c.Suite.DH, tc.wantDH)
			}
			if st := g.r.Stats(); st.InvalidKE != tc.invalidKE {
				t.Errorf("INVALID_KE_PAYLOAD sent %d times, want %d", st.InvalidKE, tc.invalidKE)
			}
		})
	}
	t.Run("no proposal chosen", func(t *testing.T) {
		g := startGateway(t, nil)
		_, err := gwDial(t, g.addr, gwClientConfig(t, "aes128-sha1-modp2048", "aes256gcm16"))
		if !errors.Is(err, ErrNoProposalChosen) {
			t.Errorf("err = %v, want ErrNoProposalChosen", err)
		}
	})
	t.Run("no ESP proposal chosen", func(t *testing.T) {
		g := startGateway(t, nil)
		_, err := gwDial(t, g.addr, gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes128-sha1"))
		var ne *NotifyError
		if !errors.As(err, &ne) || ne.Type != wire.NotifyNoProposalChosen {
			t.Errorf("err = %v, want NO_PROPOSAL_CHOSEN", err)
		}
		if st := g.r.Stats(); st.ChildFailed != 1 || st.Established != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestResponderAuthFailures(t *testing.T) {
	leakCheck(t)
	pki := newPKI(t, false)
	other := newPKI(t, false)
	cases := []struct {
		name   string
		gw     func(*ResponderConfig)
		client func(*Config)
	}{
		{"wrong PSK", nil, func(c *Config) { c.PSK = []byte("guess") }},
		{"unknown identity", nil, func(c *Config) { c.LocalID = auth.ParseIdentity("stranger.example") }},
		{"other gateway identity", nil, func(c *Config) { c.RemoteID = auth.ParseIdentity("other.example") }},
		{"certificate from another CA", func(rc *ResponderConfig) {
			rc.Signer, rc.CertChain, rc.CAs = pki.gwKey, pki.gwChain, []*x509.Certificate{pki.ca}
		}, func(c *Config) {
			c.PSK = nil
			c.Signer, c.CertChain, c.CAs = other.clientKey, other.clientDERs, []*x509.Certificate{pki.ca}
		}},
		{"PSK client, certificate-only gateway", func(rc *ResponderConfig) {
			rc.PSK = nil
			rc.Signer, rc.CertChain, rc.CAs = pki.gwKey, pki.gwChain, []*x509.Certificate{pki.ca}
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, tc.gw)
			cc := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
			if tc.client != nil {
				tc.client(cc)
			}
			_, err := gwDial(t, g.addr, cc)
			if !errors.Is(err, ErrAuthenticationFailed) {
				t.Fatalf("err = %v, want ErrAuthenticationFailed", err)
			}
			if st := g.r.Stats(); st.AuthFailed != 1 || st.HalfOpen != 0 || st.Established != 0 {
				t.Errorf("stats %+v", st)
			}
			select {
			case s := <-g.r.Sessions():
				t.Errorf("a session was established with %s", s.PeerID)
			case <-time.After(50 * time.Millisecond):
			}
		})
	}
}

func TestNewResponderChecksConfig(t *testing.T) {
	tr := listen(t)
	ok := func() *ResponderConfig {
		return &ResponderConfig{LocalID: gwLocalID, PSK: func(auth.Identity) []byte { return nil },
			IKEProposals: gwProposals(t, false, "aes256gcm16-prfsha256-x25519"), ESPProposals: gwProposals(t, true, "aes256gcm16")}
	}
	for _, tc := range []struct {
		want   string
		mutate func(*ResponderConfig)
	}{
		{"LocalID", func(c *ResponderConfig) { c.LocalID = auth.Identity{} }},
		{"IKE proposals", func(c *ResponderConfig) { c.IKEProposals = nil }},
		{"ESP proposals", func(c *ResponderConfig) { c.ESPProposals = nil }},
		{"neither PSK nor Signer", func(c *ResponderConfig) { c.PSK = nil }},
		{"Pool4", func(c *ResponderConfig) { c.Pool4 = netip.MustParsePrefix("fd00::/64") }},
		{"Pool6", func(c *ResponderConfig) { c.Pool6 = netip.MustParsePrefix("10.0.0.0/8") }},
		{"retransmission", func(c *ResponderConfig) { c.Retransmit = Retransmit{Timeout: time.Second} }},
	} {
		cfg := ok()
		tc.mutate(cfg)
		if _, err := NewResponder(cfg, tr); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v", tc.want, err)
		}
	}
}

func TestNarrowTS(t *testing.T) {
	sel := func(typ uint8, proto uint8, lo, hi string, p0, p1 uint16) wire.Selector {
		return wire.Selector{Type: typ, IPProtocol: proto, StartPort: p0, EndPort: p1,
			Start: netip.MustParseAddr(lo), End: netip.MustParseAddr(hi)}
	}
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	v4 := wire.TSIPv4AddrRange
	got := narrowTS([]wire.Selector{sel(v4, 6, "0.0.0.0", "255.255.255.255", 80, 80)}, pfx("10.1.0.0/16", "fd00::/8"))
	want := []wire.Selector{sel(v4, 6, "10.1.0.0", "10.1.255.255", 80, 80)}
	if !slices.EqualFunc(got, want, selectorEqual) {
		t.Errorf("narrowed to %v, want %v", got, want)
	}
	got = narrowTS([]wire.Selector{sel(v4, 0, "10.0.0.5", "10.0.0.20", 0, 65535)}, pfx("10.0.0.16/28", "10.0.0.0/30"))
	want = []wire.Selector{sel(v4, 0, "10.0.0.16", "10.0.0.20", 0, 65535)}
	if !slices.EqualFunc(got, want, selectorEqual) {
		t.Errorf("narrowed to %v, want %v", got, want)
	}
	if got := narrowTS([]wire.Selector{sel(v4, 0, "192.168.0.0", "192.168.0.255", 0, 65535)}, pfx("10.0.0.0/8")); len(got) != 0 {
		t.Errorf("disjoint selectors narrowed to %v", got)
	}
}

func TestAddrPool(t *testing.T) {
	p := newAddrPool(netip.MustParsePrefix("10.0.0.0/30"))
	a1, l1, ok1 := p.take("a", netip.Addr{})
	a2, _, ok2 := p.take("b", netip.MustParseAddr("10.0.0.2"))
	_, _, ok3 := p.take("c", netip.Addr{})
	if !ok1 || !ok2 || ok3 || a1 != netip.MustParseAddr("10.0.0.1") || a2 != netip.MustParseAddr("10.0.0.2") {
		t.Fatalf("took %v %v %v %v, then %v", a1, ok1, a2, ok2, ok3)
	}
	// A lease is free again once its session has ended; its peer gets it back.
	s := &Session{done: make(chan struct{})}
	l1.s = s
	if _, _, ok := p.take("c", netip.Addr{}); ok {
		t.Fatal("took an address of a live session")
	}
	close(s.done)
	if a, _, ok := p.take("a", netip.Addr{}); !ok || a != a1 {
		t.Errorf("peer a got %v %v back, want %v", a, ok, a1)
	}
	single := newAddrPool(netip.MustParsePrefix("10.9.9.9/32"))
	if a, _, ok := single.take("x", netip.Addr{}); !ok || a != netip.MustParseAddr("10.9.9.9") {
		t.Errorf("a /32 pool gave %v %v", a, ok)
	}
}
