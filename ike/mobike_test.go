package ike

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// TestNATDetectionForNewPath: the hashes of RFC 7296 §2.23 as MOBIKE
// recomputes them for a new path; a translated address on either side
// shows up as that side's NAT, a fake source hash as the sender's.
func TestNATDetectionForNewPath(t *testing.T) {
	const spii, spir = 0x1111222233334444, 0x5555666677778888
	cl := netip.MustParseAddrPort("192.0.2.10:4500")
	gw := netip.MustParseAddrPort("198.51.100.1:4500")
	ps := natDetection(spii, spir, cl, gw, nil)
	// The gateway's view of our request: same addresses, no NAT.
	if nl, nr, ok := natResult(spii, spir, gw, cl, swapNATD(ps)); !ok || nl || nr {
		t.Errorf("no NAT: local %v remote %v present %v", nl, nr, ok)
	}
	// A NAT rewrote our source to 203.0.113.5:61000.
	natted := netip.MustParseAddrPort("203.0.113.5:61000")
	if nl, nr, _ := natResult(spii, spir, gw, natted, swapNATD(ps)); nl || !nr {
		t.Errorf("client behind NAT, seen from the gateway: local %v remote %v", nl, nr)
	}
	// Other SPIs (an IKE rekey) give other hashes.
	if nl, nr, _ := natResult(spii+1, spir, gw, cl, swapNATD(ps)); !nl || !nr {
		t.Error("hashes do not depend on the SPIs")
	}
	// A fake source hash (ForceEncap) reads as a NAT in front of us.
	fake := bytes.Repeat([]byte{7}, 20)
	if _, nr, _ := natResult(spii, spir, gw, cl, swapNATD(natDetection(spii, spir, cl, gw, fake))); !nr {
		t.Error("fake source hash not seen as a NAT")
	}
	if _, _, ok := natResult(spii, spir, cl, gw, nil); ok {
		t.Error("NAT detection reported present without notifies")
	}
	// The request names our new address and the gateway's.
	want := natHash(spii, spir, cl)
	if n := ps[0].(*wire.Notify); n.NotifyType != wire.NotifyNATDetectionSourceIP || !bytes.Equal(n.Data, want) {
		t.Errorf("source notify %v %x", n.NotifyType, n.Data)
	}
}

// swapNATD is the same notifies as the receiver reads them: it compares
// the sender's SOURCE with the sender's address, which natResult calls
// remote. Nothing to swap; kept for readability of the calls above.
func swapNATD(ps []wire.Payload) []wire.Payload { return ps }

// TestCheckUpdateResponse: only an answer with our COOKIE2 and no
// refusal completes an address update.
func TestCheckUpdateResponse(t *testing.T) {
	cookie := bytes.Repeat([]byte{0xab}, cookie2Len)
	ok := []wire.Payload{&wire.Notify{NotifyType: wire.NotifyCookie2, Data: cookie}}
	if err := checkUpdateResponse(ok, cookie); err != nil {
		t.Fatalf("good answer: %v", err)
	}
	for name, ps := range map[string][]wire.Payload{
		"no COOKIE2":    nil,
		"wrong COOKIE2": {&wire.Notify{NotifyType: wire.NotifyCookie2, Data: bytes.Repeat([]byte{0xac}, cookie2Len)}},
		"short COOKIE2": {&wire.Notify{NotifyType: wire.NotifyCookie2, Data: cookie[:8]}},
		"UNACCEPTABLE_ADDRESSES": {&wire.Notify{NotifyType: wire.NotifyCookie2, Data: cookie},
			&wire.Notify{NotifyType: wire.NotifyUnacceptableAddresses}},
		"UNEXPECTED_NAT_DETECTED": {&wire.Notify{NotifyType: wire.NotifyCookie2, Data: cookie},
			&wire.Notify{NotifyType: wire.NotifyUnexpectedNATDetected}},
	} {
		if err := checkUpdateResponse(ps, cookie); !errors.Is(err, ErrRoamFailed) {
			t.Errorf("%s: %v, want ErrRoamFailed", name, err)
		}
	}
	st := &ikeState{spii: 1, spir: 2}
	req := updateRequest(st, netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("192.0.2.2:4500"), cookie, nil)
	if n := wire.FindNotify(req, wire.NotifyUpdateSAAddresses); n == nil {
		t.Error("request lacks UPDATE_SA_ADDRESSES")
	}
	if n := wire.FindNotify(req, wire.NotifyCookie2); n == nil || !bytes.Equal(n.Data, cookie) {
		t.Error("request lacks our COOKIE2")
	}
}

