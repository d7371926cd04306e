package ike

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// rekeyLog records the rekeys one end went through.
type rekeyLog struct {
	mu       sync.Mutex
	children []*ChildSA
	ikes     [][2]uint64
}

func (l *rekeyLog) hooks() Hooks {
	return Hooks{
		ChildRekeyed: func(prev, next *ChildSA, sendNow bool) {
			l.mu.Lock()
			l.children = append(l.children, next)
			l.mu.Unlock()
		},
		IKERekeyed: func(spii, spir uint64) {
			l.mu.Lock()
			l.ikes = append(l.ikes, [2]uint64{spii, spir})
			l.mu.Unlock()
		},
	}
}

func (l *rekeyLog) snapshot() ([]*ChildSA, [][2]uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*ChildSA(nil), l.children...), append([][2]uint64(nil), l.ikes...)
}

// twins pairs the rekeyed Child SAs both ends know of.
func twins(client, server []*ChildSA) [][2]*ChildSA {
	var out [][2]*ChildSA
	for _, c := range client {
		for _, s := range server {
			if s.SPIIn == c.SPIOut {
				out = append(out, [2]*ChildSA{c, s})
			}
		}
	}
	return out
}

// startedPair connects a client to a gateway and starts both sessions.
func startedPair(t *testing.T, clientTimers, gwTimers Timers, mutate func(*ResponderConfig)) (c, s *Session, cl, sl *rekeyLog) {
	t.Helper()
	cl, sl = &rekeyLog{}, &rekeyLog{}
	g := startGateway(t, func(rc *ResponderConfig) {
		rc.Timers = gwTimers
		rc.Hooks = func(*Session) Hooks { return sl.hooks() }
		if mutate != nil {
			mutate(rc)
		}
	})
	cc := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	cc.ForceEncap = true
	c, s = gwConnect(t, g, cc)
	c.Start(cl.hooks(), clientTimers)
	return c, s, cl, sl
}

func TestResponderRekeys(t *testing.T) {
	leakCheck(t)
	// A short Liveness makes the session's timer tick often: it reschedules
	// itself only in periodic, so a rekey deadline set when a rekey
	// completes would otherwise wait for the next liveness tick.
	short := Timers{ChildLifetime: 300 * time.Millisecond, IKELifetime: 1200 * time.Millisecond, Liveness: 100 * time.Millisecond}
	for _, tc := range []struct {
		name       string
		client, gw Timers
	}{
		{"client starts", short, Timers{}},
		{"responder starts", Timers{}, short},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s, cl, sl := startedPair(t, tc.client, tc.gw, nil)
			first := [2]uint64{c.SPIi, c.SPIr}
			pairs := func() int {
				cc, _ := cl.snapshot()
				sc, _ := sl.snapshot()
				return len(twins(cc, sc))
			}
			gwWaitFor(t, "a Child SA rekey and an IKE SA rekey on both ends", func() bool {
				_, ci := cl.snapshot()
				_, si := sl.snapshot()
				return pairs() >= 1 && len(ci) >= 1 && len(si) >= 1
			})
			// Another Child SA rekey, keyed from the new IKE SA.
			n := pairs()
			gwWaitFor(t, "a Child SA rekey after the IKE SA rekey", func() bool { return pairs() > n })
			cc, ci := cl.snapshot()
			sc, si := sl.snapshot()
			for _, p := range twins(cc, sc) {
				checkChildMirror(t, p[0], p[1])
				// A rekey keeps the selectors (RFC 7296 §2.8), whichever
				// end started it.
				if !slices.Equal(Prefixes(p[0].TSi), Prefixes(c.Child.TSi)) || !slices.Equal(Prefixes(p[0].TSr), Prefixes(c.Child.TSr)) {
					t.Errorf("client's rekeyed Child SA: TSi %v TSr %v, first TSi %v TSr %v", Prefixes(p[0].TSi), Prefixes(p[0].TSr), Prefixes(c.Child.TSi), Prefixes(c.Child.TSr))
				}
			}
			if ci[0] != si[0] || ci[0] == first {
				t.Errorf("IKE SPIs after the rekey: client %x, server %x, before %x", ci[0], si[0], first)
			}
			if c.Err() != nil || s.Err() != nil {
				t.Errorf("sessions ended: client %v, server %v", c.Err(), s.Err())
			}
		})
	}
}

