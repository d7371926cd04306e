package ike

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// tapRelay forwards UDP between one client and a gateway like a path an
// attacker controls: it records every datagram each way and may rewrite
// IKE messages in flight.
type tapRelay struct {
	conn    *net.UDPConn
	gw      netip.AddrPort
	client  atomic.Pointer[netip.AddrPort]
	rewrite func(fromClient bool, m *wire.Message) bool // true: re-encode m

	mu       sync.Mutex
	toClient [][]byte
	toGW     [][]byte
}

func newTapRelay(t *testing.T, gw netip.AddrPort, rewrite func(fromClient bool, m *wire.Message) bool) *tapRelay {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &tapRelay{conn: c, gw: gw, rewrite: rewrite}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			b := append([]byte(nil), buf[:n]...)
			fromClient := from != r.gw
			to := r.gw
			if fromClient {
				r.client.Store(&from)
			} else {
				p := r.client.Load()
				if p == nil {
					continue
				}
				to = *p
			}
			if r.rewrite != nil {
				b = r.tamper(fromClient, b)
			}
			r.mu.Lock()
			if fromClient {
				r.toGW = append(r.toGW, b)
			} else {
				r.toClient = append(r.toClient, b)
			}
			r.mu.Unlock()
			_, _ = c.WriteToUDPAddrPort(b, to)
		}
	}()
	return r
}

// tamper applies rewrite to an IKE message, with or without the non-ESP
// marker.
func (r *tapRelay) tamper(fromClient bool, b []byte) []byte {
	var marker []byte
	msg := b
	if len(b) >= 4 && binary.BigEndian.Uint32(b) == 0 {
		marker, msg = b[:4], b[4:]
	}
	m, err := wire.Parse(msg)
	if err != nil {
		return b
	}
	if !r.rewrite(fromClient, m) {
		return b
	}
	out, err := m.Encode()
	if err != nil {
		return b
	}
	return append(append([]byte(nil), marker...), out...)
}

func (r *tapRelay) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(r.conn.LocalAddr().(*net.UDPAddr).Port))
}

func (r *tapRelay) recorded() (toClient, toGW [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.toClient...), append([][]byte(nil), r.toGW...)
}

// initOnly runs f on IKE_SA_INIT messages sent by the client (request) or
// by the gateway (response) only.
func initOnly(request bool, f func(m *wire.Message)) func(bool, *wire.Message) bool {
	return func(fromClient bool, m *wire.Message) bool {
		if fromClient != request || m.Header.Exchange != wire.ExchangeIKESAInit {
			return false
		}
		f(m)
		return true
	}
}

// dialVia runs a client handshake towards the gateway through relay.
func dialVia(t *testing.T, r *tapRelay, cfg *Config) (*Session, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Initiate(ctx, cfg, listen(t), r.addr())
	if err == nil {
		t.Cleanup(func() { s.Abandon(ErrClosed) })
	}
	return s, err
}