// relay stands for the network between client and gateway: the client
// talks to its front socket; it forwards to the gateway from one of two
// uplink sockets (two paths, two source addresses as the gateway sees
// them). Traffic on the path not in use is dropped both ways, as on a
// dead uplink.
type relay struct {
	front  *net.UDPConn
	up     [2]*net.UDPConn
	gw     *net.UDPAddr
	active atomic.Int32
	client atomic.Pointer[net.UDPAddr]
	// intercept, if set, sees each datagram from the client first; true
	// drops it.
	mu        sync.Mutex
	intercept func(b []byte) bool
	wg        sync.WaitGroup
}

func newRelay(t *testing.T, gw netip.AddrPort) *relay {
	t.Helper()
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	r := &relay{gw: net.UDPAddrFromAddrPort(gw)}
	var err error
	if r.front, err = net.ListenUDP("udp4", lo); err != nil {
		t.Fatal(err)
	}
	for i := range r.up {
		if r.up[i], err = net.ListenUDP("udp4", lo); err != nil {
			t.Fatal(err)
		}
	}
	r.wg.Add(3)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := r.front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.client.Store(from)
			r.mu.Lock()
			f := r.intercept
			r.mu.Unlock()
			if f != nil && f(append([]byte(nil), buf[:n]...)) {
				continue
			}
			_, _ = r.up[r.active.Load()].WriteToUDP(buf[:n], r.gw)
		}
	}()
	for i := range r.up {
		go func() {
			defer r.wg.Done()
			buf := make([]byte, 65535)
			for {
				n, _, err := r.up[i].ReadFromUDP(buf)
				if err != nil {
					return
				}
				if c := r.client.Load(); c != nil && int(r.active.Load()) == i {
					_, _ = r.front.WriteToUDP(buf[:n], c)
				}
			}
		}()
	}
	t.Cleanup(func() {
		r.front.Close()
		r.up[0].Close()
		r.up[1].Close()
		r.wg.Wait()
	})
	return r
}

