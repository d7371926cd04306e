package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/qcdvpn/qcdvpn/internal/dnstest"
)

func startServer(t *testing.T, records ...string) (*dnstest.Server, netip.AddrPort) {
	t.Helper()
	s, err := dnstest.New(records...)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	s.Start(pc, l)
	t.Cleanup(s.Close)
	return s, netip.MustParseAddrPort(pc.LocalAddr().String())
}

func TestLookupKeepsEveryAddressAndCaches(t *testing.T) {
	srv, addr := startServer(t,
		"gw.test. 300 IN A 192.0.2.1", "gw.test. 300 IN A 192.0.2.9", "gw.test. 60 IN AAAA 2001:db8::1",
		"alias.test. 300 IN CNAME gw.test.")
	r := New(Options{Servers: []netip.AddrPort{addr}})
	ctx := context.Background()
	got, err := r.Lookup(ctx, "GW.test.")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("2001:db8::1")}
	if !slices.Equal(got, want) {
		t.Fatalf("Lookup = %v, want %v", got, want)
	}
	if n := srv.Count("gw.test"); n != 2 {
		t.Fatalf("%d queries for gw.test, want 2 (A and AAAA)", n)
	}
	for range 5 {
		if again, err := r.Lookup(ctx, "gw.test"); err != nil || !slices.Equal(again, want) {
			t.Fatalf("cached Lookup = %v, %v", again, err)
		}
	}
	if n := srv.Count("gw.test"); n != 2 {
		t.Fatalf("%d queries after cached lookups, want still 2", n)
	}
	if lit, err := r.Lookup(ctx, "::ffff:192.0.2.7"); err != nil || lit[0] != netip.MustParseAddr("192.0.2.7") {
		t.Fatalf("literal: %v, %v", lit, err)
	}
	if _, err := r.Lookup(ctx, "nothere.test"); err == nil {
		t.Fatal("NXDOMAIN name resolved")
	} else if nx := (*NameError)(nil); !errors.As(err, &nx) || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Fatalf("NXDOMAIN error = %v", err)
	}
}

func TestLookupFollowsCNAME(t *testing.T) {
	// dnstest answers only the owner's records; check Addresses directly.
	_, addr := startServer(t, "gw.test. 300 IN A 192.0.2.1")
	r := New(Options{Servers: []netip.AddrPort{addr}})
	m, err := r.exchange(context.Background(), addr, "gw.test", 1)
	if err != nil {
		t.Fatal(err)
	}
	m.Answer = append(m.Answer[:0:0], mustRR(t, "alias.test. 30 IN CNAME gw.test."), m.Answer[0], mustRR(t, "other.test. 1 IN A 192.0.2.66"))
	got, ttl := Addresses(m, "alias.test")
	if !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.1")}) || ttl != 300 {
		t.Fatalf("Addresses = %v ttl %d", got, ttl)
	}
}

// TestRefreshBeforeTTL: while Run runs, a name is asked again before its
// TTL ends (at 3/4 of it), and a failed refresh keeps the old addresses.
func TestRefreshBeforeTTL(t *testing.T) {
	srv, addr := startServer(t, "gw.test. 1 IN A 192.0.2.1")
	r := New(Options{Servers: []netip.AddrPort{addr}, Timeout: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	if _, err := r.Lookup(ctx, "gw.test"); err != nil {
		t.Fatal(err)
	}
	// TTL 1 s is raised to MinTTL (5 s): the refresh comes at 3.75 s.
	deadline := time.Now().Add(6 * time.Second)
	for srv.Count("gw.test") < 4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := srv.Count("gw.test"); n < 4 {
		t.Fatalf("%d queries within 6 s, want a refresh (4)", n)
	}
	srv.SetSilent(true)
	before := r.Queries()
	time.Sleep(5 * time.Second) // the next refresh is due and fails
	if r.Queries() == before {
		t.Fatal("no refresh attempt while the server was silent")
	}
	got, err := r.Lookup(ctx, "gw.test")
	if err != nil || !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
		t.Fatalf("after a failed refresh Lookup = %v, %v; want the old address", got, err)
	}
}

func TestControlIsCalledPerSocket(t *testing.T) {
	_, addr := startServer(t, "gw.test. 300 IN A 192.0.2.1")
	var calls atomic.Int32
	r := New(Options{Servers: []netip.AddrPort{addr}, Control: func(fd int) error { calls.Add(1); return nil }})
	if _, err := r.Lookup(context.Background(), "gw.test"); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("control called %d times, want 2", n)
	}
	r.SetControl(func(int) error { return errors.New("no") })
	if _, err := r.Lookup(context.Background(), "other.test"); err == nil || !strings.Contains(err.Error(), "protecting the DNS socket") {
		t.Fatalf("a failing control: %v", err)
	}
}

