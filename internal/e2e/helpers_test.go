package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/gateway"
	"github.com/qcdvpn/qcdvpn/internal/echotraffic"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// Identities and secrets shared by every gateway and client of the tests.
const (
	gwID     = "gw.e2e.test"
	clientID = "client.e2e.test"
	pskHex   = "0x6532652d7073b2d6b579a0cf3c4d1e8f"
	// The first host of local_ts: the gateway's netstack serves echo
	// (port 7) and HTTP (port 80) there.
	protected = "10.200.0.0/24"
)

var echoTarget = netip.MustParseAddrPort("10.200.0.1:7")

// testLogger logs at level QCDVPN_E2E_LOG (debug, info, …) to stderr;
// unset, nothing.
func testLogger() *slog.Logger {
	lv := os.Getenv("QCDVPN_E2E_LOG")
	if lv == "" {
		return slog.New(slog.DiscardHandler)
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(lv))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// --- addresses ---

var (
	netOnce sync.Once
	netX    byte
	netY    byte
	netNext atomic.Uint32
)

// loopbackAddr returns a loopback address no other test of this run used:
// 127.X.Y.Z with X and Y random per run, Z counting up (then Y). Parallel
// runs of the package are unlikely to draw the same X.Y.
func loopbackAddr(t testing.TB) netip.Addr {
	t.Helper()
	netOnce.Do(func() {
		var b [2]byte
		_, _ = rand.Read(b[:])
		netX, netY = 16+b[0]%224, b[1]
	})
	for range 100 {
		n := netNext.Add(1)
		y := netY + byte(n/250)
		z := byte(1 + n%250)
		a := netip.AddrFrom4([4]byte{127, netX, y, z})
		// Free at port 4500? (A clash with another process is still
		// possible between here and the bind; it shows as a bind error.)
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 4500)))
		if err != nil {
			continue
		}
		c.Close()
		return a
	}
	t.Fatal("no free loopback address")
	return netip.Addr{}
}

// --- events ---

// recorder keeps events in order and lets tests wait for one.
type recorder[E any] struct {
	mu   sync.Mutex
	evs  []E
	kick chan struct{} // closed and replaced on every add
}

func newRecorder[E any]() *recorder[E] { return &recorder[E]{kick: make(chan struct{})} }

func (r *recorder[E]) add(e E) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	close(r.kick)
	r.kick = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder[E]) snapshot() []E {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]E(nil), r.evs...)
}

func (r *recorder[E]) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

// wait returns the first event from index from on that matches, and its
// index; ok is false after timeout.
func (r *recorder[E]) wait(timeout time.Duration, from int, match func(E) bool) (e E, idx int, ok bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for i := from; i < len(r.evs); i++ {
			if match(r.evs[i]) {
				e := r.evs[i]
				r.mu.Unlock()
				return e, i, true
			}
		}
		from = max(from, len(r.evs))
		kick := r.kick
		r.mu.Unlock()
		select {
		case <-kick:
		case <-deadline.C:
			var zero E
			return zero, -1, false
		}
	}
}

func ofType(typ sdk.EventType) func(sdk.Event) bool {
	return func(e sdk.Event) bool { return e.Type == typ }
}

func gwOfType(typ string) func(gateway.Event) bool {
	return func(e gateway.Event) bool { return e.Type == typ }
}