func TestResponderLiveness(t *testing.T) {
	leakCheck(t)
	fast := Timers{Liveness: 100 * time.Millisecond}
	t.Run("responder checks", func(t *testing.T) {
		c, s, _, _ := startedPair(t, Timers{}, fast, nil)
		t0 := time.Now()
		gwWaitFor(t, "answered liveness checks", func() bool { return s.LastSeen().After(t0.Add(300 * time.Millisecond)) })
		if c.Err() != nil || s.Err() != nil {
			t.Errorf("sessions ended: client %v, server %v", c.Err(), s.Err())
		}
	})
	t.Run("client checks", func(t *testing.T) {
		c, s, _, _ := startedPair(t, fast, Timers{}, nil)
		t0 := time.Now()
		gwWaitFor(t, "answered liveness checks", func() bool { return c.LastSeen().After(t0.Add(300 * time.Millisecond)) })
		if c.Err() != nil || s.Err() != nil {
			t.Errorf("sessions ended: client %v, server %v", c.Err(), s.Err())
		}
	})
	t.Run("dead client", func(t *testing.T) {
		c, s, _, _ := startedPair(t, Timers{}, fast, func(rc *ResponderConfig) {
			rc.Retransmit = Retransmit{Timeout: 50 * time.Millisecond, Base: 1.5, Tries: 3}
		})
		c.Abandon(ErrClosed)
		c.Transport().Close()
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the responder did not notice the dead client")
		}
		if !errors.Is(s.Err(), ErrLivenessFailed) {
			t.Errorf("server session ended with %v, want ErrLivenessFailed", s.Err())
		}
	})
}

func TestResponderDeletes(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t.Run("responder closes", func(t *testing.T) {
		c, s, _, _ := startedPair(t, Timers{}, Timers{}, nil)
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatal("the client session did not end")
		}
		if !errors.Is(c.Err(), ErrPeerDeleted) {
			t.Errorf("client session ended with %v, want ErrPeerDeleted", c.Err())
		}
	})
	t.Run("client closes", func(t *testing.T) {
		c, s, _, _ := startedPair(t, Timers{}, Timers{}, nil)
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case <-s.Done():
		case <-ctx.Done():
			t.Fatal("the server session did not end")
		}
		if !errors.Is(s.Err(), ErrPeerDeleted) {
			t.Errorf("server session ended with %v, want ErrPeerDeleted", s.Err())
		}
	})
}

func TestResponderInitialContact(t *testing.T) {
	leakCheck(t)
	g := startGateway(t, nil)
	cfg := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	c1, s1 := gwConnect(t, g, cfg)
	c1.Start(Hooks{}, Timers{})
	c2, s2 := gwConnect(t, g, cfg)
	select {
	case <-s1.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the old session survived INITIAL_CONTACT")
	}
	if !errors.Is(s1.Err(), ErrReplaced) {
		t.Errorf("old session ended with %v, want ErrReplaced", s1.Err())
	}
	if len(c2.VirtualIPs) != 1 || c2.VirtualIPs[0] != c1.VirtualIPs[0] {
		t.Errorf("reconnected client got %v, had %v", c2.VirtualIPs, c1.VirtualIPs)
	}
	checkSessionMirror(t, c2, s2)
}

// lossyProxy forwards UDP between a client and a gateway, dropping what
// drop selects.
type lossyProxy struct {
	front, back *net.UDPConn
	gw          netip.AddrPort
	drop        func(toClient bool, h wire.Header) bool

	mu     sync.Mutex
	client netip.AddrPort
	seen   map[wire.ExchangeType]int // requests from the client
}

func newLossyProxy(t *testing.T, gw netip.AddrPort, drop func(toClient bool, h wire.Header) bool) *lossyProxy {
	t.Helper()
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	front, err := net.ListenUDP("udp", lo)
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp", lo)
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{front: front, back: back, gw: gw, drop: drop, seen: map[wire.ExchangeType]int{}}
	var wg sync.WaitGroup
	wg.Add(2)
	go p.pump(&wg, false)
	go p.pump(&wg, true)
	t.Cleanup(func() { front.Close(); back.Close(); wg.Wait() })
	return p
}

func (p *lossyProxy) addr() netip.AddrPort { return p.front.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *lossyProxy) pump(wg *sync.WaitGroup, toClient bool) {
	defer wg.Done()
	in := p.front
	if toClient {
		in = p.back
	}
	buf := make([]byte, 65536)
	for {
		n, from, err := in.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		ike := b
		if len(ike) >= 4 && binary.BigEndian.Uint32(ike) == 0 {
			ike = ike[4:]
		}
		h, herr := wire.ParseHeader(ike)
		p.mu.Lock()
		if !toClient {
			p.client = from
			if herr == nil && !h.IsResponse() {
				p.seen[h.Exchange]++
			}
		}
		to := p.client
		p.mu.Unlock()
		if herr == nil && p.drop(toClient, h) {
			continue
		}
		if toClient {
			p.front.WriteToUDPAddrPort(b, to)
		} else {
			p.back.WriteToUDPAddrPort(b, p.gw)
		}
	}
}

