package ike

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// TestHybridHandshake negotiates additional key exchanges between our
// initiator and responder over a path that drops every datagram above the
// RFC 7383 IPv4 threshold, so the ML-KEM values can only cross in IKE
// fragments, and checks what each end ended with.
func TestHybridHandshake(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct {
		name, client, gw string
		certs            bool
		want             []string // key exchanges; nil: the handshake fails
		intermediates    int
	}{
		{"ml-kem-768", "aes256gcm16-prfsha256-x25519-ke1_mlkem768", "aes256gcm16-prfsha256-x25519-ke1_mlkem768", false,
			[]string{"CURVE_25519", "ML_KEM_768"}, 1},
		{"ml-kem-768 with certificates", "aes256gcm16-prfsha256-x25519-ke1_mlkem768", "aes256gcm16-prfsha256-x25519-ke1_mlkem768", true,
			[]string{"CURVE_25519", "ML_KEM_768"}, 1},
		{"ml-kem-1024 after ecp256, cbc", "aes256-sha256-ecp256-ke1_mlkem1024", "aes256-sha256-ecp256-ke1_mlkem1024", false,
			[]string{"ECP_256", "ML_KEM_1024"}, 1},
		{"two additional exchanges", "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem1024", "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem1024", false,
			[]string{"CURVE_25519", "ML_KEM_768", "ML_KEM_1024"}, 2},
		{"optional, gateway classical", "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none", "aes256gcm16-prfsha256-x25519", false,
			[]string{"CURVE_25519"}, 0},
		{"second proposal classical, gateway classical", "aes256gcm16-prfsha256-x25519-ke1_mlkem768,aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-x25519", false,
			[]string{"CURVE_25519"}, 0},
		{"gateway prefers hybrid", "aes256gcm16-prfsha256-x25519-ke1_mlkem768,aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-x25519-ke1_mlkem768,aes256gcm16-prfsha256-x25519", false,
			[]string{"CURVE_25519", "ML_KEM_768"}, 1},
		{"gateway requires ML-KEM, client classical", "aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-x25519-ke1_mlkem768", false, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pki *testPKI
			if tc.certs {
				pki = newPKI(t, false)
			}
			cc := gwClientConfig(t, tc.client, "aes256gcm16")
			g := startGateway(t, func(rc *ResponderConfig) {
				rc.IKEProposals = gwProposals(t, false, splitList(tc.gw)...)
				if pki != nil {
					pki.useCerts(rc, cc)
				}
			})
			big := 0
			proxy := newLossyProxy(t, g.addr, func(toClient bool, h wire.Header) bool {
				if h.Length > uint32(maxDatagramFor(false, false)) && h.Exchange != wire.ExchangeIKESAInit {
					big++
					return true
				}
				return false
			})
			c, err := gwDial(t, proxy.addr(), cc)
			if tc.want == nil {
				var ne *NotifyError
				if !errors.As(err, &ne) || ne.Type != wire.NotifyNoProposalChosen {
					t.Fatalf("Initiate = %v, want NO_PROPOSAL_CHOSEN", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Initiate: %v", err)
			}
			var s *Session
			select {
			case s = <-g.r.Sessions():
			case <-time.After(5 * time.Second):
				t.Fatal("no session at the gateway")
			}
			t.Cleanup(func() { s.Abandon(ErrClosed) })
			checkSessionMirror(t, c, s)
			if got := c.Suite.KeyExchanges(); !slices.Equal(got, tc.want) {
				t.Errorf("key exchanges = %v, want %v", got, tc.want)
			}
			if !bytes.Equal(c.cur.keys.keys.SKd, s.cur.keys.keys.SKd) {
				t.Error("SK_d differs between the ends")
			}
			proxy.mu.Lock()
			inter := proxy.seen[wire.ExchangeIKEIntermediate]
			inits := proxy.seen[wire.ExchangeIKESAInit]
			proxy.mu.Unlock()
			// The proxy counts datagrams: an ML-KEM key takes several
			// fragments per IKE_INTERMEDIATE request.
			if inits != 1 || (inter == 0) != (tc.intermediates == 0) || (inter > 0 && inter < 2*tc.intermediates) {
				t.Errorf("request datagrams: %d IKE_SA_INIT (want 1), %d IKE_INTERMEDIATE (want fragments of %d messages)", inits, inter, tc.intermediates)
			}
			if big != 0 {
				t.Errorf("%d datagrams above the fragmentation threshold", big)
			}
			if st := g.r.Stats(); st.InvalidKE != 0 {
				t.Errorf("gateway sent %d INVALID_KE_PAYLOAD", st.InvalidKE)
			}
		})
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range bytes.Split([]byte(s), []byte(",")) {
		out = append(out, string(p))
	}
	return out
}

// TestHybridIKERekey rekeys a hybrid IKE SA with IKE_FOLLOWUP_KE, started
// by either end, and checks that both ends derived the same new SA.
func TestHybridIKERekey(t *testing.T) {
	leakCheck(t)
	for _, clientStarts := range []bool{true, false} {
		name := "gateway starts"
		if clientStarts {
			name = "client starts"
		}
		t.Run(name, func(t *testing.T) {
			cl, sl := &rekeyLog{}, &rekeyLog{}
			prop := "aes256gcm16-prfsha256-x25519-ke1_mlkem768"
			g := startGateway(t, func(rc *ResponderConfig) {
				rc.IKEProposals = gwProposals(t, false, prop)
				rc.Hooks = func(*Session) Hooks { return sl.hooks() }
			})
			// Datagrams above the RFC 7383 threshold are lost: the ML-KEM
			// values of the rekey must travel in fragments.
			proxy := newLossyProxy(t, g.addr, func(_ bool, h wire.Header) bool {
				return h.Length > uint32(maxDatagramFor(false, true)) && h.Exchange != wire.ExchangeIKESAInit
			})
			cc := gwClientConfig(t, prop, "aes256gcm16")
			c, err := gwDial(t, proxy.addr(), cc)
			if err != nil {
				t.Fatal(err)
			}
			s := <-g.r.Sessions()
			t.Cleanup(func() { s.Abandon(ErrClosed) })
			oldSKd := bytes.Clone(c.cur.keys.keys.SKd)
			c.Start(cl.hooks(), Timers{})
			if clientStarts {
				c.RekeyIKE()
			} else {
				s.RekeyIKE()
			}
			gwWaitFor(t, "an IKE SA rekey on both ends", func() bool {
				_, ci := cl.snapshot()
				_, si := sl.snapshot()
				return len(ci) == 1 && len(si) == 1
			})
			_, ci := cl.snapshot()
			_, si := sl.snapshot()
			if ci[0] != si[0] {
				t.Fatalf("new IKE SPIs: client %x, gateway %x", ci[0], si[0])
			}
			var ck, sk []byte
			var csuite, ssuite Suite
			c.do(func() { ck, csuite = bytes.Clone(c.cur.keys.keys.SKd), c.cur.suite })
			s.do(func() { sk, ssuite = bytes.Clone(s.cur.keys.keys.SKd), s.cur.suite })
			if !bytes.Equal(ck, sk) || bytes.Equal(ck, oldSKd) {
				t.Error("the rekeyed SA's SK_d does not match between the ends, or did not change")
			}
			if csuite != ssuite || csuite.AddKE[0] != ikecrypto.GroupMLKEM768 {
				t.Errorf("rekeyed suites: client %v, gateway %v", csuite, ssuite)
			}
			proxy.mu.Lock()
			followups := proxy.seen[wire.ExchangeIKEFollowupKE]
			proxy.mu.Unlock()
			if clientStarts && followups < 2 {
				t.Errorf("client sent %d IKE_FOLLOWUP_KE datagrams, want the fragments of one request", followups)
			}
			// The new SA works: a liveness check on it is answered.
			if !c.SendNotifies(nil) || c.Err() != nil || s.Err() != nil {
				t.Errorf("sessions after the rekey: client %v, gateway %v", c.Err(), s.Err())
			}
		})
	}
}

// TestHybridChildRekey rekeys a Child SA whose ESP proposal has PFS with
// x25519 and ML-KEM-768 (CREATE_CHILD_SA, then IKE_FOLLOWUP_KE), started
// by either end, and checks that both ends have the same new keys.
func TestHybridChildRekey(t *testing.T) {
	leakCheck(t)
	for _, clientStarts := range []bool{true, false} {
		name := "gateway starts"
		if clientStarts {
			name = "client starts"
		}
		t.Run(name, func(t *testing.T) {
			cl, sl := &rekeyLog{}, &rekeyLog{}
			esp := "aes256gcm16-x25519-ke1_mlkem768"
			g := startGateway(t, func(rc *ResponderConfig) {
				rc.ESPProposals = gwProposals(t, true, esp)
				rc.Hooks = func(*Session) Hooks { return sl.hooks() }
			})
			// Datagrams above the RFC 7383 threshold are lost: the ML-KEM
			// values of the rekey must travel in fragments.
			proxy := newLossyProxy(t, g.addr, func(_ bool, h wire.Header) bool {
				return h.Length > uint32(maxDatagramFor(false, true)) && h.Exchange != wire.ExchangeIKESAInit
			})
			c, err := gwDial(t, proxy.addr(), gwClientConfig(t, "aes256gcm16-prfsha256-x25519", esp))
			if err != nil {
				t.Fatal(err)
			}
			s := <-g.r.Sessions()
			t.Cleanup(func() { s.Abandon(ErrClosed) })
			c.Start(cl.hooks(), Timers{})
			if clientStarts {
				c.RekeyChild()
			} else {
				s.RekeyChild()
			}
			gwWaitFor(t, "a Child SA rekey on both ends", func() bool {
				cc, _ := cl.snapshot()
				sc, _ := sl.snapshot()
				return len(twins(cc, sc)) == 1
			})
			cc, _ := cl.snapshot()
			sc, _ := sl.snapshot()
			p := twins(cc, sc)[0]
			checkChildMirror(t, p[0], p[1])
			if got := p[0].Suite.KeyExchanges(); !slices.Equal(got, []string{"CURVE_25519", "ML_KEM_768"}) {
				t.Errorf("rekeyed Child SA key exchanges %v", got)
			}
			proxy.mu.Lock()
			followups := proxy.seen[wire.ExchangeIKEFollowupKE]
			proxy.mu.Unlock()
			if clientStarts && followups < 2 {
				t.Errorf("client sent %d IKE_FOLLOWUP_KE datagrams, want the fragments of one request", followups)
			}
			if c.Err() != nil || s.Err() != nil {
				t.Errorf("sessions: client %v, gateway %v", c.Err(), s.Err())
			}
		})
	}
}

// TestHybridResume: the ticket of a hybrid SA holds the SK_d derived
// after the ML-KEM exchange (RFC 9370 keys, not those of IKE_SA_INIT) and
// its suite, and resuming with it works on both ends.
func TestHybridResume(t *testing.T) {
	leakCheck(t)
	tickets := newMapTickets()
	prop := "aes256gcm16-prfsha256-x25519-ke1_mlkem768"
	g := startGateway(t, func(c *ResponderConfig) {
		c.IKEProposals = gwProposals(t, false, prop)
		c.Tickets = tickets
		c.AuthResponseNotifies = func(s *Session) []*wire.Notify {
			raw, err := s.ResumeState().MarshalBinary()
			if err != nil {
				t.Errorf("marshal: %v", err)
				return nil
			}
			return []*wire.Notify{{NotifyType: wire.NotifyTicketLTOpaque, Data: append([]byte{0, 0, 0x0e, 0x10}, tickets.issue(raw)...)}}
		}
	})
	cfg := gwClientConfig(t, prop, "aes256gcm16")
	cfg.RequestTicket = true
	var sawKeys []byte
	c1, s1 := gwConnect(t, g, cfg)
	if !c1.Suite.HasAddKE() {
		t.Fatalf("no hybrid SA: %v", c1.Suite)
	}
	n := wire.FindNotify(notifiesAsPayloads(c1.AuthNotifies), wire.NotifyTicketLTOpaque)
	if n == nil || len(n.Data) <= 4 {
		t.Fatal("no ticket")
	}
	rs := c1.ResumeState()
	sawKeys = c1.cur.keys.keys.SKd
	if !bytes.Equal(rs.SKd, sawKeys) || !bytes.Equal(s1.ResumeState().SKd, sawKeys) || rs.Suite != c1.Suite {
		t.Fatal("the ticket's state is not the final SK_d and suite of the hybrid SA")
	}
	raw, _ := rs.MarshalBinary()
	if raw[0] != resumeStateVersionKE {
		t.Errorf("resume state version %d, want %d (with additional key exchanges)", raw[0], resumeStateVersionKE)
	}
	c1.Abandon(ErrClosed)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c2, err := Resume(ctx, cfg, listen(t), g.addr, rs, n.Data[4:])
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	defer c2.Abandon(ErrClosed)
	s2 := <-g.r.Sessions()
	defer s2.Abandon(ErrClosed)
	checkSessionMirror(t, c2, s2)
	if !slices.Equal(c2.Suite.KeyExchanges(), []string{"CURVE_25519", "ML_KEM_768"}) {
		t.Errorf("resumed SA reports %v", c2.Suite.KeyExchanges())
	}
}