func countType(evs []sdk.Event, typ sdk.EventType) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func gwCount(evs []gateway.Event, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func eventTypes(evs []sdk.Event) string {
	var b strings.Builder
	for i, e := range evs {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(string(e.Type))
		if e.Type == sdk.EventConnected {
			fmt.Fprintf(&b, "(resumed=%v)", e.Resumed)
		}
	}
	return b.String()
}

// --- gateways ---

// gwOpts vary a gateway config.
type gwOpts struct {
	ticketKey  string // 64 hex; empty: a fresh one
	lifetime   string // tickets.lifetime; empty: 1h
	secretFile string // qcd.secret_file; empty: state_dir/qcd.secret
	pool       string // empty: 10.100.0.0/24
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// gatewayConfig is the config of a netstack gateway on addr:4500 keeping
// its state in dir.
func gatewayConfig(addr netip.Addr, dir string, o gwOpts) *gateway.Config {
	if o.ticketKey == "" {
		o.ticketKey = randomHex(32)
	}
	if o.lifetime == "" {
		o.lifetime = "1h"
	}
	if o.pool == "" {
		o.pool = "10.100.0.0/24"
	}
	return &gateway.Config{
		Listen:       []string{netip.AddrPortFrom(addr, 4500).String()},
		ID:           gwID,
		Auth:         gateway.AuthConfig{Method: "psk", PSK: pskHex},
		Pool:         []string{o.pool},
		LocalTS:      []string{protected},
		IKEProposals: []string{"aes256gcm16-prfsha256-x25519"},
		ESPProposals: []string{"aes256gcm16"},
		QCD:          gateway.QCDConfig{SecretFile: o.secretFile},
		Tickets: gateway.TicketsConfig{
			Keys:     []gateway.TicketKeyEntry{{ID: "k1", KeyHex: o.ticketKey}},
			Lifetime: o.lifetime,
		},
		Data:     "netstack",
		StateDir: dir,
	}
}

// gw is one in-process gateway.
type gw struct {
	t      testing.TB
	cfg    gateway.Config
	addr   netip.AddrPort
	g      *gateway.Gateway
	cancel context.CancelFunc
	done   chan error
	ev     *recorder[gateway.Event]
	once   sync.Once
}

// startGateway runs a gateway with cfg until the test ends (or crash).
func startGateway(t testing.TB, cfg *gateway.Config) *gw {
	t.Helper()
	g := &gw{t: t, cfg: *cfg, ev: newRecorder[gateway.Event](), done: make(chan error, 1)}
	c := g.cfg // New may keep it
	gg, err := gateway.New(&c, gateway.Options{Logger: testLogger(), OnEvent: g.ev.add})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	g.g = gg
	g.addr = gg.Addrs()[0]
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.done <- gg.Run(ctx) }()
	if _, _, ok := g.ev.wait(5*time.Second, 0, gwOfType("listening")); !ok {
		t.Fatalf("gateway %s: no listening event", g.addr)
	}
	t.Cleanup(g.stop)
	return g
}

// crash is the in-process kill -9: sockets closed, SAs dropped silently,
// state on disk left as it is.
func (g *gw) crash() {
	g.once.Do(func() {
		g.g.Crash()
		g.waitRun("crash")
		g.cancel()
	})
}

// stop is the graceful end (every IKE SA deleted).
func (g *gw) stop() {
	g.once.Do(func() {
		g.cancel()
		g.waitRun("stop")
	})
}

func (g *gw) waitRun(why string) {
	select {
	case err := <-g.done:
		if err != nil {
			g.t.Logf("gateway %s Run (%s): %v", g.addr, why, err)
		}
	case <-time.After(10 * time.Second):
		// Tolerate a leak rather than hang the package.
		g.t.Errorf("gateway %s: Run did not return within 10 s of %s", g.addr, why)
	}
}

// restart brings up a new gateway from the same config: the same state
// directory, QCD secret file and ticket keys.
func (g *gw) restart() *gw {
	return startGateway(g.t, &g.cfg)
}

func (g *gw) secretFile() string {
	if g.cfg.QCD.SecretFile != "" {
		return g.cfg.QCD.SecretFile
	}
	return filepath.Join(g.cfg.StateDir, "qcd.secret")
}

// --- QCD secrets, computed here, not by the code under test ---

// readSecrets reads a QCD secret file: lines of 64 lowercase hex digits,
// the current secret first.
func readSecrets(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the QCD secret: %v", err)
	}
	var out [][]byte
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		s, err := hex.DecodeString(line)
		if err != nil || len(s) != 32 || strings.ToLower(line) != line {
			t.Fatalf("QCD secret file %s: bad line %q", path, line)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		t.Fatalf("QCD secret file %s is empty", path)
	}
	return out
}

