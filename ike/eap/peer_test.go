package eap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestMSCHAPv2PeerRFC2759Vectors drives the peer with the RFC 2759 §9.2
// challenge and peer challenge: its NT-Response and the authenticator
// response it accepts must be the RFC's.
func TestMSCHAPv2PeerRFC2759Vectors(t *testing.T) {
	authChal := unhex(t, "5B5D7C7D7B3F2F3E3C2C602132262628")
	peerChal := unhex(t, "21402324255E262A28295F2B3A337C7E")
	for _, tc := range []struct {
		name, success string
		ok            bool
	}{
		{"ok", "S=407A5589115FD0D6209F510FE9C04566932CDA56 M=welcome", true},
		{"lower case", "S=407a5589115fd0d6209f510fe9c04566932cda56", true},
		{"wrong authenticator", "S=407A5589115FD0D6209F510FE9C04566932CDA57 M=welcome", false},
		{"short", "S=407A", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMSCHAPv2Peer("User", "clientPass", bytes.NewReader(peerChal))
			p := NewPeer("User", m)
			defer p.Close()
			resp, st, err := p.Handle(packet(CodeRequest, 7, TypeIdentity, nil))
			if st != Continue || err != nil || !bytes.Equal(resp, packet(CodeResponse, 7, TypeIdentity, []byte("User"))) {
				t.Fatalf("identity: %x %d %v", resp, st, err)
			}
			chal := append([]byte{opChallenge, 3, 0, 0, 16}, authChal...)
			chal = append(chal, "gw"...)
			chal[3] = byte(len(chal))
			resp, st, err = p.Handle(packet(CodeRequest, 8, TypeMSCHAPv2, chal))
			if st != Continue || err != nil {
				t.Fatalf("challenge: %d %v", st, err)
			}
			d := resp[5:]
			if resp[0] != CodeResponse || resp[1] != 8 || d[0] != opResponse || d[1] != 3 || int(d[3]) != len(d) || d[4] != 49 {
				t.Fatalf("response header %x", resp)
			}
			if !bytes.Equal(d[5:21], peerChal) || !bytes.Equal(d[21:29], make([]byte, 8)) || string(d[54:]) != "User" {
				t.Fatalf("response body %x", d)
			}
			if want := unhex(t, "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"); !bytes.Equal(d[29:53], want) {
				t.Fatalf("NT-Response %X, want %X", d[29:53], want)
			}
			succ := append([]byte{opSuccess, 3, 0, 0}, tc.success...)
			succ[3] = byte(len(succ))
			resp, st, err = p.Handle(packet(CodeRequest, 9, TypeMSCHAPv2, succ))
			if !tc.ok {
				if st != Failed || err == nil || p.MSK() != nil {
					t.Fatalf("wrong authenticator accepted: %x %d %v", resp, st, err)
				}
				return
			}
			if st != Continue || err != nil || !bytes.Equal(resp, packet(CodeResponse, 9, TypeMSCHAPv2, []byte{opSuccess})) {
				t.Fatalf("success: %x %d %v", resp, st, err)
			}
			if p.MSK() != nil {
				t.Fatal("MSK before EAP-Success")
			}
			if _, st, err = p.Handle([]byte{CodeSuccess, 10, 0, 4}); st != Succeeded || err != nil {
				t.Fatalf("EAP-Success: %d %v", st, err)
			}
			want := MSK(NtPasswordHash("clientPass"), unhex(t, "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"))
			if !bytes.Equal(p.MSK(), want) {
				t.Errorf("MSK %X, want %X", p.MSK(), want)
			}
		})
	}
}

// converse runs a Peer against a server step function until the end.
//
//lint:ignore ST1008 the results read in conversation order: peer status, error, server status
func converse(t *testing.T, p *Peer, first []byte, srv func([]byte) ([]byte, Status, error)) (Status, error, Status) {
	t.Helper()
	req := first
	for range 64 {
		resp, st, err := p.Handle(req)
		if st != Continue {
			return st, err, Continue
		}
		next, sst, serr := srv(resp)
		if serr != nil {
			t.Logf("server: %v", serr)
		}
		if serr != nil && sst == Continue {
			t.Fatalf("server: %v", serr)
		}
		req = next
		if sst != Continue {
			st, err := func() (Status, error) { _, st, err := p.Handle(req); return st, err }()
			return st, err, sst
		}
	}
	t.Fatal("no end after 64 rounds")
	return 0, nil, 0
}