// TestTamperedInitDetectedAtAuth: an attacker on the path who changes the
// unprotected IKE_SA_INIT without touching the key exchange (here: adds a
// Vendor ID payload) is caught at IKE_AUTH, because each side signs the
// IKE_SA_INIT message as it sent it (RFC 7296 §2.15 signed octets) and the
// other verifies it over the message as it received it. The gateway
// establishes nothing; a relay that only forwards proves the test could
// pass.
func TestTamperedInitDetectedAtAuth(t *testing.T) {
	leakCheck(t)
	vid := func(m *wire.Message) {
		m.Payloads = append(m.Payloads, &wire.VendorID{Data: []byte("inserted on the path")})
	}
	for _, tc := range []struct {
		name    string
		rewrite func(bool, *wire.Message) bool
		ok      bool
	}{
		{"untouched", func(bool, *wire.Message) bool { return false }, true},
		{"request", initOnly(true, vid), false},
		{"response", initOnly(false, vid), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, nil)
			r := newTapRelay(t, g.addr, tc.rewrite)
			_, err := dialVia(t, r, gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16"))
			if tc.ok {
				if err != nil {
					t.Fatalf("through an honest relay: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("a tampered IKE_SA_INIT went unnoticed")
			}
			if !strings.Contains(strings.ToLower(err.Error()), "auth") {
				t.Errorf("err = %v, want an authentication failure", err)
			}
			st := g.r.Stats()
			if tc.name == "request" && (st.AuthFailed != 1 || st.Established != 0) {
				t.Errorf("gateway stats %+v, want one AuthFailed and nothing established", st)
			}
			t.Logf("rejected: %v (gateway stats %+v)", err, st)
		})
	}
}

// modp2048P is the RFC 3526 §3 prime.
var modp2048P, _ = new(big.Int).SetString("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)

// TestBadKEValuesOnTheWire: key exchange values of small order or out of
// range, put into a real IKE_SA_INIT by the path (x25519 values whose
// shared secret is all zero, an ECP point off the curve and the point at
// infinity, MODP 0, 1, p-1 and p), are refused by whichever end receives
// them: the gateway answers INVALID_SYNTAX, counts the refusal and keeps
// no half-open SA; the client gives up with a one-line error.
func TestBadKEValuesOnTheWire(t *testing.T) {
	leakCheck(t)
	x25519Order8, _ := hex.DecodeString("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
	modp := func(x *big.Int) []byte { return x.FillBytes(make([]byte, 256)) }
	type bad struct {
		name string
		val  func(real []byte) []byte
	}
	cases := []struct {
		proposal string
		bads     []bad
	}{
		{"aes256gcm16-prfsha256-x25519", []bad{
			{"zero", func([]byte) []byte { return make([]byte, 32) }},
			{"one", func([]byte) []byte { b := make([]byte, 32); b[0] = 1; return b }},
			{"order 8", func([]byte) []byte { return x25519Order8 }},
		}},
		{"aes256gcm16-prfsha256-ecp256", []bad{
			{"off curve", func(real []byte) []byte {
				b := append([]byte(nil), real...)
				b[len(b)-1] ^= 1
				return b
			}},
			{"infinity", func(real []byte) []byte { return make([]byte, len(real)) }},
		}},
		{"aes256gcm16-prfsha256-modp2048", []bad{
			{"0", func([]byte) []byte { return modp(big.NewInt(0)) }},
			{"1", func([]byte) []byte { return modp(big.NewInt(1)) }},
			{"p-1", func([]byte) []byte { return modp(new(big.Int).Sub(modp2048P, big.NewInt(1))) }},
			{"p", func([]byte) []byte { return modp(modp2048P) }},
		}},
	}
	for _, tc := range cases {
		for _, b := range tc.bads {
			for _, toGateway := range []bool{true, false} {
				dir := "to gateway"
				if !toGateway {
					dir = "to client"
				}
				t.Run(tc.proposal[strings.LastIndex(tc.proposal, "-")+1:]+"/"+b.name+"/"+dir, func(t *testing.T) {
					g := startGateway(t, func(rc *ResponderConfig) {
						rc.IKEProposals = gwProposals(t, false, tc.proposal)
					})
					r := newTapRelay(t, g.addr, initOnly(toGateway, func(m *wire.Message) {
						if ke := wire.Find[*wire.KE](m.Payloads); ke != nil {
							ke.Data = b.val(ke.Data)
						}
					}))
					cfg := gwClientConfig(t, tc.proposal, "aes256gcm16")
					cfg.Retransmit = Retransmit{Timeout: 100 * time.Millisecond, Base: 1, Tries: 2}
					_, err := dialVia(t, r, cfg)
					if err == nil {
						t.Fatal("handshake with a bad key exchange value succeeded")
					}
					if strings.Contains(err.Error(), "\n") {
						t.Errorf("error is not one line: %q", err)
					}
					st := g.r.Stats()
					// Towards the client the gateway saw an honest request:
					// its half-open SA times out as any other would.
					if st.Established != 0 || (toGateway && st.HalfOpen != 0) {
						t.Errorf("gateway stats %+v: state was kept", st)
					}
					if toGateway && st.InitRefused == 0 {
						t.Errorf("gateway stats %+v: the refusal was not counted", st)
					}
				})
			}
		}
	}
}

// stateSnap is what an attack must not change: the IKE SA's SPIs, its
// keys, message IDs, Child SAs, and the reassembler's buffer.
type stateSnap struct {
	spii, spir       uint64
	keys             *saKeys
	skd, skei, sker  []byte
	nextID, peerNext uint32
	child            *ChildSA
	childIn, out     uint32
	buffered         int
}

func snap(t *testing.T, s *Session) stateSnap {
	t.Helper()
	var out stateSnap
	if !s.do(func() {
		st := s.cur
		out = stateSnap{spii: st.spii, spir: st.spir, keys: st.keys,
			skd:    bytes.Clone(st.keys.keys.SKd),
			skei:   bytes.Clone(st.keys.keys.SKei),
			sker:   bytes.Clone(st.keys.keys.SKer),
			nextID: st.nextID, peerNext: st.peerNext, child: s.child}
		if s.child != nil {
			out.childIn, out.out = s.child.SPIIn, s.child.SPIOut
		}
		if s.frags != nil {
			s.frags.mu.Lock()
			out.buffered = s.frags.buffered
			s.frags.mu.Unlock()
		}
	}) {
		t.Fatalf("session ended: %v", s.Err())
	}
	return out
}

func (a stateSnap) equal(b stateSnap) bool {
	return a.spii == b.spii && a.spir == b.spir && a.keys == b.keys &&
		bytes.Equal(a.skd, b.skd) && bytes.Equal(a.skei, b.skei) && bytes.Equal(a.sker, b.sker) &&
		a.nextID == b.nextID && a.peerNext == b.peerNext && a.child == b.child &&
		a.childIn == b.childIn && a.out == b.out && a.buffered == b.buffered
}

// liveness runs one liveness check from s and waits for its answer.
func liveness(t *testing.T, s *Session) {
	t.Helper()
	before := s.LastSeen()
	time.Sleep(2 * time.Millisecond)
	s.do(func() { s.livenessCheck(false) })
	gwWaitFor(t, "a liveness check answered", func() bool { return s.LastSeen().After(before) })
}

// TestForgedAndReplayedIKE: against an established client session, with
// the gateway's own address as source (the relay) and from a stranger,
// each of these is dropped, counted in Session.Drops, and leaves SPIs,
// keys, message IDs, Child SA and reassembly buffer as they were:
//   - every datagram the gateway ever sent, replayed (IKE_SA_INIT and
//     IKE_AUTH responses, old liveness requests and responses);
//   - unprotected INFORMATIONAL requests and responses naming the SA with
//     N(INVALID_SPI), N(INVALID_IKE_SPI), N(QCD_TOKEN) and N(REDIRECT)
//     (RFC 7296 §2.21: outside a protected exchange they change nothing;
//     the SDK's QCD check sits in the Unprotected hook, tested in e2e);
//   - SK payloads of random bytes, and truncated headers naming the SA;
//   - a flood of forged SKF fragments, some claiming 65535 fragments;
//   - authentic fragments (sealed with the gateway's keys) claiming more
//     fragments, or carrying more bytes, than the reassembler accepts.
//
// The same replay against the gateway's session leaves it unchanged too;
// liveness checks both ways still work afterwards.
func TestForgedAndReplayedIKE(t *testing.T) {
	leakCheck(t)
	g := startGateway(t, nil)
	r := newTapRelay(t, g.addr, nil)
	c, err := dialVia(t, r, gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16"))
	if err != nil {
		t.Fatal(err)
	}
	var s *Session
	select {
	case s = <-g.r.Sessions():
		t.Cleanup(func() { s.Abandon(ErrClosed) })
	case <-time.After(5 * time.Second):
		t.Fatal("no gateway session")
	}
	c.Start(Hooks{}, Timers{})
	// Some protected traffic both ways to replay later.
	for range 3 {
		liveness(t, c)
		liveness(t, s)
	}
	toClient, toGW := r.recorded()
	if len(toClient) < 8 || len(toGW) < 8 {
		t.Fatalf("recorded %d datagrams to the client, %d to the gateway", len(toClient), len(toGW))
	}
	beforeC, beforeS := snap(t, c), snap(t, s)
	dc0 := c.Drops()

	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	clientAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), c.Transport().LocalPort())
	gwAddr := g.addr
	// send paces itself (but for the flood) so that the session's queue
	// of 16 holds everything and each message is counted where it is
	// judged; the flood overflows it, and the transport counts that.
	pace := true
	send := func(to netip.AddrPort, b []byte) {
		for _, conn := range []*net.UDPConn{r.conn, stranger} {
			if _, err := conn.WriteToUDPAddrPort(b, to); err != nil {
				t.Fatal(err)
			}
			if pace {
				time.Sleep(200 * time.Microsecond)
			}
		}
	}
	marked := func(b []byte) []byte { return append([]byte{0, 0, 0, 0}, b...) }
	spii, spir := c.SPIs()
	hdr := func(exch wire.ExchangeType, flags uint8, id uint32) wire.Header {
		return wire.Header{SPIi: spii, SPIr: spir, Version: 0x20, Exchange: exch, Flags: flags, MessageID: id}
	}
	encode := func(h wire.Header, ps ...wire.Payload) []byte {
		b, err := (&wire.Message{Header: h, Payloads: ps}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}

	// Replays.
	for _, b := range toClient {
		send(clientAddr, b)
	}
	// Unprotected notifies, as requests and as responses.
	nonce := random(32)
	for _, flags := range []uint8{0, wire.FlagResponse} {
		for _, n := range []*wire.Notify{
			{Protocol: wire.ProtoESP, SPI: binary.BigEndian.AppendUint32(nil, beforeC.out), NotifyType: wire.NotifyInvalidSPI},
			{NotifyType: wire.NotifyInvalidIKESPI},
			{NotifyType: wire.NotifyQCDToken, Data: random(32)},
			{NotifyType: wire.NotifyRedirect, Data: encodeRedirect(RedirectTarget{Addr: netip.MustParseAddr("192.0.2.66")}, nonce)},
		} {
			for _, id := range []uint32{0, 1, beforeC.peerNext, beforeC.nextID} {
				send(clientAddr, marked(encode(hdr(wire.ExchangeInformational, flags, id), n)))
			}
		}
	}
	// Forged SK payloads and broken headers naming the SA.
	for i := range 50 {
		send(clientAddr, marked(encode(hdr(wire.ExchangeInformational, 0, beforeC.peerNext+uint32(i%2)),
			&wire.Encrypted{InnerNext: wire.PayloadNotify, Body: random(40 + i)})))
	}
	short := encode(hdr(wire.ExchangeInformational, 0, beforeC.peerNext))
	binary.BigEndian.PutUint32(short[24:], 9999) // length beyond the datagram
	send(clientAddr, marked(short))
	send(clientAddr, short)
	// A forged fragment flood.
	pace = false
	qf0 := c.Transport().QueueFull()
	for i := range 2000 {
		total := uint16(2 + i%8)
		if i%10 == 0 {
			total = 0xffff
		}
		f := &wire.EncryptedFragment{Number: 1 + uint16(i)%total, Total: total, Body: random(64 + i%1000)}
		if f.Number == 1 {
			f.InnerNext = wire.PayloadNotify
		}
		send(clientAddr, marked(encode(hdr(wire.ExchangeInformational, 0, beforeC.peerNext), f)))
	}
	pace = true
	// The socket buffer (7 MiB, for ESP) holds most of the flood: wait
	// until the client has judged it, so that the fragments below do not
	// meet a full queue.
	settled, last := time.Now().Add(5*time.Second), uint64(0)
	for time.Now().Before(settled) {
		time.Sleep(100 * time.Millisecond)
		n := c.Drops().Forged + c.Transport().QueueFull()
		if n == last {
			break
		}
		last = n
	}
	// Authentic but oversized: the gateway's keys, too many fragments, or
	// too many bytes for the reassembler.
	var gk *saKeys
	var gh wire.Header
	s.do(func() {
		gk = s.cur.keys
		gh = s.cur.header(wire.ExchangeInformational, beforeC.peerNext, false)
	})
	send(clientAddr, marked(sealFragment(t, gk, gh, wire.PayloadNotify, 1, 200, random(100))))
	// 47 fragments of 1400 bytes pass the 64 KiB bound with the last one,
	// which makes the reassembler drop the whole message.
	for i := range uint16(47) {
		var next wire.PayloadType
		if i == 0 {
			next = wire.PayloadNotify
		}
		if _, err := r.conn.WriteToUDPAddrPort(marked(sealFragment(t, gk, gh, next, i+1, 64, random(1400))), clientAddr); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	// The replay against the gateway.
	for _, b := range toGW {
		send(gwAddr, b)
	}

	// All of it dropped and counted, nothing changed.
	want := func(name string, got, before uint64) {
		t.Helper()
		if got <= before {
			t.Errorf("Drops.%s did not grow (%d)", name, got)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		d := c.Drops()
		all := d.Replayed > dc0.Replayed && d.Unexpected > dc0.Unexpected && d.Unprotected > dc0.Unprotected &&
			d.Forged > dc0.Forged && d.Oversized > dc0.Oversized && d.Malformed > dc0.Malformed
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let the tail of the flood arrive
	d := c.Drops()
	want("Replayed", d.Replayed, dc0.Replayed)
	want("Unexpected", d.Unexpected, dc0.Unexpected)
	want("Unprotected", d.Unprotected, dc0.Unprotected)
	want("Forged", d.Forged, dc0.Forged)
	want("Oversized", d.Oversized, dc0.Oversized)
	want("Malformed", d.Malformed, dc0.Malformed)
	qf := c.Transport().QueueFull() - qf0
	t.Logf("client drops: %+v (queue full in the flood: %d); gateway drops: %+v", d, qf, s.Drops())
	// Of the 4000 flood datagrams, those the kernel's socket buffer did
	// not drop were judged forged or did not fit the queue.
	if d.Forged-dc0.Forged < 100 || d.Forged-dc0.Forged+qf < 500 {
		t.Errorf("of 4000 forged fragments only %d were counted as forged (%d queue full)", d.Forged-dc0.Forged, qf)
	}
	if ds := s.Drops(); ds.Replayed+ds.Unexpected+ds.Unprotected == 0 {
		t.Errorf("gateway counted none of the replayed messages: %+v", ds)
	}
	if got := snap(t, c); !got.equal(beforeC) {
		t.Errorf("client state changed:\n got %+v\nwant %+v", got, beforeC)
	}
	if got := snap(t, s); !got.equal(beforeS) {
		t.Errorf("gateway state changed:\n got %+v\nwant %+v", got, beforeS)
	}
	if c.Err() != nil || s.Err() != nil {
		t.Fatalf("sessions ended: client %v, gateway %v", c.Err(), s.Err())
	}
	liveness(t, c)
	liveness(t, s)
}
