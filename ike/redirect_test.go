package ike

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// TestRedirect walks RFC 5685 in its three places: the IKE_SA_INIT
// response (with our nonce), the IKE_AUTH response (after AUTH) and an
// established SA; the second gateway sees REDIRECTED_FROM.
func TestRedirect(t *testing.T) {
	leakCheck(t)
	target := RedirectTarget{Addr: netip.MustParseAddr("192.0.2.77")}
	cfg := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")

	g1 := startGateway(t, func(rc *ResponderConfig) {
		rc.RedirectInit = func(netip.AddrPort) (RedirectTarget, bool) { return target, true }
	})
	_, err := gwDial(t, g1.addr, cfg)
	var re *RedirectError
	if !errors.As(err, &re) || re.To != target || re.Phase != "IKE_SA_INIT" {
		t.Fatalf("IKE_SA_INIT redirect: %v", err)
	}

	named := RedirectTarget{FQDN: "gw2.example"}
	g2 := startGateway(t, func(rc *ResponderConfig) {
		rc.RedirectAuth = func(p auth.Identity, _ netip.AddrPort) (RedirectTarget, bool) {
			return named, p.Equal(gwClientID)
		}
	})
	_, err = gwDial(t, g2.addr, cfg)
	if !errors.As(err, &re) || re.To != named || re.Phase != "IKE_AUTH" {
		t.Fatalf("IKE_AUTH redirect: %v", err)
	}
	if st := g2.r.Stats(); st.Redirected != 1 || st.Established != 0 {
		t.Errorf("stats after the IKE_AUTH redirect: %+v", st)
	}

	// Established, then moved on by the gateway; the new attempt says
	// where it came from.
	g3 := startGateway(t, nil)
	c, s := gwConnect(t, g3, cfg)
	c.Start(Hooks{}, Timers{})
	if !s.Redirect(target) {
		t.Fatal("Redirect refused for a client that supports it")
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client did not leave after the redirect")
	}
	if !errors.As(c.Err(), &re) || re.To != target || re.Phase != "session" {
		t.Fatalf("session redirect: %v", c.Err())
	}
	cfg2 := *cfg
	cfg2.RedirectedFrom = g3.addr.Addr()
	st := &initState{cfg: &cfg2}
	n := st.redirectNotifies()[0].(*wire.Notify)
	if tt, nonce, err := parseRedirect(n.Data); n.NotifyType != wire.NotifyRedirectedFrom || err != nil || tt.Addr != g3.addr.Addr() || len(nonce) != 0 {
		t.Errorf("REDIRECTED_FROM: %v %v %v", n.NotifyType, tt, err)
	}
}

// TestParseRedirect: REDIRECT data round-trips; malformed data is refused.
func TestParseRedirect(t *testing.T) {
	data := encodeRedirect(RedirectTarget{Addr: netip.MustParseAddr("2001:db8::1")}, bytes.Repeat([]byte{1}, 32))
	tt, nonce, err := parseRedirect(data)
	if err != nil || tt.Addr != netip.MustParseAddr("2001:db8::1") || !bytes.Equal(nonce, bytes.Repeat([]byte{1}, 32)) {
		t.Fatalf("round trip: %v %v", tt, err)
	}
	for _, bad := range [][]byte{nil, {1}, {1, 4, 1, 2}, {2, 4, 1, 2, 3, 4}, {3, 0}, {9, 1, 1}, {1, 4, 0, 0, 0, 0}} {
		if _, _, err := parseRedirect(bad); err == nil {
			t.Errorf("parseRedirect(%x) accepted", bad)
		}
	}
}

func FuzzParseRedirect(f *testing.F) {
	f.Add(encodeRedirect(RedirectTarget{FQDN: "gw.example"}, []byte("0123456789abcdef")))
	f.Add(encodeRedirect(RedirectTarget{Addr: netip.MustParseAddr("192.0.2.1")}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		tt, nonce, err := parseRedirect(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeRedirect(tt, nonce)[2:], b[2:]) {
			t.Fatalf("re-encoding differs for %x", b)
		}
	})
}

// TestRedirectForgedNonce: a REDIRECT without our nonce is an injection
// (RFC 5685 §3) and is ignored; the one with it redirects, and the
// request said REDIRECT_SUPPORTED.
func TestRedirectForgedNonce(t *testing.T) {
	to := RedirectTarget{Addr: netip.MustParseAddr("192.0.2.9")}
	peer := newFakePeer(t,
		func(m *wire.Message) *wire.Message {
			return reply(m, &wire.Notify{NotifyType: wire.NotifyRedirect, Data: encodeRedirect(RedirectTarget{Addr: netip.MustParseAddr("203.0.113.1")}, bytes.Repeat([]byte{7}, 32))})
		},
		func(m *wire.Message) *wire.Message {
			ni := wire.Find[*wire.Nonce](m.Payloads).Data
			return reply(m, &wire.Notify{NotifyType: wire.NotifyRedirect, Data: encodeRedirect(to, ni)})
		},
	)
	cfg := testConfig(t, "aes256gcm16-prfsha256-x25519")
	_, err := Initiate(context.Background(), cfg, listen(t), peer.addr())
	var re *RedirectError
	if !errors.As(err, &re) || re.To != to {
		t.Fatalf("err = %v, want a redirect to %s", err, to)
	}
	seen := peer.seen()
	if len(seen) != 2 {
		t.Fatalf("peer saw %d requests, want 2 (the forged redirect must be ignored)", len(seen))
	}
	if seen[0].Notify(wire.NotifyRedirectSupported) == nil {
		t.Error("IKE_SA_INIT lacks REDIRECT_SUPPORTED")
	}
}
