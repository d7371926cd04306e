package ike

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// mapTickets is a TicketAuthority by reference, for tests: the ticket is
// a hash naming the stored state.
type mapTickets struct {
	mu    sync.Mutex
	state map[string][]byte
	used  map[string]bool
}

func newMapTickets() *mapTickets {
	return &mapTickets{state: map[string][]byte{}, used: map[string]bool{}}
}

func (m *mapTickets) issue(state []byte) []byte {
	h := sha256.Sum256(state)
	m.mu.Lock()
	m.state[string(h[:])] = state
	m.mu.Unlock()
	return h[:]
}

func (m *mapTickets) Open(t []byte) ([]byte, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.state[string(t)]
	if !ok {
		return nil, time.Time{}, errors.New("unknown ticket")
	}
	return st, time.Now().Add(time.Hour), nil
}

func (m *mapTickets) Consume(t []byte, _ time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used[string(t)] {
		return false
	}
	m.used[string(t)] = true
	return true
}

func (m *mapTickets) Used(t []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used[string(t)]
}

// ticketGateway is a responder that answers TICKET_REQUEST with a ticket.
func ticketGateway(t *testing.T, tickets *mapTickets) *testGateway {
	return startGateway(t, func(c *ResponderConfig) {
		c.Tickets = tickets
		c.AuthResponseNotifies = func(s *Session) []*wire.Notify {
			if wire.FindNotify(notifiesAsPayloads(s.AuthNotifies), wire.NotifyTicketRequest) == nil {
				return nil
			}
			raw, err := s.ResumeState().MarshalBinary()
			if err != nil {
				t.Errorf("marshal: %v", err)
				return nil
			}
			data := append([]byte{0, 0, 0x0e, 0x10}, tickets.issue(raw)...)
			return []*wire.Notify{{NotifyType: wire.NotifyTicketLTOpaque, Data: data}}
		}
	})
}

func notifiesAsPayloads(ns []*wire.Notify) []wire.Payload {
	out := make([]wire.Payload, len(ns))
	for i, n := range ns {
		out[i] = n
	}
	return out
}

// TestResumeRoundTrip gets a ticket in IKE_AUTH, resumes with it (no
// Diffie-Hellman), and checks both ends agree on keys and identities; the
// same ticket then gets TICKET_NACK.
func TestResumeRoundTrip(t *testing.T) {
	leakCheck(t)
	tickets := newMapTickets()
	g := ticketGateway(t, tickets)
	cfg := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	cfg.RequestTicket = true
	c1, s1 := gwConnect(t, g, cfg)
	n := wire.FindNotify(notifiesAsPayloads(c1.AuthNotifies), wire.NotifyTicketLTOpaque)
	if n == nil || len(n.Data) <= 4 {
		t.Fatalf("no ticket in the IKE_AUTH response: %v", c1.AuthNotifies)
	}
	ticket := n.Data[4:]
	rs := c1.ResumeState()
	if srs := s1.ResumeState(); !bytes.Equal(rs.SKd, srs.SKd) || rs.AuthMethod != auth.MethodPSK || !rs.IDr.Equal(gwLocalID) {
		t.Fatalf("resume states differ or are wrong: %+v vs %+v", rs, srs)
	}
	raw, err := rs.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back ResumeState
	if err := back.UnmarshalBinary(raw); err != nil || !bytes.Equal(back.SKd, rs.SKd) || back.Suite != rs.Suite {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	c1.Abandon(ErrClosed)

	ctr := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c2, err := Resume(ctx, cfg, ctr, g.addr, rs, ticket)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	defer c2.Abandon(ErrClosed)
	var s2 *Session
	select {
	case s2 = <-g.r.Sessions():
	case <-time.After(5 * time.Second):
		t.Fatal("no resumed session on the gateway")
	}
	defer s2.Abandon(ErrClosed)
	if !c2.Resumed() || !s2.Resumed() {
		t.Error("sessions do not say they were resumed")
	}
	checkSessionMirror(t, c2, s2)
	if c2.SPIi == c1.SPIi {
		t.Error("resumed SA reuses the old SPIi")
	}
	if bytes.Equal(c2.ResumeState().SKd, rs.SKd) {
		t.Error("SK_d not refreshed by resumption")
	}
	if st := g.r.Stats(); st.Resumed != 1 {
		t.Errorf("stats: %+v", st)
	}
	// The resumed SA carries requests: a rekey completes on both ends
	// (the responder started s2 itself).
	c2.Start(Hooks{}, Timers{})
	c2.RekeyIKE()
	gwWaitFor(t, "the IKE rekey of the resumed SA", func() bool {
		i1, _ := c2.SPIs()
		i2, _ := s2.SPIs()
		return i1 != c2.SPIi && i1 == i2
	})

	// Used once: the same ticket is refused.
	ctr3 := listen(t)
	_, err = Resume(ctx, cfg, ctr3, g.addr, rs, ticket)
	if !errors.Is(err, ErrTicketRejected) {
		t.Fatalf("reused ticket: got %v, want ErrTicketRejected", err)
	}
	// A forged ticket too.
	_, err = Resume(ctx, cfg, ctr3, g.addr, rs, append([]byte{1}, ticket[1:]...))
	if !errors.Is(err, ErrTicketRejected) {
		t.Fatalf("forged ticket: got %v", err)
	}
	if st := g.r.Stats(); st.TicketNack != 2 {
		t.Errorf("TicketNack = %d, want 2", st.TicketNack)
	}
}

// TestResumeWrongSKd: a client whose state does not match the ticket
// fails authentication instead of getting a session.
func TestResumeWrongSKd(t *testing.T) {
	leakCheck(t)
	tickets := newMapTickets()
	g := ticketGateway(t, tickets)
	cfg := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	cfg.RequestTicket = true
	c1, _ := gwConnect(t, g, cfg)
	ticket := wire.FindNotify(notifiesAsPayloads(c1.AuthNotifies), wire.NotifyTicketLTOpaque).Data[4:]
	rs := c1.ResumeState()
	rs.SKd = bytes.Repeat([]byte{7}, len(rs.SKd))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Resume(ctx, cfg, listen(t), g.addr, rs, ticket)
	if err == nil {
		t.Fatal("resumed with a wrong SK_d")
	}
}

func FuzzResumeState(f *testing.F) {
	rs := &ResumeState{Suite: Suite{Encr: 20, KeyBits: 256, PRF: 5, DH: 31}, SKd: make([]byte, 32),
		IDi: auth.ParseIdentity("a.example"), IDr: auth.ParseIdentity("b.example"), AuthMethod: 2,
		VirtualIP: netip.MustParseAddr("10.0.0.1").AsSlice()}
	raw, _ := rs.MarshalBinary()
	f.Add(raw)
	rs.Suite.AddKE[0] = 36 // version 2: the ticket's SA had ML-KEM-768
	raw, _ = rs.MarshalBinary()
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		var rs ResumeState
		if rs.UnmarshalBinary(b) != nil {
			return
		}
		out, err := rs.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}