// qcdToken is RFC 6290 §5.1: SHA-256(QCD_SECRET | SPIi | SPIr).
func qcdToken(secret []byte, spii, spir uint64) []byte {
	h := sha256.New()
	h.Write(secret)
	_ = binary.Write(h, binary.BigEndian, spii)
	_ = binary.Write(h, binary.BigEndian, spir)
	return h.Sum(nil)
}

// --- clients ---

// profileJSON is a client profile for the gateways gws (addr:4500), with
// changes applied to the JSON object.
func profileJSON(gws []netip.AddrPort, change func(m map[string]any)) []byte {
	var list []string
	for _, g := range gws {
		list = append(list, g.String())
	}
	m := map[string]any{
		"name": "e2e", "gateways": list, "remote_id": gwID, "local_id": clientID,
		"auth":          map[string]any{"method": "psk", "psk": pskHex},
		"ike_proposals": []string{"aes256gcm16-prfsha256-x25519"}, "esp_proposals": []string{"aes256gcm16"},
		"traffic":    map[string]any{"include": []string{protected}},
		"qcd":        map[string]any{"enabled": true},
		"resumption": map[string]any{"enabled": true},
		"timers":     map[string]any{"retransmit_timeout": "500ms", "retransmit_tries": 4},
	}
	if change != nil {
		change(m)
	}
	b, _ := json.Marshal(m)
	return b
}

func parseProfile(t testing.TB, b []byte) *sdk.Profile {
	t.Helper()
	p, err := sdk.ParseProfile(b)
	if err != nil {
		t.Fatalf("profile: %v", err)
	}
	return p
}

// cli is one in-process client.
type cli struct {
	t    testing.TB
	c    *sdk.Client
	ev   *recorder[sdk.Event]
	wait chan error
	once sync.Once
}

// startClient makes a netstack client on 127.0.0.1 with its state in dir
// and connects it; Wait runs until the test ends.
func startClient(t testing.TB, profile []byte, dir string) *cli {
	t.Helper()
	c := newClient(t, profile, dir)
	c.connect()
	return c
}

func newClient(t testing.TB, profile []byte, dir string) *cli {
	t.Helper()
	c := &cli{t: t, ev: newRecorder[sdk.Event](), wait: make(chan error, 1)}
	sc, err := sdk.NewClient(parseProfile(t, profile), sdk.Options{
		Logger: testLogger(), OnEvent: c.ev.add, LocalAddr: "127.0.0.1:0",
		DataPlane: sdk.DataPlaneNetstack, StateDir: dir,
	})
	if err != nil {
		t.Fatalf("sdk.NewClient: %v", err)
	}
	c.c = sc
	t.Cleanup(c.close)
	return c
}

func (c *cli) connect() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.c.Connect(ctx); err != nil {
		c.t.Fatalf("Connect: %v (events: %s)", err, eventTypes(c.ev.snapshot()))
	}
	go func() { c.wait <- c.c.Wait(context.Background()) }()
}

// close ends the client, tolerating a Close that hangs.
func (c *cli) close() {
	c.once.Do(func() {
		closed := make(chan struct{})
		go func() { _ = c.c.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			c.t.Errorf("client Close did not return within 10 s")
			return
		}
		select {
		case <-c.wait:
		case <-time.After(10 * time.Second):
			c.t.Errorf("client Wait did not return within 10 s of Close")
		}
	})
}

// connected waits for the next connected event from index from.
func (c *cli) connected(from int, timeout time.Duration) (sdk.Event, int) {
	c.t.Helper()
	e, i, ok := c.ev.wait(timeout, from, ofType(sdk.EventConnected))
	if !ok {
		c.t.Fatalf("no connected event within %v (events: %s)", timeout, eventTypes(c.ev.snapshot()))
	}
	return e, i
}

// spis are the current IKE SA's SPIs.
func (c *cli) spis() (uint64, uint64) {
	c.t.Helper()
	s := c.c.Session()
	if s == nil {
		c.t.Fatal("client has no session")
	}
	return s.SPIs()
}

// --- traffic ---

