package ike

import (
	"crypto/rand"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// haLog records what RFC 6311 did at one end.
type haLog struct {
	mu     sync.Mutex
	syncs  []HASync
	skips  []uint64
	kicked chan struct{}
}

func newHALog() *haLog { return &haLog{kicked: make(chan struct{}, 64)} }

func (l *haLog) hooks() Hooks {
	return Hooks{
		HASynced: func(r HASync) {
			l.mu.Lock()
			l.syncs = append(l.syncs, r)
			l.mu.Unlock()
			l.kicked <- struct{}{}
		},
		SkipOutbound: func(d uint64) {
			l.mu.Lock()
			l.skips = append(l.skips, d)
			l.mu.Unlock()
		},
	}
}

func (l *haLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.syncs)
}

func (l *haLog) last() HASync {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.syncs[len(l.syncs)-1]
}

func (l *haLog) wait(t *testing.T, what string) HASync {
	t.Helper()
	select {
	case <-l.kicked:
		return l.last()
	case <-time.After(5 * time.Second):
		t.Fatalf("no HA sync (%s)", what)
	}
	return HASync{}
}

// haPair connects an HA-capable client through a proxy (drop decides
// what it loses) to an HA-capable gateway and starts both ends.
func haPair(t *testing.T, clientHA bool, drop func(toClient bool, h wire.Header) bool) (g *testGateway, c, s *Session, cl, sl *haLog) {
	t.Helper()
	cl, sl = newHALog(), newHALog()
	g = startGateway(t, func(rc *ResponderConfig) {
		rc.HASync = true
		rc.Hooks = func(*Session) Hooks { return sl.hooks() }
	})
	cc := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	cc.ForceEncap, cc.HASync = true, clientHA
	to := g.addr
	if drop != nil {
		to = newLossyProxy(t, g.addr, drop).addr()
	}
	c, err := gwDial(t, to, cc)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case s = <-g.r.Sessions():
	case <-time.After(5 * time.Second):
		t.Fatal("no session")
	}
	t.Cleanup(func() { s.Abandon(ErrClosed) })
	c.Start(cl.hooks(), Timers{})
	return g, c, s, cl, sl
}

// sealedSync builds a sync request under the gateway session's keys.
func sealedSync(t *testing.T, s *Session, nonce, m1, p1 uint32) []byte {
	t.Helper()
	var raw []byte
	s.do(func() {
		st := s.cur
		var err error
		raw, err = st.keys.seal(st.header(wire.ExchangeInformational, 0, false), []wire.Payload{
			&wire.Notify{NotifyType: wire.NotifyIKEv2MessageIDSync, Data: wire.MessageIDSync{Nonce: nonce, ExpectedSend: m1, ExpectedRecv: p1}.Encode()},
		}, rand.Reader)
		if err != nil {
			t.Error(err)
		}
	})
	return raw
}

// clientIDs reads the client's message IDs on its goroutine.
func clientIDs(c *Session) (next, peerNext uint32) {
	c.do(func() { next, peerNext = c.cur.nextID, c.cur.peerNext })
	return
}

func TestHANegotiation(t *testing.T) {
	for _, clientHA := range []bool{true, false} {
		_, c, s, _, _ := haPair(t, clientHA, nil)
		cm, cr := c.HASupport()
		sm, sr := s.HASupport()
		if cm != clientHA || cr != clientHA || sm != clientHA || sr != clientHA {
			t.Errorf("client ha_sync=%v: client sees (%v,%v), gateway (%v,%v)", clientHA, cm, cr, sm, sr)
		}
		if !clientHA && s.StartHASync(100) {
			t.Errorf("gateway started a sync the client did not announce")
		}
	}
}