// TestMSCHAPv2PeerAgainstServer: our peer and our server agree on the
// MSK; a wrong password ends in ErrRejected without the password in it.
func TestMSCHAPv2PeerAgainstServer(t *testing.T) {
	for _, tc := range []struct {
		user, password string
		ok             bool
	}{{"alice", "s3cret pass", true}, {`CORP\alice`, "s3cret pass", false}, {"alice", "wrong-guess", false}} {
		s := NewServer(users, rand.Reader, "gw")
		first, err := s.Start()
		if err != nil {
			t.Fatal(err)
		}
		p := NewPeer(tc.user, NewMSCHAPv2Peer(tc.user, tc.password, rand.Reader))
		st, err, sst := converse(t, p, first, s.Handle)
		if !tc.ok {
			if st != Failed || !errors.Is(err, ErrRejected) || sst != Failed {
				t.Fatalf("%s/%s: peer %d %v, server %d", tc.user, tc.password, st, err, sst)
			}
			if strings.Contains(err.Error(), tc.password) {
				t.Errorf("error leaks the password: %v", err)
			}
			continue
		}
		if st != Succeeded || err != nil || sst != Succeeded {
			t.Fatalf("peer %d %v, server %d", st, err, sst)
		}
		if len(p.MSK()) != 64 || !bytes.Equal(p.MSK(), s.MSK()) {
			t.Errorf("MSK peer %X server %X", p.MSK(), s.MSK())
		}
		p.Close()
	}
}

// TestMSCHAPv2PeerFailureRequest: the RFC 2759 §6 failure request is
// acknowledged and reported with its code, then EAP-Failure ends it.
func TestMSCHAPv2PeerFailureRequest(t *testing.T) {
	p := NewPeer("bob", NewMSCHAPv2Peer("bob", "pw", rand.Reader))
	chal := append([]byte{opChallenge, 1, 0, 21, 16}, make([]byte, 16)...)
	if _, st, err := p.Handle(packet(CodeRequest, 1, TypeMSCHAPv2, chal)); st != Continue || err != nil {
		t.Fatal(st, err)
	}
	msg := []byte("E=691 R=1 C=00112233445566778899AABBCCDDEEFF V=3 M=bad password")
	fail := append([]byte{opFailure, 1, 0, byte(4 + len(msg))}, msg...)
	resp, st, err := p.Handle(packet(CodeRequest, 2, TypeMSCHAPv2, fail))
	if st != Continue || err != nil || !bytes.Equal(resp, packet(CodeResponse, 2, TypeMSCHAPv2, []byte{opFailure})) {
		t.Fatalf("failure ack: %x %d %v", resp, st, err)
	}
	_, st, err = p.Handle([]byte{CodeFailure, 3, 0, 4})
	if st != Failed || !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "691") || !strings.Contains(err.Error(), "bad password") {
		t.Fatalf("EAP-Failure: %d %v", st, err)
	}
}

func TestPeerRefusesEarlySuccessAndOtherMethods(t *testing.T) {
	p := NewPeer("bob", NewMSCHAPv2Peer("bob", "pw", rand.Reader))
	if _, st, err := p.Handle([]byte{CodeSuccess, 1, 0, 4}); st != Failed || err == nil || p.MSK() != nil {
		t.Fatalf("early success: %d %v", st, err)
	}
	p = NewPeer("bob", NewMSCHAPv2Peer("bob", "pw", rand.Reader))
	resp, st, err := p.Handle(packet(CodeRequest, 5, 4 /* MD5 */, []byte{16}))
	if st != Continue || err != nil || !bytes.Equal(resp, packet(CodeResponse, 5, TypeNak, []byte{TypeMSCHAPv2})) {
		t.Fatalf("MD5 request: %x %d %v", resp, st, err)
	}
	for _, bad := range [][]byte{nil, {1}, {1, 2, 0, 3}, {1, 2, 0, 9, 1}, {1, 2, 0, 4}, {9, 2, 0, 4}, {1, 2, 0, 5, 254}} {
		p := NewPeer("bob", NewMSCHAPv2Peer("bob", "pw", rand.Reader))
		if _, st, err := p.Handle(bad); st != Failed || err == nil {
			t.Errorf("%x: %d %v", bad, st, err)
		}
	}
}