func (r *relay) addr() netip.AddrPort {
	return r.front.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (r *relay) uplink(i int) netip.AddrPort { return r.up[i].LocalAddr().(*net.UDPAddr).AddrPort() }

func (r *relay) setIntercept(f func([]byte) bool) {
	r.mu.Lock()
	r.intercept = f
	r.mu.Unlock()
}

// mobikePair connects a MOBIKE client through a relay to a MOBIKE
// gateway and starts both sessions; moved receives the gateway's
// PeerMoved reports.
func mobikePair(t *testing.T) (rl *relay, client, server *Session, moved chan netip.AddrPort) {
	t.Helper()
	moved = make(chan netip.AddrPort, 4)
	g := startGateway(t, func(rc *ResponderConfig) {
		rc.MOBIKE = true
		rc.Hooks = func(s *Session) Hooks {
			return Hooks{PeerMoved: func(_, to netip.AddrPort) { moved <- to }}
		}
	})
	rl = newRelay(t, g.addr)
	cfg := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	cfg.MOBIKE = true
	cfg.ForceEncap = true
	client, server = gwConnect(t, &testGateway{r: g.r, tr: g.tr, addr: rl.addr()}, cfg)
	if !client.MOBIKE() || !server.MOBIKE() {
		t.Fatalf("MOBIKE not negotiated: client %v, gateway %v", client.MOBIKE(), server.MOBIKE())
	}
	if server.Remote() != rl.uplink(0) {
		t.Fatalf("gateway sees the client at %s, want %s", server.Remote(), rl.uplink(0))
	}
	client.Start(Hooks{}, Timers{FastLiveness: 400 * time.Millisecond})
	return rl, client, server, moved
}

// TestMOBIKEUpdateAddresses: the path changes (the gateway sees a new
// source and the old one is dead); UPDATE_SA_ADDRESSES moves the
// gateway's session there with the same SPIs and keys, and a Child SA
// rekey started by the gateway then travels the new path both ways.
func TestMOBIKEUpdateAddresses(t *testing.T) {
	leakCheck(t)
	rl, client, server, moved := mobikePair(t)
	spii, spir := client.SPIs()
	rl.active.Store(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := client.UpdateAddresses(ctx, client.LocalAddr()); err != nil {
		t.Fatalf("UpdateAddresses: %v", err)
	}
	t.Logf("address update took %s", time.Since(start).Round(time.Microsecond))
	select {
	case to := <-moved:
		if to != rl.uplink(1) {
			t.Errorf("PeerMoved to %s, want %s", to, rl.uplink(1))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("gateway reported no move")
	}
	if server.Remote() != rl.uplink(1) {
		t.Errorf("gateway session at %s, want %s", server.Remote(), rl.uplink(1))
	}
	if a, b := client.SPIs(); a != spii || b != spir {
		t.Errorf("IKE SPIs changed: %x/%x -> %x/%x", spii, spir, a, b)
	}
	if a, b := server.SPIs(); a != spii || b != spir {
		t.Errorf("gateway's IKE SPIs changed")
	}
	// The gateway's own requests now reach us only on the new path.
	if !server.SendNotifies([]*wire.Notify{{NotifyType: wire.NotifyTicketRequest}}) {
		t.Fatal("gateway session ended")
	}
	before := client.LastSeen()
	deadline := time.Now().Add(3 * time.Second)
	for !client.LastSeen().After(before) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !client.LastSeen().After(before) {
		t.Error("the gateway's request did not reach the client on the new path")
	}
	select {
	case <-client.Done():
		t.Fatalf("client session ended: %v", client.Err())
	default:
	}
}

// TestMOBIKECookie2: an answer that does not authenticate (a forged
// one) is ignored and the real one still completes the update; an
// authenticated answer with another COOKIE2 ends the SA (RFC 4555 §3.7)
// with ErrRoamFailed, so the client reconnects.
func TestMOBIKECookie2(t *testing.T) {
	leakCheck(t)
	t.Run("forged answer ignored", func(t *testing.T) {
		rl, client, server, _ := mobikePair(t)
		rl.active.Store(1)
		var once sync.Once
		rl.setIntercept(func(b []byte) bool {
			h, ok := requestHeader(b)
			if !ok {
				return false
			}
			once.Do(func() {
				// A forged answer before the real one: right header,
				// garbage inside, then the same sealed properly but
				// with another COOKIE2 and a flipped bit.
				resp := forgeResponse(t, server, h, bytes.Repeat([]byte{1}, cookie2Len))
				resp[len(resp)-1] ^= 1
				_, _ = rl.front.WriteToUDP(resp, rl.client.Load())
				junk := append([]byte{0, 0, 0, 0}, b[4:]...)
				junk[4+wire.HeaderLen+10] ^= 0xff
				binary.BigEndian.PutUint32(junk[4+20:], h.MessageID)
				junk[4+19] |= wire.FlagResponse
				_, _ = rl.front.WriteToUDP(junk, rl.client.Load())
			})
			return false
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := client.UpdateAddresses(ctx, client.LocalAddr()); err != nil {
			t.Fatalf("UpdateAddresses after a forged answer: %v", err)
		}
		if server.Remote() != rl.uplink(1) {
			t.Errorf("gateway session at %s", server.Remote())
		}
	})
	t.Run("wrong COOKIE2 ends the SA", func(t *testing.T) {
		rl, client, server, _ := mobikePair(t)
		rl.active.Store(1)
		rl.setIntercept(func(b []byte) bool {
			h, ok := requestHeader(b)
			if !ok {
				return false
			}
			// The gateway never sees it; an authenticated answer with
			// another COOKIE2 comes back.
			resp := forgeResponse(t, server, h, bytes.Repeat([]byte{2}, cookie2Len))
			_, _ = rl.front.WriteToUDP(resp, rl.client.Load())
			return true
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := client.UpdateAddresses(ctx, client.LocalAddr())
		if !errors.Is(err, ErrRoamFailed) {
			t.Fatalf("UpdateAddresses with a wrong COOKIE2: %v, want ErrRoamFailed", err)
		}
		select {
		case <-client.Done():
			if !errors.Is(client.Err(), ErrRoamFailed) {
				t.Errorf("session ended with %v", client.Err())
			}
		case <-time.After(2 * time.Second):
			t.Fatal("session survived a wrong COOKIE2")
		}
	})
	t.Run("no answer on the new path", func(t *testing.T) {
		rl, client, _, _ := mobikePair(t)
		rl.active.Store(1)
		rl.setIntercept(func([]byte) bool { return true })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err := client.UpdateAddresses(ctx, client.LocalAddr())
		if !errors.Is(err, ErrRoamFailed) {
			t.Fatalf("unanswered update: %v", err)
		}
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("gave up after %s, want a few seconds", took)
		}
		<-client.Done()
	})
}

// requestHeader reads the header of a framed INFORMATIONAL request.
func requestHeader(b []byte) (wire.Header, bool) {
	if len(b) < 4+wire.HeaderLen || binary.BigEndian.Uint32(b) != 0 {
		return wire.Header{}, false
	}
	h, err := wire.ParseHeader(b[4:])
	if err != nil || h.Exchange != wire.ExchangeInformational || h.IsResponse() {
		return wire.Header{}, false
	}
	return h, true
}

// forgeResponse seals, with the gateway's keys, an answer to h carrying
// cookie as COOKIE2, framed for port 4500.
func forgeResponse(t *testing.T, server *Session, h wire.Header, cookie []byte) []byte {
	t.Helper()
	var raw []byte
	server.do(func() {
		st := server.cur
		var err error
		raw, err = st.keys.seal(st.header(wire.ExchangeInformational, h.MessageID, true),
			[]wire.Payload{&wire.Notify{NotifyType: wire.NotifyCookie2, Data: cookie}}, server.rand)
		if err != nil {
			t.Error(err)
		}
	})
	return append([]byte{0, 0, 0, 0}, raw...)
}

// TestNoMOBIKEWithoutGateway: a gateway that does not offer MOBIKE gets
// none; UpdateAddresses refuses at once.
func TestNoMOBIKEWithoutGateway(t *testing.T) {
	leakCheck(t)
	g := startGateway(t, nil)
	cfg := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	cfg.MOBIKE = true
	client, server := gwConnect(t, g, cfg)
	if client.MOBIKE() || server.MOBIKE() {
		t.Fatal("MOBIKE negotiated with a gateway that does not offer it")
	}
	if err := client.UpdateAddresses(context.Background(), client.LocalAddr()); !errors.Is(err, ErrNoMOBIKE) {
		t.Errorf("UpdateAddresses: %v", err)
	}
}

// TestMOBIKELivenessFollowsNAT: the fast liveness check of a MOBIKE SA
// carries NAT detection. On an unchanged path that is all (one
// exchange: strongSwan rekeys Child SAs on every UPDATE_SA_ADDRESSES);
// when a NAT lost its mapping and the gateway sees us at a new source
// (which the client cannot see itself), an UPDATE_SA_ADDRESSES follows
// and the gateway moves with it.
func TestMOBIKELivenessFollowsNAT(t *testing.T) {
	leakCheck(t)
	rl, client, server, moved := mobikePair(t)
	var reqs atomic.Int32
	rl.setIntercept(func(b []byte) bool {
		if _, ok := requestHeader(b); ok {
			reqs.Add(1)
		}
		return false
	})
	check := func() {
		before := client.LastSeen()
		client.Hint()
		deadline := time.Now().Add(3 * time.Second)
		for !client.LastSeen().After(before) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // room for a follow-up exchange
	}
	check()
	if n := reqs.Load(); n != 1 {
		t.Errorf("unchanged path: %d INFORMATIONAL requests, want 1 (no update)", n)
	}
	select {
	case to := <-moved:
		t.Errorf("moved to %s on an unchanged path", to)
	default:
	}
	reqs.Store(0)
	rl.active.Store(1)
	check()
	select {
	case to := <-moved:
		if to != rl.uplink(1) {
			t.Errorf("moved to %s, want %s", to, rl.uplink(1))
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the liveness check did not move the gateway's session")
	}
	if n := reqs.Load(); n != 2 {
		t.Errorf("new NAT mapping: %d INFORMATIONAL requests, want 2 (check, update)", n)
	}
	if server.Remote() != rl.uplink(1) {
		t.Errorf("gateway session at %s", server.Remote())
	}
	select {
	case <-client.Done():
		t.Fatalf("client session ended: %v", client.Err())
	case <-time.After(200 * time.Millisecond):
	}
}

// TestNoNATsAllowed: the gateway checks NO_NATS_ALLOWED against the IP
// header (RFC 4555 §3.9): through a translating path it answers
// UNEXPECTED_NAT_DETECTED and stays where it is; with the addresses the
// packet really had it accepts the update.
func TestNoNATsAllowed(t *testing.T) {
	leakCheck(t)
	rl, client, server, _ := mobikePair(t)
	gwAddr := server.LocalAddr()
	if !gwAddr.IsValid() {
		gwAddr = server.ourAddr(rl.uplink(0))
	}
	send := func(data []byte) []wire.Payload {
		got := make(chan []wire.Payload, 1)
		client.do(func() {
			client.queue = append(client.queue, &request{exch: wire.ExchangeInformational, st: client.cur,
				payloads: []wire.Payload{&wire.Notify{NotifyType: wire.NotifyUpdateSAAddresses},
					&wire.Notify{NotifyType: wire.NotifyNoNATsAllowed, Data: data}},
				onResponse: func(ps []wire.Payload) { got <- ps }})
		})
		select {
		case ps := <-got:
			return ps
		case <-time.After(3 * time.Second):
			t.Fatal("no answer")
			return nil
		}
	}
	// What the client believes: its own socket to the relay.
	ps := send(encodeNoNATs(client.LocalAddr(), rl.addr()))
	if wire.FindNotify(ps, wire.NotifyUnexpectedNATDetected) == nil {
		t.Errorf("translated path: answer %v lacks UNEXPECTED_NAT_DETECTED", ps)
	}
	// What the gateway saw.
	ps = send(encodeNoNATs(rl.uplink(0), gwAddr))
	if wire.FindNotify(ps, wire.NotifyUnexpectedNATDetected) != nil {
		t.Errorf("true addresses refused: %v", ps)
	}
	if server.Remote() != rl.uplink(0) {
		t.Errorf("gateway moved to %s", server.Remote())
	}
}

// FuzzParseNoNATs: NO_NATS_ALLOWED data of any length is read or
// refused without a panic, and what is read encodes back to the input.
func FuzzParseNoNATs(f *testing.F) {
	f.Add(encodeNoNATs(netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("192.0.2.2:4500")))
	f.Add(encodeNoNATs(netip.MustParseAddrPort("[2001:db8::1]:500"), netip.MustParseAddrPort("[2001:db8::2]:4500")))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		src, dst, err := parseNoNATs(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeNoNATs(src, dst), b) {
			t.Fatalf("%x read as %s -> %s", b, src, dst)
		}
	})
}