// TestHATakeover: the gateway's session is exported, the gateway "dies"
// (socket closed, no Delete), a standby on the same port imports the SA
// and syncs; the client keeps its SPIs, adopts the IDs, skips its ESP
// counters, and both sides can run exchanges afterwards.
func TestHATakeover(t *testing.T) {
	g, c, s, cl, _ := haPair(t, true, nil)
	// Move the message IDs: two child rekeys by the client, one by the gateway.
	c.RekeyChild()
	s.RekeyChild()
	gwWaitFor(t, "rekeys", func() bool { n, _ := clientIDs(c); return n >= 3 })
	time.Sleep(100 * time.Millisecond)
	ss, err := s.Export()
	if err != nil {
		t.Fatal(err)
	}
	spii, spir := c.SPIs()
	port := g.tr.LocalPort()
	// Crash: the active member's socket goes away without a Delete.
	g.r.Close()
	g.tr.Close()
	s.Abandon(ErrClosed)

	tr, err := Listen(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	sl2 := newHALog()
	cfg := *g.r.cfg
	cfg.Hooks = func(*Session) Hooks { return sl2.hooks() }
	g2 := startGatewayOn(t, tr, &cfg)
	s2, err := g2.r.Import(ss)
	if err != nil {
		t.Fatal(err)
	}
	<-g2.r.Sessions()
	t.Cleanup(func() { s2.Abandon(ErrClosed) })
	if _, err := g2.r.Import(ss); err != ErrSAExists {
		t.Errorf("second import: %v, want ErrSAExists", err)
	}
	if !s2.StartHASync(1 << 20) {
		t.Fatal("StartHASync: nothing negotiated")
	}
	got := cl.wait(t, "client")
	gw := sl2.wait(t, "standby")
	if !got.MessageIDs || got.ReplayDelta != 1<<20 || got.SPIi != spii || got.SPIr != spir {
		t.Errorf("client sync = %+v", got)
	}
	if gw.NextID != got.PeerNext || gw.PeerNext != got.NextID {
		t.Errorf("IDs out of step: client %+v, standby %+v", got, gw)
	}
	if got.PeerNext < ss.NextID+haMsgIDMargin {
		t.Errorf("client expects gateway request %d, below the standby's M1 %d", got.PeerNext, ss.NextID+haMsgIDMargin)
	}
	cl.mu.Lock()
	skips := append([]uint64(nil), cl.skips...)
	cl.mu.Unlock()
	if len(skips) != 1 || skips[0] != 1<<20 {
		t.Errorf("client outbound skips = %v, want [%d]", skips, 1<<20)
	}
	// Both ways work with the new IDs: a rekey by each side.
	seen := c.LastSeen()
	s2.RekeyChild()
	c.RekeyChild()
	c.Hint()
	gwWaitFor(t, "exchanges after the sync", func() bool {
		n, p := clientIDs(c)
		return n > got.NextID && p > got.PeerNext && c.LastSeen().After(seen)
	})
	if a, b := c.SPIs(); a != spii || b != spir || c.Err() != nil {
		t.Errorf("client SA changed: %016x/%016x err %v", a, b, c.Err())
	}
}

// startGatewayOn runs a responder with cfg on tr.
func startGatewayOn(t *testing.T, tr *Transport, cfg *ResponderConfig) *testGateway {
	t.Helper()
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

// TestHASyncReplayIgnored: a sync request whose M1 does not exceed what
// the client has seen is dropped; the very same request again only gets
// the same answer; a newer one is accepted.
func TestHASyncReplayIgnored(t *testing.T) {
	_, c, s, cl, _ := haPair(t, true, nil)
	client := c.t.Conn().LocalAddr().(*net.UDPAddr).AddrPort()
	client = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), client.Port())
	send := func(raw []byte) { _ = s.t.Send(raw, client, true) }

	first := sealedSync(t, s, 0x11111111, 20, 7)
	send(first)
	r := cl.wait(t, "first sync")
	if r.PeerNext != 20 || r.NextID != 7 {
		t.Errorf("first sync: %+v, want peer_next 20, next 7", r)
	}
	// The same M1 with another nonce: a replay (§5.1), and a lower one.
	send(sealedSync(t, s, 0x22222222, 20, 9))
	send(sealedSync(t, s, 0x33333333, 5, 9))
	// The very same request: a retransmission, answered, no new sync.
	send(first)
	time.Sleep(300 * time.Millisecond)
	if n := cl.count(); n != 1 {
		t.Fatalf("%d syncs after replays, want 1", n)
	}
	if n, p := clientIDs(c); n != 7 || p != 20 {
		t.Errorf("client IDs after replays: next %d peer_next %d, want 7, 20", n, p)
	}
	send(sealedSync(t, s, 0x44444444, 21, 8))
	if r := cl.wait(t, "newer sync"); r.PeerNext != 21 || r.NextID != 8 {
		t.Errorf("newer sync: %+v", r)
	}
	// Extra payloads are refused (§5.1).
	var bad []byte
	s.do(func() {
		st := s.cur
		bad, _ = st.keys.seal(st.header(wire.ExchangeInformational, 0, false), []wire.Payload{
			&wire.Notify{NotifyType: wire.NotifyIKEv2MessageIDSync, Data: wire.MessageIDSync{Nonce: 5, ExpectedSend: 40, ExpectedRecv: 40}.Encode()},
			&wire.Delete{Protocol: wire.ProtoIKE},
		}, rand.Reader)
	})
	send(bad)
	time.Sleep(200 * time.Millisecond)
	if n := cl.count(); n != 2 || c.Err() != nil {
		t.Errorf("sync with a Delete: %d syncs, err %v", n, c.Err())
	}
}