// tlsServer is a test EAP-TLS authenticator around crypto/tls.
type tlsServer struct {
	t      *testing.T
	conn   *memConn
	tc     *tls.Conn
	hs     chan error
	id     uint8
	in     []byte
	out    []byte
	hsDone bool
	frag   int
}

func newTLSServer(t *testing.T, cfg *tls.Config, frag int) (*tlsServer, []byte) {
	s := &tlsServer{t: t, conn: newMemConn(), hs: make(chan error, 1), id: 1, frag: frag}
	s.tc = tls.Server(s.conn, cfg)
	go func() { s.hs <- s.tc.Handshake() }()
	t.Cleanup(func() { s.conn.Close() })
	return s, packet(CodeRequest, s.id, TypeTLS, []byte{tlsFlagStart})
}

func (s *tlsServer) fragment() []byte {
	n := min(len(s.out), s.frag)
	flags := byte(0)
	var body []byte
	if n < len(s.out) {
		flags = tlsFlagMore | tlsFlagLength
		body = []byte{flags, 0, 0, byte(len(s.out) >> 8), byte(len(s.out))}
	} else {
		body = []byte{flags}
	}
	body = append(body, s.out[:n]...)
	s.out = s.out[n:]
	s.id++
	return packet(CodeRequest, s.id, TypeTLS, body)
}

func (s *tlsServer) handle(resp []byte) ([]byte, Status, error) {
	if resp[0] != CodeResponse || resp[1] != s.id || resp[4] != TypeTLS {
		s.t.Fatalf("server got %x", resp)
	}
	d := resp[5:]
	flags, d := d[0], d[1:]
	if flags&tlsFlagLength != 0 {
		d = d[4:]
	}
	if len(s.out) > 0 {
		if len(d) != 0 {
			s.t.Fatalf("data while fragmenting: %x", resp)
		}
		return s.fragment(), Continue, nil
	}
	s.in = append(s.in, d...)
	if flags&tlsFlagMore != 0 {
		s.id++
		return packet(CodeRequest, s.id, TypeTLS, []byte{0}), Continue, nil
	}
	msg := s.in
	s.in = nil
	if len(msg) == 0 {
		if !s.hsDone {
			s.t.Fatal("empty response before the handshake finished")
		}
		s.id++
		return []byte{CodeSuccess, s.id, 0, 4}, Succeeded, nil
	}
	select {
	case <-s.conn.starved: // stale
	default:
	}
	s.conn.feed(msg)
	select {
	case <-s.conn.starved:
	case err := <-s.hs:
		if err != nil {
			s.id++
			return []byte{CodeFailure, s.id, 0, 4}, Failed, err
		}
		s.hsDone = true
	case <-time.After(5 * time.Second):
		s.t.Fatal("server TLS stuck")
	}
	if !s.hsDone {
		select {
		case err := <-s.hs:
			if err != nil {
				s.id++
				return []byte{CodeFailure, s.id, 0, 4}, Failed, err
			}
			s.hsDone = true
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.out = s.conn.take()
	if len(s.out) == 0 {
		if s.hsDone {
			s.id++
			return []byte{CodeSuccess, s.id, 0, 4}, Succeeded, nil
		}
		s.t.Fatal("server has nothing to say")
	}
	return s.fragment(), Continue, nil
}

// testCert issues a self-signed P-256 certificate for name.
func testCert(t *testing.T, name string) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, pool
}

// TestTLSPeer runs EAP-TLS against crypto/tls as the server, with small
// and large fragments, TLS 1.2 and 1.3: the peer's MSK must be what the
// server's own exporter computes (RFC 5216 §2.3: with the extended master
// secret Go exports the TLS 1.2 PRF over the master secret; RFC 9190).
func TestTLSPeer(t *testing.T) {
	srvCert, srvPool := testCert(t, "gw.example")
	cliCert, cliPool := testCert(t, "client.example")
	for _, tc := range []struct {
		name    string
		version uint16
		frag    int
	}{{"tls12-frag300", tls.VersionTLS12, 300}, {"tls12-nofrag", tls.VersionTLS12, 1 << 16}, {"tls13-frag500", tls.VersionTLS13, 500}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, first := newTLSServer(t, &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert,
				ClientCAs: cliPool, MinVersion: tc.version, MaxVersion: tc.version}, tc.frag)
			m, err := NewTLSPeer(&tls.Config{Certificates: []tls.Certificate{cliCert}, RootCAs: srvPool, ServerName: "gw.example", MaxVersion: tc.version})
			if err != nil {
				t.Fatal(err)
			}
			p := NewPeer("client.example", m)
			defer p.Close()
			st, err, sst := converse(t, p, first, srv.handle)
			if st != Succeeded || err != nil || sst != Succeeded {
				t.Fatalf("peer %d %v, server %d", st, err, sst)
			}
			cs := srv.tc.ConnectionState()
			var want []byte
			if tc.version == tls.VersionTLS13 {
				want, err = cs.ExportKeyingMaterial("EXPORTER_EAP_TLS_Key_Material", []byte{TypeTLS}, 128)
			} else {
				want, err = cs.ExportKeyingMaterial("client EAP encryption", nil, 128)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.MSK(), want[:64]) {
				t.Errorf("MSK %X, want %X", p.MSK(), want[:64])
			}
		})
	}
}