func TestResponderRetransmittedRequests(t *testing.T) {
	leakCheck(t)
	g := startGateway(t, nil)
	var mu sync.Mutex
	dropped := map[wire.ExchangeType]bool{}
	p := newLossyProxy(t, g.addr, func(toClient bool, h wire.Header) bool {
		mu.Lock()
		defer mu.Unlock()
		// Lose the first answer to IKE_SA_INIT and to IKE_AUTH.
		if toClient && h.IsResponse() && !dropped[h.Exchange] {
			dropped[h.Exchange] = true
			return true
		}
		return false
	})
	cfg := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	c, err := gwDial(t, p.addr(), cfg)
	if err != nil {
		t.Fatalf("Initiate: %v", err)
	}
	var s *Session
	select {
	case s = <-g.r.Sessions():
	case <-time.After(5 * time.Second):
		t.Fatal("no session delivered")
	}
	t.Cleanup(func() { s.Abandon(ErrClosed) })
	checkSessionMirror(t, c, s)
	// The proxy is a NAT to the gateway: it must have seen that and
	// encapsulated.
	if !s.Child.Encap {
		t.Error("the gateway did not detect the NAT")
	}
	p.mu.Lock()
	inits, auths := p.seen[wire.ExchangeIKESAInit], p.seen[wire.ExchangeIKEAuth]
	p.mu.Unlock()
	if inits < 2 || auths < 2 {
		t.Errorf("client sent %d IKE_SA_INIT and %d IKE_AUTH requests, want retransmissions", inits, auths)
	}
	if st := g.r.Stats(); st.HalfOpen != 0 || st.Established != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestSimultaneousChildRekey: both ends rekey the same Child SA at once
// (RFC 7296 §2.8.1). Each answers the other as usual; the SA made with the
// lowest nonce is closed by its creator, the old one by the survivor's,
// and both ends end up sending on the same surviving pair.
func TestSimultaneousChildRekey(t *testing.T) {
	leakCheck(t)
	collided := 0
	for round := 0; round < 6; round++ {
		c, s, _, _ := startedPair(t, Timers{}, Timers{}, nil)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); c.RekeyChild() }()
		go func() { defer wg.Done(); s.RekeyChild() }()
		wg.Wait()
		var cc, sc [3]*ChildSA
		var cExtra, sExtra int
		gwWaitFor(t, "one surviving Child SA pair and nothing left over", func() bool {
			c.do(func() { cc = [3]*ChildSA{c.child, c.oldChild, c.sendWait}; cExtra = len(c.extra) })
			s.do(func() { sc = [3]*ChildSA{s.child, s.oldChild, s.sendWait}; sExtra = len(s.extra) })
			return cc[0] != nil && sc[0] != nil && cc[0] != c.Child && sc[0] != s.Child && cc[1] == nil && sc[1] == nil && cc[2] == nil && sc[2] == nil &&
				cExtra == 0 && sExtra == 0 && cc[0].SPIOut == sc[0].SPIIn && cc[0].SPIIn == sc[0].SPIOut
		})
		checkChildMirror(t, cc[0], sc[0])
		c.do(func() { collided += c.collisions })
		s.do(func() { collided += s.collisions })
		if c.Err() != nil || s.Err() != nil {
			t.Fatalf("sessions ended: %v %v", c.Err(), s.Err())
		}
		c.Close(context.Background())
		<-s.Done()
	}
	if collided == 0 {
		t.Error("the rekeys never crossed: the collision path went untested")
	}
	t.Logf("%d collisions resolved over 6 rounds", collided)
}

// TestIdleSessionSleeps: a quiet tunnel does not poll its traffic
// counters; the first outbound packet (a Nudge) wakes the watch again.
func TestIdleSessionSleeps(t *testing.T) {
	leakCheck(t)
	g := startGateway(t, nil)
	cc := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	c, _ := gwConnect(t, g, cc)
	var mu sync.Mutex
	polls, arms := 0, 0
	var out uint64
	c.Start(Hooks{
		Traffic: func() (uint64, uint64) {
			mu.Lock()
			defer mu.Unlock()
			polls++
			return 0, out
		},
		ArmTraffic: func() { mu.Lock(); arms++; mu.Unlock() },
	}, Timers{Liveness: time.Hour, FastLiveness: 100 * time.Millisecond})
	count := func() (int, int) { mu.Lock(); defer mu.Unlock(); return polls, arms }
	time.Sleep(time.Second)
	if p, a := count(); p > 1 || a != 1 {
		t.Fatalf("idle for 1 s: %d polls, %d arms; want at most 1 poll and the initial arm", p, a)
	}
	// Traffic starts: the data plane nudges, polling resumes.
	mu.Lock()
	out = 5
	mu.Unlock()
	c.Nudge()
	// Polls come every FastLiveness/… once woken; a loaded -race run may
	// be slow to schedule them, so wait for them rather than a fixed time.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if p, _ := count(); p >= 3 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after a nudge: %d polls in 5 s, want the counters watched", p)
		}
	}
	c.Close(context.Background())
}
