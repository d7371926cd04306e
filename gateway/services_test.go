package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	xipv4 "golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/qcdvpn/qcdvpn/esp"
	"github.com/qcdvpn/qcdvpn/tun"
)

const pumpOffset = 32

// link wires two devices back to back like a cable: per direction one
// goroutine reads into a queue and another writes out of it. A netstack
// may answer from inside Write, and its Write then waits until the answer
// is read, so reading and writing must not share a goroutine.
type link struct {
	stop    chan struct{}
	writers sync.WaitGroup
	readers sync.WaitGroup
}

func newLink(a, b tun.Device) *link {
	l := &link{stop: make(chan struct{})}
	l.pump(a, b)
	l.pump(b, a)
	return l
}

func (l *link) pump(from, to tun.Device) {
	q := make(chan []byte, 512)
	l.readers.Add(1)
	go func() {
		defer l.readers.Done()
		n := max(from.BatchSize(), 1)
		bufs, sizes := make([][]byte, n), make([]int, n)
		for i := range bufs {
			bufs[i] = make([]byte, pumpOffset+65535)
		}
		for {
			got, err := from.Read(bufs, sizes, pumpOffset)
			if err != nil {
				return
			}
			for i := range got {
				pkt := make([]byte, pumpOffset+sizes[i])
				copy(pkt[pumpOffset:], bufs[i][pumpOffset:pumpOffset+sizes[i]])
				select {
				case q <- pkt:
				default: // full: lost, as on a real link
				}
			}
		}
	}()
	l.writers.Add(1)
	go func() {
		defer l.writers.Done()
		for {
			select {
			case <-l.stop:
				return
			case pkt := <-q:
				if _, err := to.Write([][]byte{pkt}, pumpOffset); err != nil {
					return
				}
			}
		}
	}()
}