// echo is steady UDP echo traffic through a client's tunnel.
type echo struct{ *echotraffic.Traffic }

func startEcho(t testing.TB, c *sdk.Client, rate int) *echo {
	e := &echo{echotraffic.Start(c.Net, echoTarget, rate)}
	t.Cleanup(e.Stop)
	return e
}

// waitAnsweredAfter polls until an answer after t arrives.
func (e *echo) waitAnsweredAfter(t time.Time, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if at := e.FirstAnsweredAfter(t); !at.IsZero() {
			return at
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Time{}
}

// echoOnce sends one datagram through the tunnel and waits for its echo.
func echoOnce(t testing.TB, c *sdk.Client) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n := c.Net()
		if n == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		conn, err := n.DialUDPAddrPort(netip.AddrPort{}, echoTarget)
		if err != nil {
			t.Fatalf("dial echo: %v", err)
		}
		msg := []byte("e2e " + randomHex(8))
		_, _ = conn.Write(msg)
		_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 64)
		k, err := conn.Read(buf)
		conn.Close()
		if err == nil && bytes.Equal(buf[:k], msg) {
			return
		}
	}
	t.Fatal("no echo through the tunnel within 5 s")
}

// --- IKE messages built and parsed by hand ---

// IKEv2 numbers (RFC 7296 §3, RFC 6290 §10).
const (
	exchIKESAInit       = 34
	exchIKEAuth         = 35
	exchInformational   = 37
	exchSessionResume   = 38
	flagInitiator       = 0x08
	flagResponse        = 0x20
	payloadNone         = 0
	payloadNonce        = 40
	payloadNotify       = 41
	payloadDelete       = 42
	payloadVendor       = 43
	payloadSK           = 46
	protoIKE            = 1
	protoESP            = 3
	notifyInvalidIKESPI = 4
	notifyInvalidSPI    = 11
	notifyQCDToken      = 16419
)

// payload is one generic payload: type, critical bit, body.
type payload struct {
	typ      uint8
	critical bool
	body     []byte
}

func notifyPayload(proto uint8, spi []byte, typ uint16, data []byte) payload {
	b := []byte{proto, byte(len(spi)), byte(typ >> 8), byte(typ)}
	b = append(b, spi...)
	return payload{typ: payloadNotify, body: append(b, data...)}
}

func tokenPayload(tok []byte) payload { return notifyPayload(protoIKE, nil, notifyQCDToken, tok) }

// ikeMessage encodes a header and payload chain.
func ikeMessage(spii, spir uint64, exch, flags uint8, msgID uint32, ps ...payload) []byte {
	b := make([]byte, 28, 256)
	binary.BigEndian.PutUint64(b[0:], spii)
	binary.BigEndian.PutUint64(b[8:], spir)
	if len(ps) > 0 {
		b[16] = ps[0].typ
	}
	b[17] = 0x20
	b[18] = exch
	b[19] = flags
	binary.BigEndian.PutUint32(b[20:], msgID)
	for i, p := range ps {
		next := uint8(payloadNone)
		if i+1 < len(ps) {
			next = ps[i+1].typ
		}
		crit := byte(0)
		if p.critical {
			crit = 0x80
		}
		b = append(b, next, crit, 0, 0)
		binary.BigEndian.PutUint16(b[len(b)-2:], uint16(4+len(p.body)))
		b = append(b, p.body...)
	}
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	return b
}

// marked prefixes the non-ESP marker of port 4500 (RFC 3948).
func marked(msg []byte) []byte { return append([]byte{0, 0, 0, 0}, msg...) }

// ikeHeader is a parsed IKE header.
type ikeHeader struct {
	spii, spir uint64
	next       uint8
	version    uint8
	exch       uint8
	flags      uint8
	msgID      uint32
	length     uint32
}

// notifyP is a parsed Notify payload.
type notifyP struct {
	proto uint8
	spi   []byte
	typ   uint16
	data  []byte
}