func TestParseResolvConf(t *testing.T) {
	c, err := ParseResolvConf([]byte("# generated\nnameserver 10.0.0.1\nnameserver fe80::1%eth0 ; x\nsearch a.test b.test\noptions ndots:2 edns0\noptions rotate\nnameserver ::ffff:10.0.0.2\nsortlist 1.2.3.4\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:53"), netip.MustParseAddrPort("[fe80::1%eth0]:53"), netip.MustParseAddrPort("10.0.0.2:53")}
	if !slices.Equal(c.Servers, want) || !slices.Equal(c.Search, []string{"a.test", "b.test"}) || !slices.Equal(c.Options, []string{"ndots:2", "edns0", "rotate"}) {
		t.Fatalf("parsed %+v", c)
	}
	for _, bad := range []string{"nameserver\n", "nameserver dns.test\n", strings.Repeat("#", 70000)} {
		if _, err := ParseResolvConf([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "resolv.conf: ") {
			t.Errorf("%.20q: error %v", bad, err)
		}
	}
}

func FuzzParseResolvConf(f *testing.F) {
	f.Add([]byte("nameserver 10.0.0.1\nsearch a b\noptions ndots:1\n"))
	f.Add([]byte("nameserver fe80::1%lo\n#c\n;d\ndomain x\n"))
	f.Add([]byte("nameserver\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseResolvConf(b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		for _, s := range c.Servers {
			if !s.Addr().IsValid() || s.Port() != 53 || s.Addr().Is4In6() {
				t.Fatalf("server %v", s)
			}
		}
	})
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// TestExpiredWithoutRun: with no Run refreshing, an expired name is asked
// again on Lookup; if that fails the old addresses still serve.
func TestExpiredWithoutRun(t *testing.T) {
	srv, addr := startServer(t, "gw.test. 1 IN A 192.0.2.1")
	r := New(Options{Servers: []netip.AddrPort{addr}, Timeout: 200 * time.Millisecond})
	ctx := context.Background()
	if _, err := r.Lookup(ctx, "gw.test"); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.names["gw.test"].fetched = time.Now().Add(-time.Minute)
	r.mu.Unlock()
	if _, err := r.Lookup(ctx, "gw.test"); err != nil || srv.Count("gw.test") != 4 {
		t.Fatalf("expired lookup: %v, %d queries (want 4)", err, srv.Count("gw.test"))
	}
	r.mu.Lock()
	r.names["gw.test"].fetched = time.Now().Add(-time.Minute)
	r.mu.Unlock()
	srv.SetSilent(true)
	got, err := r.Lookup(ctx, "gw.test")
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("expired lookup with a dead server: %v, %v", got, err)
	}
}

func TestMinTTLOption(t *testing.T) {
	_, addr := startServer(t, "gw.test. 1 IN A 192.0.2.1", "long.test. 86400 IN A 192.0.2.2")
	for _, tc := range []struct {
		min, want time.Duration
		name      string
	}{{0, MinTTL, "gw.test"}, {time.Minute, time.Minute, "gw.test"}, {0, MaxTTL, "long.test"}} {
		r := New(Options{Servers: []netip.AddrPort{addr}, MinTTL: tc.min})
		if _, err := r.Lookup(context.Background(), tc.name); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		got := r.names[tc.name].ttl
		r.mu.Unlock()
		if got != tc.want {
			t.Errorf("MinTTL %v, %s: kept for %v, want %v", tc.min, tc.name, got, tc.want)
		}
	}
}
