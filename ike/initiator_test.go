package ike

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// fakePeer is a scripted responder on loopback: each step sees one request
// and returns the reply to send (nil: stay silent).
type fakePeer struct {
	t    *testing.T
	conn *net.UDPConn
	mu   sync.Mutex
	msgs []*wire.Message
}

// seen returns the requests received so far.
func (p *fakePeer) seen() []*wire.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*wire.Message(nil), p.msgs...)
}

func newFakePeer(t *testing.T, steps ...func(*wire.Message) *wire.Message) *fakePeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePeer{t: t, conn: c}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for i := 0; ; {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			m, err := wire.Parse(buf[:n])
			if err != nil {
				t.Errorf("fake peer: client sent an unparsable message: %v", err)
				continue
			}
			p.mu.Lock()
			p.msgs = append(p.msgs, m)
			p.mu.Unlock()
			if i >= len(steps) {
				continue
			}
			reply := steps[i](m)
			i++
			if reply == nil {
				continue
			}
			raw, err := reply.Encode()
			if err != nil {
				t.Errorf("fake peer: %v", err)
				continue
			}
			c.WriteToUDPAddrPort(raw, from)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return p
}

func (p *fakePeer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func reply(req *wire.Message, ps ...wire.Payload) *wire.Message {
	return &wire.Message{
		Header:   wire.Header{SPIi: req.Header.SPIi, SPIr: 0, Exchange: req.Header.Exchange, Flags: wire.FlagResponse, MessageID: req.Header.MessageID},
		Payloads: ps,
	}
}

func testConfig(t *testing.T, proposals ...string) *Config {
	t.Helper()
	cfg := &Config{
		LocalID:    auth.ParseIdentity("client.example"),
		RemoteID:   auth.ParseIdentity("gw.example"),
		PSK:        []byte("secret"),
		Retransmit: Retransmit{Timeout: 50 * time.Millisecond, Base: 2, Tries: 3},
		TSi:        []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")},
		TSr:        []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}
	cfg.IKEProposals = gwProposals(t, false, proposals...)
	cfg.ESPProposals = gwProposals(t, true, "aes256gcm16")
	return cfg
}

func listen(t *testing.T) *Transport {
	t.Helper()
	tr, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestInitCookieThenInvalidKE walks IKE_SA_INIT through a COOKIE request,
// then an INVALID_KE_PAYLOAD, then NO_PROPOSAL_CHOSEN, checking that every
// retry carries what the responder asked for.
func TestInitCookieThenInvalidKE(t *testing.T) {
	cookie := []byte("0123456789abcdef")
	peer := newFakePeer(t,
		func(m *wire.Message) *wire.Message {
			return reply(m, &wire.Notify{NotifyType: wire.NotifyCookie, Data: cookie})
		},
		func(m *wire.Message) *wire.Message {
			ke := make([]byte, 2)
			binary.BigEndian.PutUint16(ke, ikecrypto.GroupECP256)
			return reply(m, &wire.Notify{NotifyType: wire.NotifyInvalidKEPayload, Data: ke})
		},
		func(m *wire.Message) *wire.Message {
			return reply(m, &wire.Notify{NotifyType: wire.NotifyNoProposalChosen})
		},
	)
	cfg := testConfig(t, "aes256gcm16-prfsha256-x25519-ecp256")
	_, err := Initiate(context.Background(), cfg, listen(t), peer.addr())
	if !errors.Is(err, ErrNoProposalChosen) {
		t.Fatalf("err = %v, want NO_PROPOSAL_CHOSEN", err)
	}
	seen := peer.seen()
	if len(seen) != 3 {
		t.Fatalf("peer saw %d requests, want 3", len(seen))
	}
	first, second, third := seen[0], seen[1], seen[2]
	if n := first.Notify(wire.NotifyCookie); n != nil {
		t.Error("first request carries a cookie")
	}
	if ke := wire.Find[*wire.KE](first.Payloads); ke == nil || ke.Group != ikecrypto.GroupCurve25519 {
		t.Errorf("first KE = %+v, want x25519", ke)
	}
	// RFC 7296 §2.6: the cookie notify comes first.
	if n, ok := second.Payloads[0].(*wire.Notify); !ok || n.NotifyType != wire.NotifyCookie || string(n.Data) != string(cookie) {
		t.Errorf("second request does not start with our cookie: %v", second.Payloads[0])
	}
	if ke := wire.Find[*wire.KE](third.Payloads); ke == nil || ke.Group != ikecrypto.GroupECP256 || len(ke.Data) != 64 {
		t.Errorf("third KE = %+v, want ECP-256 with 64 bytes", ke)
	}
	if n, ok := third.Payloads[0].(*wire.Notify); !ok || n.NotifyType != wire.NotifyCookie {
		t.Error("third request lost the cookie")
	}
	for _, m := range seen {
		if m.Header.SPIi != first.Header.SPIi || m.Header.SPIr != 0 || m.Header.MessageID != 0 || !m.Header.IsInitiator() {
			t.Errorf("request header %+v", m.Header)
		}
	}
}

// TestInitInvalidKEForGroupNotOffered: the responder's group must be one
// we offered; anything else ends the attempt with a clear error.
func TestInitInvalidKEForGroupNotOffered(t *testing.T) {
	peer := newFakePeer(t, func(m *wire.Message) *wire.Message {
		return reply(m, &wire.Notify{NotifyType: wire.NotifyInvalidKEPayload, Data: []byte{0, 14}})
	})
	_, err := Initiate(context.Background(), testConfig(t, "aes256gcm16-prfsha256-x25519"), listen(t), peer.addr())
	if err == nil || !strings.Contains(err.Error(), "MODP_2048") {
		t.Fatalf("err = %v, want a complaint naming MODP_2048", err)
	}
}

// TestInitRetransmitsThenGivesUp: a silent responder sees every try, and
// the client gives up after the budget with ErrNoResponse.
func TestInitRetransmitsThenGivesUp(t *testing.T) {
	peer := newFakePeer(t)
	cfg := testConfig(t, "aes256gcm16-prfsha256-x25519")
	start := time.Now()
	_, err := Initiate(context.Background(), cfg, listen(t), peer.addr())
	took := time.Since(start)
	if !errors.Is(err, ErrNoResponse) {
		t.Fatalf("err = %v, want ErrNoResponse", err)
	}
	if took < cfg.Retransmit.Budget() {
		t.Errorf("gave up after %s, before the %s budget", took, cfg.Retransmit.Budget())
	}
	time.Sleep(20 * time.Millisecond)
	seen := peer.seen()
	if len(seen) != cfg.Retransmit.Tries {
		t.Fatalf("peer saw %d tries, want %d", len(seen), cfg.Retransmit.Tries)
	}
	for _, m := range seen[1:] {
		if m.Header.SPIi != seen[0].Header.SPIi {
			t.Error("retransmission changed the SPI")
		}
	}
}

// TestInitRejectsBadChoice: a responder that picks something we never
// offered is refused.
func TestInitRejectsBadChoice(t *testing.T) {
	peer := newFakePeer(t, func(m *wire.Message) *wire.Message {
		r := reply(m,
			&wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{
				{Type: wire.TransformEncr, ID: ikecrypto.EncrAESCBC, KeyLength: 128},
				{Type: wire.TransformPRF, ID: ikecrypto.PRFHMACSHA2_256},
				{Type: wire.TransformInteg, ID: ikecrypto.IntegHMACSHA2_256_128},
				{Type: wire.TransformKE, ID: ikecrypto.GroupCurve25519},
			}}}},
			&wire.KE{Group: ikecrypto.GroupCurve25519, Data: make([]byte, 32)},
			&wire.Nonce{Data: make([]byte, 32)})
		r.Header.SPIr = 42
		return r
	})
	_, err := Initiate(context.Background(), testConfig(t, "aes256gcm16-prfsha256-x25519"), listen(t), peer.addr())
	if err == nil || !strings.Contains(err.Error(), "not offered") {
		t.Fatalf("err = %v, want 'not offered'", err)
	}
}

