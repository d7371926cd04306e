package ike

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

// eapGateway is our responder with a certificate and EAP-MSCHAPv2 users.
func eapGateway(t *testing.T, pki *testPKI) *testGateway {
	return startGateway(t, func(rc *ResponderConfig) {
		rc.PSK = nil
		rc.Signer, rc.CertChain = pki.gwKey, pki.gwChain
		rc.EAPUsers = func(id string) (string, bool) { return "pw of alice", id == "alice" }
	})
}

func eapClientConfig(t *testing.T, pki *testPKI, user, password string) *Config {
	cc := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	cc.PSK = nil
	cc.CAs = append(cc.CAs, pki.ca)
	cc.EAP = &EAPConfig{Method: EAPMSCHAPv2, Identity: user, Password: password}
	return cc
}

// TestInitiatorEAPMSCHAPv2 connects our initiator to our responder with
// EAP-MSCHAPv2: six IKE_AUTH round trips, both AUTHs keyed with the MSK,
// a working session afterwards (its next request, the Delete, uses the
// message ID after the last IKE_AUTH and is answered).
func TestInitiatorEAPMSCHAPv2(t *testing.T) {
	leakCheck(t)
	pki := newPKI(t, false)
	g := eapGateway(t, pki)
	c, s := gwConnect(t, g, eapClientConfig(t, pki, "alice", "pw of alice"))
	if s.PeerID.String() != "alice" || !c.PeerID.Equal(gwLocalID) {
		t.Errorf("peers: gateway sees %s, client sees %s", s.PeerID, c.PeerID)
	}
	if c.SPIi != s.SPIi || c.SPIr != s.SPIr {
		t.Errorf("SPIs differ")
	}
	checkChildMirror(t, c.Child, s.Child)
	if len(c.VirtualIPs) != 1 {
		t.Errorf("virtual IPs %v", c.VirtualIPs)
	}
	c.Start(Hooks{}, Timers{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close (Delete after EAP): %v", err)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the gateway's session did not end on the Delete")
	}
	if st := g.r.Stats(); st.Established != 1 || st.AuthFailed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestInitiatorEAPWrongPassword: a wrong password or an unknown user is
// ErrAuthenticationFailed at once, without the password in the error.
func TestInitiatorEAPWrongPassword(t *testing.T) {
	leakCheck(t)
	pki := newPKI(t, false)
	g := eapGateway(t, pki)
	for _, tc := range [][2]string{{"alice", "guess-42"}, {"mallory", "pw of alice"}} {
		start := time.Now()
		_, err := gwDial(t, g.addr, eapClientConfig(t, pki, tc[0], tc[1]))
		if !errors.Is(err, ErrAuthenticationFailed) {
			t.Fatalf("%s: err = %v, want authentication failed", tc[0], err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: failed after %s", tc[0], d)
		}
		if strings.Contains(err.Error(), tc[1]) {
			t.Errorf("error contains the password: %v", err)
		}
		t.Logf("%s: %v", tc[0], err)
	}
	if st := g.r.Stats(); st.Established != 0 || st.AuthFailed != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestInitiatorEAPUntrustedGateway: a gateway whose certificate we do not
// trust never sees an EAP response.
func TestInitiatorEAPUntrustedGateway(t *testing.T) {
	pki := newPKI(t, false)
	g := eapGateway(t, pki)
	cc := eapClientConfig(t, pki, "alice", "pw of alice")
	cc.CAs = []*x509.Certificate{newPKI(t, false).ca}
	_, err := gwDial(t, g.addr, cc)
	if !errors.Is(err, ErrAuthenticationFailed) || !strings.Contains(err.Error(), "gateway certificate") {
		t.Fatalf("err = %v", err)
	}
}

// TestInitiatorEAPTLS connects our initiator to our responder with
// EAP-TLS, offered alone and after a Nak of MSCHAPv2: the gateway's TLS
// certificate is its IKE one, ours is the client certificate.
func TestInitiatorEAPTLS(t *testing.T) {
	leakCheck(t)
	pki := newPKI(t, false)
	for _, withUsers := range []bool{false, true} {
		g := startGateway(t, func(rc *ResponderConfig) {
			rc.PSK = nil
			rc.Signer, rc.CertChain, rc.CAs = pki.gwKey, pki.gwChain, []*x509.Certificate{pki.ca}
			rc.EAPTLS = true
			if withUsers {
				rc.EAPUsers = func(id string) (string, bool) { return "pw", id == "alice" }
			}
		})
		cc := eapClientConfig(t, pki, "", "")
		cc.EAP = &EAPConfig{Method: EAPTLS}
		cc.Signer, cc.CertChain = pki.clientKey, pki.clientDERs
		c, s := gwConnect(t, g, cc)
		if !s.PeerID.Equal(gwClientID) || !c.PeerID.Equal(gwLocalID) {
			t.Errorf("peers: gateway sees %s, client sees %s", s.PeerID, c.PeerID)
		}
		checkChildMirror(t, c.Child, s.Child)
		c.Start(Hooks{}, Timers{})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := c.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		cancel()

		// A certificate for another name than the EAP identity is refused.
		cc.EAP.Identity = "mallory.example"
		if _, err := gwDial(t, g.addr, cc); !errors.Is(err, ErrCredentialsRejected) {
			t.Errorf("EAP identity not in the certificate: err = %v", err)
		}
	}
}

// TestInitiatorEAPHybrid: EAP after an IKE_INTERMEDIATE exchange. Both
// EAP AUTHs carry the IntAuth chain (RFC 9242 §3.3.2), and the IKE_AUTH
// rounds and the session's first request follow the intermediate's
// message IDs.
func TestInitiatorEAPHybrid(t *testing.T) {
	leakCheck(t)
	pki := newPKI(t, false)
	const hybrid = "aes256gcm16-prfsha256-x25519-ke1_mlkem768"
	g := startGateway(t, func(rc *ResponderConfig) {
		rc.PSK = nil
		rc.Signer, rc.CertChain = pki.gwKey, pki.gwChain
		rc.EAPUsers = func(id string) (string, bool) { return "pw of alice", id == "alice" }
		rc.IKEProposals = gwProposals(t, false, hybrid)
	})
	cc := eapClientConfig(t, pki, "alice", "pw of alice")
	cc.IKEProposals = gwProposals(t, false, hybrid)
	c, s := gwConnect(t, g, cc)
	if got := c.Suite.KeyExchanges(); len(got) != 2 || got[1] != "ML_KEM_768" {
		t.Fatalf("key exchanges %v, want x25519 + ML-KEM-768", got)
	}
	if s.PeerID.String() != "alice" {
		t.Errorf("gateway sees %s", s.PeerID)
	}
	c.Start(Hooks{}, Timers{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close (Delete after intermediate + EAP): %v", err)
	}
}