// parseIKE parses an unprotected IKE message (without marker) and its
// notifies, strictly: lengths must add up, and no SK payload.
func parseIKE(b []byte) (ikeHeader, []notifyP, error) {
	var h ikeHeader
	if len(b) < 28 {
		return h, nil, errors.New("short")
	}
	h = ikeHeader{spii: binary.BigEndian.Uint64(b), spir: binary.BigEndian.Uint64(b[8:]), next: b[16], version: b[17],
		exch: b[18], flags: b[19], msgID: binary.BigEndian.Uint32(b[20:]), length: binary.BigEndian.Uint32(b[24:])}
	if int(h.length) != len(b) {
		return h, nil, fmt.Errorf("length %d, datagram %d", h.length, len(b))
	}
	var ns []notifyP
	next, off := h.next, 28
	for next != payloadNone {
		if len(b)-off < 4 {
			return h, nil, errors.New("truncated payload header")
		}
		plen := int(binary.BigEndian.Uint16(b[off+2:]))
		if plen < 4 || off+plen > len(b) {
			return h, nil, errors.New("bad payload length")
		}
		body := b[off+4 : off+plen]
		if next == payloadSK {
			return h, nil, errors.New("has an SK payload")
		}
		if next == payloadNotify {
			if len(body) < 4 || len(body) < 4+int(body[1]) {
				return h, nil, errors.New("bad notify")
			}
			n := int(body[1])
			ns = append(ns, notifyP{proto: body[0], spi: body[4 : 4+n], typ: binary.BigEndian.Uint16(body[2:]), data: body[4+n:]})
		}
		next = b[off]
		off += plen
	}
	if off != len(b) {
		return h, nil, errors.New("trailing octets")
	}
	return h, ns, nil
}

// udpFrom opens a UDP socket on addr (port 0: any).
func udpFrom(t testing.TB, addr netip.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func localAP(c *net.UDPConn) netip.AddrPort {
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// clientAddr is where the client's IKE/ESP socket listens.
func (c *cli) addr() netip.AddrPort {
	c.t.Helper()
	s := c.c.Session()
	if s == nil {
		c.t.Fatal("client has no session")
	}
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), s.Transport().LocalPort())
}

func hex16(v uint64) string { return fmt.Sprintf("%016x", v) }

// lineReader reads lines from a child's stdout with timeouts; it keeps
// reading whether or not anyone asks.
type lineReader struct {
	lines chan string
}

func newLineReader(r interface{ Read([]byte) (int, error) }) *lineReader {
	lr := &lineReader{lines: make(chan string, 64)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			// Never block the child on a full pipe: lines nobody waits
			// for (a gateway's events) are dropped once 64 are pending.
			select {
			case lr.lines <- sc.Text():
			default:
			}
		}
		close(lr.lines)
	}()
	return lr
}

// next returns the next line with the prefix, without it (others are
// skipped).
func (lr *lineReader) next(prefix string, timeout time.Duration) (string, error) {
	l, err := lr.nextMatch(func(l string) bool { return strings.HasPrefix(l, prefix) }, timeout)
	if err != nil {
		return "", fmt.Errorf("no %q line: %w", prefix, err)
	}
	return strings.TrimPrefix(l, prefix), nil
}

// nextMatch returns the next line that matches (others are skipped).
func (lr *lineReader) nextMatch(match func(string) bool, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lr.lines:
			if !ok {
				return "", errors.New("child closed its output")
			}
			if match(l) {
				return l, nil
			}
		case <-deadline:
			return "", fmt.Errorf("none within %v", timeout)
		}
	}
}

// raceNote qualifies CPU figures measured with the race detector on.
func raceNote() string {
	if raceEnabled {
		return "; race detector on, so CPU figures are several times the release build's"
	}
	return ""
}

// udpDrops is the kernel's drop counter of the IPv4 UDP socket bound to
// port (/proc/net/udp): datagrams lost because its receive buffer was full.
func udpDrops(port uint16) (uint64, bool) {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0, false
	}
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 || !strings.HasSuffix(f[1], want) {
			continue
		}
		v, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		return v, err == nil
	}
	return 0, false
}
