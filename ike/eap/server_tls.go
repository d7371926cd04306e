package eap

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// VerifyClient checks an EAP-TLS client's certificate chain (DER, leaf
// first) for the EAP identity it claimed.
type VerifyClient func(chain [][]byte, identity string) error

// EnableTLS lets the server run EAP-TLS (RFC 5216, TLS 1.2) with cfg (the
// gateway's certificate): first when the server has no users, else when
// the peer answers the MSCHAPv2 challenge with a Nak for EAP-TLS. verify
// checks the client certificate against the EAP identity; cfg is cloned.
func (s *Server) EnableTLS(cfg *tls.Config, verify VerifyClient) {
	c := cfg.Clone()
	c.MinVersion = tls.VersionTLS12
	// TLS 1.3 would need RFC 9190's success indication; the client
	// offers 1.2 as well.
	c.MaxVersion = tls.VersionTLS12
	c.SessionTicketsDisabled = true
	c.ClientAuth = tls.RequireAnyClientCert
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		return verify(raw, s.identity)
	}
	s.tlsCfg = c
}

// Close releases an EAP-TLS handshake still in progress.
func (s *Server) Close() {
	if s.tls != nil {
		s.tls.Close()
	}
}

// startTLS sends EAP-TLS Start.
func (s *Server) startTLS() ([]byte, Status, error) {
	s.tls = &tlsEndpoint{cfg: s.tlsCfg, server: true}
	s.tls.cfg.KeyLogWriter = keyLog{s.tls}
	s.tls.begin(func(c *memConn) *tls.Conn { return tls.Server(c, s.tls.cfg) })
	// The server waits for the ClientHello: take that first signal, so
	// that the next one means it answered.
	select {
	case <-s.tls.conn.starved:
	case <-time.After(tlsStepTimeout):
		return s.fail("EAP-TLS: TLS stack did not start")
	}
	s.id++
	s.st = stTLS
	return packet(CodeRequest, s.id, TypeTLS, []byte{tlsFlagStart}), Continue, nil
}

// onTLS takes an EAP-TLS response: a fragment of the client's flight,
// the acknowledgement of one of ours, or the final acknowledgement.
func (s *Server) onTLS(d []byte) ([]byte, Status, error) {
	t := s.tls
	if len(d) < 1 {
		return s.fail("EAP-TLS response without flags")
	}
	flags, d := d[0], d[1:]
	if flags&tlsFlagLength != 0 {
		if len(d) < 4 {
			return s.fail("EAP-TLS length flag without a length")
		}
		n := int(binary.BigEndian.Uint32(d))
		if n > maxTLSMessage || n < len(d)-4 {
			return s.fail(fmt.Sprintf("EAP-TLS message length %d", n))
		}
		if t.in == nil {
			t.inLen = n
		}
		d = d[4:]
	}
	next := func(data []byte) ([]byte, Status, error) {
		s.id++
		return packet(CodeRequest, s.id, TypeTLS, data), Continue, nil
	}
	if len(t.out) > 0 {
		if len(d) != 0 {
			return s.fail("EAP-TLS data while our message was being fragmented")
		}
		return next(t.nextFragment())
	}
	if len(t.in)+len(d) > maxTLSMessage {
		return s.fail("EAP-TLS message too long")
	}
	t.in = append(t.in, d...)
	if flags&tlsFlagMore != 0 {
		return next([]byte{0})
	}
	msg, want := t.in, t.inLen
	t.in, t.inLen = nil, 0
	if want != 0 && len(msg) != want {
		return s.fail(fmt.Sprintf("EAP-TLS message of %d octets, its length field said %d", len(msg), want))
	}
	if len(msg) == 0 {
		if !t.hsOK {
			return s.fail("empty EAP-TLS response before the handshake finished")
		}
		return s.tlsDone()
	}
	if t.hsOK {
		return s.fail("EAP-TLS data after the handshake")
	}
	if err := t.step(msg); err != nil {
		return s.fail(strings.TrimPrefix(err.Error(), "eap: "))
	}
	if len(t.out) == 0 {
		if t.hsOK {
			return s.tlsDone()
		}
		return s.fail("EAP-TLS: the TLS stack has nothing to send")
	}
	return next(t.nextFragment())
}

func (s *Server) tlsDone() ([]byte, Status, error) {
	s.msk = append([]byte(nil), s.tls.msk...)
	s.tls.Close()
	s.st, s.ok = stDone, true
	return []byte{CodeSuccess, s.id + 1, 0, 4}, Succeeded, nil
}

// Method names the method in use: "EAP-TLS" once it started, else
// "EAP-MSCHAPv2".
func (s *Server) Method() string {
	if s.tls != nil {
		return "EAP-TLS"
	}
	return "EAP-MSCHAPv2"
}