// TestTLSPeerUntrustedServer: a gateway certificate outside our roots
// fails the handshake with a clear error.
func TestTLSPeerUntrustedServer(t *testing.T) {
	srvCert, _ := testCert(t, "gw.example")
	cliCert, _ := testCert(t, "client.example")
	_, otherPool := testCert(t, "other")
	srv, first := newTLSServer(t, &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAnyClientCert}, 1<<16)
	m, _ := NewTLSPeer(&tls.Config{Certificates: []tls.Certificate{cliCert}, RootCAs: otherPool, ServerName: "gw.example"})
	p := NewPeer("client.example", m)
	defer p.Close()
	st, err, sst := converse(t, p, first, srv.handle)
	if st != Failed || sst != Failed || err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") || errors.Is(err, ErrRejected) {
		t.Fatalf("peer %d %v, server %d", st, err, sst)
	}
}

// TestServerTLS runs our EAP-TLS peer against our EAP-TLS server: alone,
// and offered after a Nak of MSCHAPv2; both ends derive the same MSK and
// the client certificate is checked against the EAP identity.
func TestServerTLS(t *testing.T) {
	srvCert, srvPool := testCert(t, "gw.example")
	cliCert, cliPool := testCert(t, "client.example")
	for _, tc := range []struct {
		name     string
		users    Users
		identity string
		ok       bool
	}{{"tls only", nil, "client.example", true}, {"nak from mschapv2", users, "client.example", true}, {"identity not in cert", nil, "bob", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer(tc.users, rand.Reader, "gw")
			var seen string
			s.EnableTLS(&tls.Config{Certificates: []tls.Certificate{srvCert}}, func(chain [][]byte, identity string) error {
				seen = identity
				c, err := x509.ParseCertificate(chain[0])
				if err != nil {
					return err
				}
				if _, err := c.Verify(x509.VerifyOptions{Roots: cliPool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
					return err
				}
				return c.VerifyHostname(identity)
			})
			defer s.Close()
			first, err := s.Start()
			if err != nil {
				t.Fatal(err)
			}
			m, _ := NewTLSPeer(&tls.Config{Certificates: []tls.Certificate{cliCert}, RootCAs: srvPool, ServerName: "gw.example"})
			p := NewPeer(tc.identity, m)
			defer p.Close()
			st, err, sst := converse(t, p, first, s.Handle)
			if seen != tc.identity {
				t.Errorf("verify saw identity %q", seen)
			}
			if !tc.ok {
				if st != Failed || sst != Failed {
					t.Fatalf("peer %d %v, server %d", st, err, sst)
				}
				return
			}
			if st != Succeeded || err != nil || sst != Succeeded {
				t.Fatalf("peer %d %v, server %d", st, err, sst)
			}
			if len(p.MSK()) != 64 || !bytes.Equal(p.MSK(), s.MSK()) {
				t.Errorf("MSK peer %X, server %X", p.MSK(), s.MSK())
			}
		})
	}
}