// TestInitRejectsZeroKE: an all-zero x25519 value (small order) from the
// responder is refused before any key is derived.
func TestInitRejectsZeroKE(t *testing.T) {
	peer := newFakePeer(t, func(m *wire.Message) *wire.Message {
		sa := wire.Find[*wire.SA](m.Payloads)
		chosen := sa.Proposals[0]
		chosen.SPI = nil
		r := reply(m, &wire.SA{Proposals: []wire.Proposal{chosen}},
			&wire.KE{Group: ikecrypto.GroupCurve25519, Data: make([]byte, 32)},
			&wire.Nonce{Data: make([]byte, 32)})
		r.Header.SPIr = 42
		return r
	})
	_, err := Initiate(context.Background(), testConfig(t, "aes256gcm16-prfsha256-x25519"), listen(t), peer.addr())
	if err == nil || !strings.Contains(err.Error(), "key exchange value") {
		t.Fatalf("err = %v, want a rejected key exchange value", err)
	}
}

// TestInitContextCancel: cancelling stops the attempt at once and leaks no
// goroutine.
func TestInitContextCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	peer := newFakePeer(t)
	tr, _ := Listen("127.0.0.1:0", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	cfg := testConfig(t, "aes256gcm16-prfsha256-x25519")
	cfg.Retransmit = Retransmit{Timeout: time.Second, Base: 2, Tries: 5}
	_, err := Initiate(ctx, cfg, tr, peer.addr())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	tr.Close()
	peer.conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("goroutines: %d before, %d after", before, n)
	}
}

func TestRangeToPrefixes(t *testing.T) {
	cases := []struct{ start, end, want string }{
		{"10.0.0.0", "10.0.0.255", "10.0.0.0/24"},
		{"0.0.0.0", "255.255.255.255", "0.0.0.0/0"},
		{"10.0.0.1", "10.0.0.1", "10.0.0.1/32"},
		{"10.0.0.1", "10.0.0.6", "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32"},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0"},
	}
	for _, c := range cases {
		var got []string
		for _, p := range rangeToPrefixes(netip.MustParseAddr(c.start), netip.MustParseAddr(c.end)) {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s-%s: %v, want %s", c.start, c.end, got, c.want)
		}
	}
	if rangeToPrefixes(netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1")) != nil {
		t.Error("reversed range gave prefixes")
	}
}

func TestRetransmitBudget(t *testing.T) {
	if got := DefaultRetransmit().Budget(); got != 31*time.Second {
		t.Errorf("default budget %s, want 31s", got)
	}
}

// TestNATHash checks RFC 7296 §2.23's hash layout against a hand-computed
// SHA-1 of SPIi | SPIr | IP | port.
func TestNATHash(t *testing.T) {
	got := natHash(0x0102030405060708, 0, netip.MustParseAddrPort("192.0.2.1:500"))
	// sha1(0102030405060708 0000000000000000 c0000201 01f4), computed
	// with another tool.
	want := "644b4575455bd6fcc1efe2be8162a9218e448e5f"
	if h := hexString(got); h != want {
		t.Errorf("hash %s, want %s", h, want)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