// netstack creates a netstack with addrs and closes it at cleanup.
func newNetstack(t *testing.T, addrs ...string) (tun.Device, *netstack.Net) {
	t.Helper()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	dev, tnet, err := tun.CreateNetstack(as, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return dev, tnet
}

// pair is a gateway netstack and a client netstack wired by a link.
func netstackPair(t *testing.T) (gw, client *netstack.Net) {
	t.Helper()
	gdev, gnet := newNetstack(t, "10.200.0.1", "fd00:200::1")
	cdev, cnet := newNetstack(t, "10.100.0.2", "fd00:100::2")
	l := newLink(gdev, cdev)
	t.Cleanup(func() {
		close(l.stop)
		l.writers.Wait()
		gdev.Close()
		cdev.Close()
		l.readers.Wait()
	})
	return gnet, cnet
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func checkTCPEcho(t *testing.T, cnet *netstack.Net, to netip.AddrPort, size int) {
	t.Helper()
	c, err := cnet.DialContextTCPAddrPort(ctxT(t), to)
	if err != nil {
		t.Fatalf("dial TCP echo %s: %v", to, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	msg := bytes.Repeat([]byte("echo!"), size/5+1)[:size]
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("TCP echo %s: %v", to, err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("TCP echo %s: wrong data back", to)
	}
}

func checkUDPEcho(t *testing.T, cnet *netstack.Net, to netip.AddrPort) {
	t.Helper()
	c, err := cnet.DialUDPAddrPort(netip.AddrPort{}, to)
	if err != nil {
		t.Fatalf("dial UDP echo %s: %v", to, err)
	}
	defer c.Close()
	buf := make([]byte, 100)
	// UDP may be lost (a full pump queue): retry a few times.
	for try := 0; try < 5; try++ {
		c.Write([]byte("ping " + strconv.Itoa(try)))
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err == nil {
			if got := string(buf[:n]); got != "ping "+strconv.Itoa(try) {
				t.Fatalf("UDP echo %s: got %q", to, got)
			}
			return
		}
	}
	t.Fatalf("UDP echo %s: no answer", to)
}

func httpClient(cnet *netstack.Net) *http.Client {
	return &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{DialContext: cnet.DialContext, DisableKeepAlives: true},
	}
}

func httpGet(t *testing.T, hc *http.Client, method, url string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, body
}

func checkPing(t *testing.T, cnet *netstack.Net, from, to string) {
	t.Helper()
	dst := netip.MustParseAddr(to)
	var typ, reply icmp.Type = xipv4.ICMPTypeEcho, xipv4.ICMPTypeEchoReply
	proto := 1
	if dst.Is6() {
		typ, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	// A fresh ping socket per try: a loaded (race-instrumented) run once
	// lost every reply on one socket.
	for try := 0; try < 8; try++ {
		c, err := cnet.DialPingAddr(netip.MustParseAddr(from), dst)
		if err != nil {
			t.Fatalf("ping %s: %v", to, err)
		}
		msg, _ := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: 7, Seq: try, Data: []byte("qcd")}}).Marshal(nil)
		if _, err := c.Write(msg); err != nil {
			c.Close()
			t.Fatalf("ping %s: %v", to, err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		c.Close()
		if err != nil {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != reply {
			t.Fatalf("ping %s: got %v %v, want an echo reply", to, m, err)
		}
		return
	}
	t.Fatalf("ping %s: no reply", to)
}

func TestServices(t *testing.T) {
	gnet, cnet := netstackPair(t)
	before := runtime.NumGoroutine()
	addrs := []netip.Addr{netip.MustParseAddr("10.200.0.1"), netip.MustParseAddr("fd00:200::1")}
	stop, err := StartServices(context.Background(), gnet, addrs, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, a := range addrs {
		checkTCPEcho(t, cnet, netip.AddrPortFrom(a, EchoPort), 100_000)
		checkUDPEcho(t, cnet, netip.AddrPortFrom(a, EchoPort))
	}
	// Ports in use: a second start fails and leaves nothing behind.
	if _, err := StartServices(context.Background(), gnet, addrs, "again", nil); err == nil {
		t.Error("second StartServices on the same ports: no error")
	}

	hc := httpClient(cnet)
	for _, base := range []string{"http://10.200.0.1", "http://[fd00:200::1]"} {
		code, body := httpGet(t, hc, "GET", base+"/")
		if code != 200 || string(body) != "qcdvpn gateway test\n" {
			t.Errorf("GET %s/: %d %q", base, code, body)
		}
	}
	code, body := httpGet(t, hc, "GET", "http://10.200.0.1/bytes?n=1000000")
	if code != 200 || len(body) != 1000000 || bytes.ContainsFunc(body, func(r rune) bool { return r != 0 }) {
		t.Errorf("GET /bytes?n=1000000: %d, %d bytes", code, len(body))
	}
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/bytes?n=0", 200},
		{"GET", "/bytes?n=-1", 400},
		{"GET", "/bytes?n=1073741825", 400},
		{"GET", "/bytes?n=abc", 400},
		{"GET", "/bytes", 400},
		{"GET", "/bytes?n=1&n=2", 400},
		{"GET", "/nope", 404},
		{"POST", "/", 405},
		{"HEAD", "/", 200},
	} {
		if code, _ := httpGet(t, hc, c.method, "http://10.200.0.1"+c.path); code != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, code, c.code)
		}
	}
	// ICMP echo is answered by gVisor itself.
	checkPing(t, cnet, "10.100.0.2", "10.200.0.1")
	checkPing(t, cnet, "fd00:100::2", "fd00:200::1")

	// An idle echo connection is closed by stop too.
	idle, err := cnet.DialContextTCPAddrPort(ctxT(t), netip.AddrPortFrom(addrs[0], EchoPort))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	checkTCPEcho(t, cnet, netip.AddrPortFrom(addrs[0], EchoPort), 10) // the server has accepted idle by now
	stop()
	stop() // twice is fine
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Error("idle echo connection still open after stop")
	}
	idle.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if c, err := cnet.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(addrs[0], EchoPort)); err == nil {
		c.Close()
		t.Error("TCP echo still accepting after stop")
	}
	waitGoroutines(t, before)
}

