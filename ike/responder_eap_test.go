package ike

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/ike/eap"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// eapPeerState is a hand-driven EAP-MSCHAPv2 initiator over an IKE SA
// made by the real initiator's IKE_SA_INIT.
type eapPeerState struct {
	t   *testing.T
	st  *initState
	ctx context.Context
}

// send seals ps as IKE_AUTH request id and returns the response payloads
// and the request as sent.
func (p *eapPeerState) send(id uint32, ps []wire.Payload) ([]wire.Payload, []byte) {
	p.t.Helper()
	st := p.st
	h := wire.Header{SPIi: st.spii, SPIr: st.spir, Version: 0x20, Exchange: wire.ExchangeIKEAuth, Flags: wire.FlagInitiator, MessageID: id}
	raw, err := st.keys.seal(h, ps, st.rand)
	if err != nil {
		p.t.Fatal(err)
	}
	inner, _ := p.roundTrip(raw, wire.ExchangeIKEAuth, id)
	return inner, raw
}

func (p *eapPeerState) roundTrip(raw []byte, exch wire.ExchangeType, id uint32) ([]wire.Payload, []byte) {
	p.t.Helper()
	st := p.st
	frags := newReassembler(0, 0)
	frags.expect(true, id)
	var inner []wire.Payload
	var last []byte
	err := exchange(p.ctx, st.t, st.ch, Retransmit{Timeout: 200 * time.Millisecond, Base: 1.5, Tries: 5}, [][]byte{raw}, st.remote, st.encap, func(d Datagram) bool {
		h, ps, complete, err := frags.add(d.Data, st.keys)
		if errors.Is(err, errNotFragment) {
			h, ps, err = st.keys.open(d.Data)
			complete = true
		}
		if err != nil || !complete || !h.IsResponse() || h.Exchange != exch || h.MessageID != id {
			return false
		}
		inner, last = ps, d.Data
		return true
	})
	if err != nil {
		p.t.Fatalf("request %d: %v", id, err)
	}
	return inner, last
}

func eapOf(t *testing.T, ps []wire.Payload) []byte {
	t.Helper()
	e := wire.Find[*wire.EAP](ps)
	if e == nil {
		t.Fatalf("no EAP payload in %v", ps)
	}
	return e.Data
}