// TestHASyncWrongNonce: a sync response with another nonce is dropped;
// the gateway keeps waiting and takes the right one.
func TestHASyncWrongNonce(t *testing.T) {
	var block atomic.Bool
	block.Store(true)
	_, c, s, _, sl := haPair(t, true, func(toClient bool, h wire.Header) bool {
		return !toClient && h.IsResponse() && h.MessageID == 0 && h.Exchange == wire.ExchangeInformational && block.Load()
	})
	gwAddrPort := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), s.t.LocalPort())
	if !s.StartHASync(0) {
		t.Fatal("StartHASync")
	}
	time.Sleep(100 * time.Millisecond)
	// A forged answer (sealed with the client's keys, so it authenticates)
	// with a nonce the gateway did not send.
	var forged []byte
	c.do(func() {
		st := c.cur
		forged, _ = st.keys.seal(st.header(wire.ExchangeInformational, 0, true), []wire.Payload{
			&wire.Notify{NotifyType: wire.NotifyIKEv2MessageIDSync, Data: wire.MessageIDSync{Nonce: 0xdeadbeef, ExpectedSend: 99, ExpectedRecv: 99}.Encode()},
		}, rand.Reader)
	})
	for range 3 {
		_ = c.t.Send(forged, gwAddrPort, true)
	}
	time.Sleep(200 * time.Millisecond)
	if n := sl.count(); n != 0 {
		t.Fatalf("gateway accepted a response with a wrong nonce (%d syncs)", n)
	}
	var next uint32
	s.do(func() { next = s.cur.nextID })
	if next == 99 {
		t.Fatal("gateway adopted the forged IDs")
	}
	block.Store(false) // the retransmitted request now gets the real answer through
	r := sl.wait(t, "real answer")
	if r.NextID == 99 || !r.MessageIDs {
		t.Errorf("gateway sync %+v", r)
	}
}

// TestHASyncRequeuesOutstanding: a request the client is still waiting for
// (sent to the dead member) goes out again with the synchronised ID.
func TestHASyncRequeuesOutstanding(t *testing.T) {
	var dropAll atomic.Bool
	_, c, s, cl, _ := haPair(t, true, func(toClient bool, h wire.Header) bool {
		// While "dead" the gateway gets nothing.
		return !toClient && dropAll.Load()
	})
	dropAll.Store(true)
	c.Hint() // a liveness check that the dead gateway does not answer
	time.Sleep(150 * time.Millisecond)
	n0, _ := clientIDs(c)
	var out bool
	c.do(func() { out = c.out != nil })
	if !out {
		t.Fatal("no outstanding request at the client")
	}
	dropAll.Store(false)
	if !s.StartHASync(0) {
		t.Fatal("StartHASync")
	}
	r := cl.wait(t, "sync")
	if !r.Abandoned || r.NextID < n0 {
		t.Errorf("sync %+v: want the outstanding request abandoned, next ID >= %d", r, n0)
	}
	gwWaitFor(t, "the liveness check answered under the new ID", func() bool {
		var busy bool
		c.do(func() { busy = c.out != nil || len(c.queue) > 0 })
		n, _ := clientIDs(c)
		return !busy && n == r.NextID+1
	})
	if c.Err() != nil {
		t.Errorf("client session ended: %v", c.Err())
	}
}

// TestHASyncAfterIKERekey: message IDs restart with a rekeyed IKE SA, and
// so does the replay rule: a sync of the new SA with a low M1 is taken,
// one under the old SA's keys is not.
func TestHASyncAfterIKERekey(t *testing.T) {
	_, c, s, cl, _ := haPair(t, true, nil)
	client := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), c.t.LocalPort())
	// A sync in step with the gateway's IDs, so exchanges go on after it.
	var m1, p1 uint32
	s.do(func() { s.cur.nextID += 10; m1, p1 = s.cur.nextID, s.cur.peerNext })
	old := sealedSync(t, s, 1, m1, p1)
	_ = s.t.Send(old, client, true)
	cl.wait(t, "sync of the first SA")
	spii, _ := c.SPIs()
	c.RekeyIKE()
	gwWaitFor(t, "IKE rekey", func() bool { a, _ := c.SPIs(); b, _ := s.SPIs(); return a != spii && a == b })
	gwWaitFor(t, "old SA gone", func() bool {
		var gone bool
		c.do(func() { gone = c.old == nil })
		return gone
	})
	s.do(func() { p1 = s.cur.peerNext })
	_ = s.t.Send(sealedSync(t, s, 2, 3, p1), client, true)
	r := cl.wait(t, "sync of the rekeyed SA")
	if a, _ := c.SPIs(); r.SPIi != a || r.PeerNext != 3 {
		t.Errorf("sync after rekey: %+v", r)
	}
	_ = s.t.Send(old, client, true) // the old SA is gone: nothing happens
	time.Sleep(200 * time.Millisecond)
	if n := cl.count(); n != 2 || c.Err() != nil {
		t.Errorf("%d syncs, err %v; want 2 and the session up", n, c.Err())
	}
}