func TestServicesStopOnContext(t *testing.T) {
	gnet, cnet := netstackPair(t)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	stop, err := StartServices(ctx, gnet, []netip.Addr{netip.MustParseAddr("10.200.0.1")}, "ctx", nil)
	if err != nil {
		t.Fatal(err)
	}
	checkUDPEcho(t, cnet, netip.MustParseAddrPort("10.200.0.1:7"))
	cancel()
	waitGoroutines(t, before)
	stop() // still fine
}

func TestServicesErrors(t *testing.T) {
	gnet, _ := netstackPair(t)
	before := runtime.NumGoroutine()
	for name, addrs := range map[string][]netip.Addr{
		"none":        nil,
		"invalid":     {{}},
		"unspecified": {netip.IPv4Unspecified()},
		// The second listen fails: the first one's listeners must be
		// closed again.
		"duplicate": {netip.MustParseAddr("10.200.0.1"), netip.MustParseAddr("10.200.0.1")},
	} {
		if stop, err := StartServices(context.Background(), gnet, addrs, "x", nil); err == nil {
			stop()
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := StartServices(context.Background(), nil, []netip.Addr{netip.MustParseAddr("10.200.0.1")}, "x", nil); err == nil {
		t.Error("nil netstack: no error")
	}
	waitGoroutines(t, before)
	// The ports are free again.
	stop, err := StartServices(context.Background(), gnet, []netip.Addr{netip.MustParseAddr("10.200.0.1")}, "x", nil)
	if err != nil {
		t.Fatalf("after failed starts: %v", err)
	}
	stop()
}

// TestServicesThroughRouters runs the whole data plane: a client netstack
// behind a client-side router, ESP over the fake network, the gateway
// router, and the services on the gateway's netstack.
func TestServicesThroughRouters(t *testing.T) {
	fn := newFakeNet(t)
	gdev, gnet := newNetstack(t, "10.200.0.1")
	cdev, cnet := newNetstack(t, "10.100.0.2")
	gAddr, cAddr := netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("198.51.100.1:4500")
	gr := NewRouter(gdev, fn.sender(gAddr), nil)
	cr := NewRouter(cdev, fn.sender(cAddr), nil)
	fn.attach(gAddr, gr.HandleESP)
	fn.attach(cAddr, cr.HandleESP)
	gSA, cSA := saPair(t, 0x1001, 0xc001, []string{"10.100.0.2/32"}, []string{"10.200.0.0/24"})
	if err := gr.Install("client", gSA, cAddr, esp.Limits{}); err != nil {
		t.Fatal(err)
	}
	if err := cr.Install("gw", cSA, gAddr, esp.Limits{}); err != nil {
		t.Fatal(err)
	}
	runs := make(chan error, 2)
	go func() { runs <- gr.Run(context.Background()) }()
	go func() { runs <- cr.Run(context.Background()) }()
	stop, err := StartServices(context.Background(), gnet, []netip.Addr{netip.MustParseAddr("10.200.0.1")}, "e2e", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		gr.Close()
		cr.Close()
		gdev.Close()
		cdev.Close()
		for range 2 {
			<-runs
		}
	})

	checkTCPEcho(t, cnet, netip.MustParseAddrPort("10.200.0.1:7"), 200_000)
	checkUDPEcho(t, cnet, netip.MustParseAddrPort("10.200.0.1:7"))
	checkPing(t, cnet, "10.100.0.2", "10.200.0.1")
	code, body := httpGet(t, httpClient(cnet), "GET", "http://10.200.0.1/bytes?n=2000000")
	if code != 200 || len(body) != 2000000 {
		t.Errorf("GET /bytes through ESP: %d, %d bytes", code, len(body))
	}
	code, body = httpGet(t, httpClient(cnet), "GET", "http://10.200.0.1/")
	if code != 200 || !strings.Contains(string(body), "e2e") {
		t.Errorf("GET / through ESP: %d %q", code, body)
	}
	in, out := gr.OwnerTraffic("client")
	if in == 0 || out == 0 {
		t.Errorf("owner traffic %d in, %d out", in, out)
	}
	if st := gr.Stats(); st.DropAuth+st.DropReplay+st.DropSelector+st.DropNoSA != 0 {
		t.Errorf("gateway drops: %+v", st)
	}
}