func eapPacket(code, id, typ uint8, data []byte) []byte {
	b := append([]byte{code, id, 0, 0, typ}, data...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// TestResponderEAPMSCHAPv2 runs RFC 7296 §2.16 against the responder:
// certificate AUTH and EAP-Identity in response 1, MSCHAPv2 in 2..4, MSK
// AUTH both ways in 5, then a session that expects message 6.
func TestResponderEAPMSCHAPv2(t *testing.T) {
	leakCheck(t)
	pki := newPKI(t, false)
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{{"ok", "pw of alice", true}, {"wrong password", "guess", false}} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, func(rc *ResponderConfig) {
				rc.PSK = nil
				rc.Signer, rc.CertChain = pki.gwKey, pki.gwChain
				rc.EAPUsers = func(id string) (string, bool) { return "pw of alice", id == "alice" }
			})
			cc := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
			cc.PSK = nil
			ctr := listen(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = startInit(cc, ctr, g.addr, nil, func(st *initState) (*Session, error) {
				if err := st.saInit(ctx); err != nil {
					t.Fatal(err)
				}
				p := &eapPeerState{t: t, st: st, ctx: ctx}
				idi := identityPayload(cc.LocalID, false)
				spi := []byte{0, 0, 0x12, 0x34}
				resp, _ := p.send(1, []wire.Payload{idi, identityPayload(cc.RemoteID, true),
					&wire.CP{CfgType: wire.CfgRequest, Attributes: []wire.CPAttribute{{Type: wire.CPInternalIP4Address}}},
					&wire.SA{Proposals: wireProposals(cc.ESPProposals, wire.ProtoESP, spi)},
					&wire.TS{Selectors: selectorsFor(cc.TSi)},
					&wire.TS{Responder: true, Selectors: selectorsFor(cc.TSr)},
				})
				idr := wire.Find[*wire.ID](resp)
				ap := wire.Find[*wire.Auth](resp)
				if idr == nil || !idr.Responder || ap == nil || wire.Find[*wire.Cert](resp) == nil {
					t.Fatalf("response 1 = %v, want IDr, CERT, AUTH, EAP", resp)
				}
				octets := auth.SignedOctets(st.keys.prf.Sum, st.initResp, st.ni, st.keys.keys.SKpr, idr.Body())
				if err := auth.Verify(pki.gwKey.Public(), ap.Method, ap.Data, octets); err != nil {
					t.Fatalf("gateway AUTH: %v", err)
				}
				req := eapOf(t, resp)
				if req[0] != eap.CodeRequest || req[4] != eap.TypeIdentity {
					t.Fatalf("EAP 1 = %x, want Request/Identity", req)
				}
				resp, _ = p.send(2, []wire.Payload{&wire.EAP{Data: eapPacket(eap.CodeResponse, req[1], eap.TypeIdentity, []byte("alice"))}})
				req = eapOf(t, resp)
				if req[0] != eap.CodeRequest || req[4] != eap.TypeMSCHAPv2 || req[5] != 1 || req[9] != 16 {
					t.Fatalf("EAP 2 = %x, want MSCHAPv2 Challenge", req)
				}
				authChal := req[10:26]
				peerChal := make([]byte, 16)
				rand.Read(peerChal)
				nt := eap.GenerateNTResponse(authChal, peerChal, "alice", tc.password)
				body := append([]byte{2, req[6], 0, 0, 49}, peerChal...)
				body = append(append(append(body, make([]byte, 8)...), nt...), 0)
				body = append(body, "alice"...)
				binary.BigEndian.PutUint16(body[2:], uint16(len(body)))
				resp, _ = p.send(3, []wire.Payload{&wire.EAP{Data: eapPacket(eap.CodeResponse, req[1], eap.TypeMSCHAPv2, body)}})
				req = eapOf(t, resp)
				if !tc.ok {
					if req[0] != eap.CodeFailure {
						t.Fatalf("wrong password: EAP 3 = %x, want Failure", req)
					}
					return nil, errors.New("done")
				}
				wantS := eap.GenerateAuthenticatorResponse(eap.NtPasswordHash(tc.password), nt, peerChal, authChal, "alice")
				if req[0] != eap.CodeRequest || req[5] != 3 || !strings.HasPrefix(string(req[9:]), wantS) {
					t.Fatalf("EAP 3 = %q, want MSCHAPv2 Success with %s", req, wantS)
				}
				resp, _ = p.send(4, []wire.Payload{&wire.EAP{Data: eapPacket(eap.CodeResponse, req[1], eap.TypeMSCHAPv2, []byte{3})}})
				if req = eapOf(t, resp); req[0] != eap.CodeSuccess {
					t.Fatalf("EAP 4 = %x, want Success", req)
				}
				msk := eap.MSK(eap.NtPasswordHash(tc.password), nt)
				prf := st.keys.prf.Sum
				mine := auth.SignedOctets(prf, st.initReq, st.nr, st.keys.keys.SKpi, idi.Body())
				resp, raw5 := p.send(5, []wire.Payload{&wire.Auth{Method: auth.MethodPSK, Data: auth.PSKAuth(prf, msk, mine)}})
				ap = wire.Find[*wire.Auth](resp)
				if ap == nil || !auth.VerifyPSK(prf, msk, octets, ap.Data) || wire.Find[*wire.SA](resp) == nil || wire.Find[*wire.CP](resp) == nil {
					t.Fatalf("response 5 = %v, want AUTH from the MSK, CP, SA, TS", resp)
				}
				// A retransmitted request 5 gets the same answer.
				if again, _ := p.roundTrip(raw5, wire.ExchangeIKEAuth, 5); wire.Find[*wire.Auth](again) == nil {
					t.Errorf("retransmitted request 5 answered with %v", again)
				}
				var s *Session
				select {
				case s = <-g.r.Sessions():
				case <-time.After(5 * time.Second):
					t.Fatal("no session delivered")
				}
				defer s.Abandon(ErrClosed)
				if s.PeerID.String() != "alice" || len(s.VirtualIPs) != 1 {
					t.Errorf("session peer %s, virtual IPs %v", s.PeerID, s.VirtualIPs)
				}
				// The session takes the next request: message 6.
				h := wire.Header{SPIi: st.spii, SPIr: st.spir, Version: 0x20, Exchange: wire.ExchangeInformational, Flags: wire.FlagInitiator, MessageID: 6}
				info, err := st.keys.seal(h, nil, st.rand)
				if err != nil {
					t.Fatal(err)
				}
				p.roundTrip(info, wire.ExchangeInformational, 6)
				return nil, errors.New("done")
			})
			st := g.r.Stats()
			if tc.ok && (st.Established != 1 || st.AuthFailed != 0 || st.HalfOpen != 0) ||
				!tc.ok && (st.Established != 0 || st.AuthFailed != 1 || st.HalfOpen != 0) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestResponderEAPNeedsSigner(t *testing.T) {
	tr := listen(t)
	cfg := &ResponderConfig{LocalID: gwLocalID, PSK: func(auth.Identity) []byte { return nil },
		IKEProposals: gwProposals(t, false, "aes256gcm16-prfsha256-x25519"), ESPProposals: gwProposals(t, true, "aes256gcm16"),
		EAPUsers: func(string) (string, bool) { return "", false }}
	if _, err := NewResponder(cfg, tr); err == nil || !strings.Contains(err.Error(), "EAPUsers without Signer") {
		t.Fatalf("err = %v", err)
	}
}
