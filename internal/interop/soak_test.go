package interop

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// soakGateway is one `qcdvpn gateway` process of the soak, restartable
// from its config file (the same state dir, QCD secret and ticket keys).
type soakGateway struct {
	t    *testing.T
	bin  string // the qcdvpn binary
	ns   *testbed.NS
	cfg  string
	addr netip.Addr
	mu   sync.Mutex
	proc *client
}

func (g *soakGateway) start() {
	g.t.Helper()
	bin := g.bin
	if bin == "" {
		bin = qcdvpnBin
	}
	c := startBinary(g.t, g.ns, bin, "gateway", "-c", g.cfg, "--events", "json")
	c.waitEvent("listening", 10*time.Second)
	go func() {
		for range c.events { // keep its stdout flowing
		}
	}()
	g.mu.Lock()
	g.proc = c
	g.mu.Unlock()
}

// kill is kill -9: no Delete, state on disk as it was.
func (g *soakGateway) kill() {
	g.mu.Lock()
	p := g.proc
	g.proc = nil
	g.mu.Unlock()
	if p != nil {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (g *soakGateway) up() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.proc != nil
}

// procStatus reads VmRSS (KiB) and Threads of a process.
func procStatus(pid int) (rssKiB, threads int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rssKiB, _ = strconv.Atoi(f[1])
		case "Threads:":
			threads, _ = strconv.Atoi(f[1])
		}
	}
	return rssKiB, threads
}

var runtimeLine = regexp.MustCompile(`qcdvpn: runtime goroutines=(\d+) heap_inuse=(\d+)`)

// goroutines asks `qcdvpn up` for its runtime report (SIGUSR1) and
// returns its goroutine count and heap in use.
func goroutines(t *testing.T, c *client) (n int, heap int) {
	t.Helper()
	before := len(runtimeLine.FindAllStringSubmatch(c.Stderr(), -1))
	_ = c.cmd.Process.Signal(syscall.SIGUSR1)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		all := runtimeLine.FindAllStringSubmatch(c.Stderr(), -1)
		if len(all) > before {
			m := all[len(all)-1]
			n, _ = strconv.Atoi(m[1])
			heap, _ = strconv.Atoi(m[2])
			return n, heap
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("qcdvpn up did not answer SIGUSR1 with a runtime line")
	return 0, 0
}

// seqEcho sends sequence-numbered datagrams to a UDP echo service from an
// unconnected socket (so each packet takes whatever source address the
// tunnel has now) and counts how often each one comes back.
type seqEcho struct {
	conn   net.PacketConn
	to     *net.UDPAddr
	mu     sync.Mutex
	sent   uint64
	seen   map[uint64]int
	dups   int
	alien  int
	lastOK time.Time
	done   chan struct{}
}

func startSeqEcho(t *testing.T, ns *testbed.NS, to netip.AddrPort, every time.Duration) *seqEcho {
	t.Helper()
	pc, err := ns.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &seqEcho{conn: pc, to: net.UDPAddrFromAddrPort(to), seen: map[uint64]int{}, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); pc.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		tk := time.NewTicker(every)
		defer tk.Stop()
		var b [16]byte
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			e.mu.Lock()
			e.sent++
			seq := e.sent
			e.mu.Unlock()
			binary.BigEndian.PutUint64(b[:], seq)
			binary.BigEndian.PutUint64(b[8:], 0x51c0de51c0de51c0)
			_, _ = pc.WriteTo(b[:], e.to)
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			if n != 16 || binary.BigEndian.Uint64(buf[8:]) != 0x51c0de51c0de51c0 {
				e.alien++
			} else {
				seq := binary.BigEndian.Uint64(buf[:8])
				e.seen[seq]++
				if e.seen[seq] > 1 {
					e.dups++
				}
				e.lastOK = time.Now()
			}
			e.mu.Unlock()
		}
	}()
	return e
}

func (e *seqEcho) counts() (sent, answered uint64, dups, alien int, last time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sent, uint64(len(e.seen)), e.dups, e.alien, e.lastOK
}

// TestSoak runs `qcdvpn up` for QCDVPN_SOAK (a duration, e.g. 30m; unset:
// skipped; `make soak` and `make soak-short`) behind a NAT against two
// `qcdvpn gateway` processes, a primary and a backup, with 10 % of the
// gateway namespace's UDP dropped at random, while:
//   - the primary is killed (SIGKILL) and restarted every 30 s;
//   - the NAT loses all its mappings every 30 s, 15 s after each kill;
//   - the backup goes away (SIGKILL) and comes back every 45 s;
//   - the client rekeys its Child SA every 20 s and its IKE SA every 40 s;
//   - 50 sequence-numbered echo datagrams a second cross the tunnel.
//
// Every kill of the gateway the client was on must be followed by a new
// "connected" within 30 s; no echo may come back twice (a data-plane
// packet delivered twice, or through an SA it does not belong to, would);
// the client's goroutines and RSS, reported at start and end, must stay
// within a bound.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("QCDVPN_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("QCDVPN_SOAK not set to a duration (make soak, make soak-short)")
	}
	testbed.RequireRoot(t)
	testbed.RequireNFTables(t)
	if qcdvpnBin == "" {
		t.Skip("SKIP: qcdvpn binary not built (needs root)")
	}
	dir := t.TempDir()
	// Without the race detector, whose shadow memory would hide what RSS
	// does (the other interop tests run the -race build).
	bin := filepath.Join(dir, "qcdvpn")
	if out, err := osexec.Command("go", "build", "-o", bin, "github.com/qcdvpn/qcdvpn/cmd/qcdvpn").CombinedOutput(); err != nil {
		t.Fatalf("building qcdvpn: %v\n%s", err, out)
	}
	nc := testbed.NewNATChain(t)
	n4 := nc.Net.Addr().As4()
	backupIP := netip.AddrFrom4([4]byte{n4[0], n4[1], n4[2], 3})
	if out, err := nc.Gateway.Exec(context.Background(), "ip", "addr", "add", backupIP.String()+"/24", "dev", nc.Outside.BIf); err != nil {
		t.Fatalf("backup address: %v %s", err, out)
	}
	protected := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, n4[2], 0}), 24)
	echoTo := netip.AddrPortFrom(protected.Addr().Next(), 7)
	testbed.SetLoss(t, nc.Gateway, 10)

	ticketKey := strings.Repeat("5a", 32)
	gwCfg := func(name string, ip netip.Addr, pool string) *soakGateway {
		cfg := map[string]any{
			"listen":        []string{ip.String()},
			"id":            "gw.example",
			"auth":          map[string]any{"method": "psk", "psk": testPSK},
			"pool":          []string{pool},
			"local_ts":      []string{protected.String()},
			"ike_proposals": []string{"aes256gcm16-prfsha256-x25519"},
			"esp_proposals": []string{"aes256gcm16"},
			"tickets":       map[string]any{"keys": []map[string]any{{"id": "k1", "key_hex": ticketKey}}, "lifetime": "1h"},
			"data":          "netstack",
			"state_dir":     filepath.Join(dir, name, "state"),
		}
		return &soakGateway{t: t, bin: bin, ns: nc.Gateway, cfg: writeJSON(t, filepath.Join(dir, name+".json"), cfg), addr: ip}
	}
	primary := gwCfg("primary", nc.GatewayIP, fmt.Sprintf("10.100.%d.0/24", n4[2]))
	backup := gwCfg("backup", backupIP, fmt.Sprintf("10.101.%d.0/24", n4[2]))
	primary.start()
	backup.start()

	profile := map[string]any{
		"name":          "soak",
		"gateways":      []string{netip.AddrPortFrom(nc.GatewayIP, 4500).String(), netip.AddrPortFrom(backupIP, 4500).String()},
		"remote_id":     "gw.example",
		"local_id":      "client.example",
		"auth":          map[string]any{"method": "psk", "psk": testPSK},
		"ike_proposals": []string{"aes256gcm16-prfsha256-x25519"},
		"esp_proposals": []string{"aes256gcm16"},
		"traffic":       map[string]any{"include": []string{protected.String()}},
		"qcd":           map[string]any{"enabled": true},
		"resumption":    map[string]any{"enabled": true},
		"timers": map[string]any{"retransmit_timeout": "500ms", "retransmit_tries": 4,
			"child_lifetime": "20s", "ike_lifetime": "40s", "keepalive": "5s"},
		"state_dir": filepath.Join(dir, "client"),
	}
	c := startBinary(t, nc.Client, bin, "up", "-p", writeJSON(t, filepath.Join(dir, "profile.json"), profile), "--tun", "qcdsk0", "--events", "json")
	first := c.waitEvent("connected", 30*time.Second)

	// All events, with the time they arrived.
	type stamped struct {
		at time.Time
		ev map[string]any
	}
	var evMu sync.Mutex
	events := []stamped{{time.Now(), first}}
	evDone := make(chan struct{})
	go func() {
		defer close(evDone)
		for ev := range c.events {
			evMu.Lock()
			events = append(events, stamped{time.Now(), ev})
			evMu.Unlock()
		}
	}()
	connectedAfter := func(at time.Time) (time.Time, string, bool) {
		evMu.Lock()
		defer evMu.Unlock()
		for _, e := range events {
			if e.ev["type"] == "connected" && e.at.After(at) {
				gw, _ := e.ev["gateway"].(string)
				return e.at, gw, true
			}
		}
		return time.Time{}, "", false
	}
	currentGateway := func() string {
		evMu.Lock()
		defer evMu.Unlock()
		for i := len(events) - 1; i >= 0; i-- {
			if events[i].ev["type"] == "connected" {
				gw, _ := events[i].ev["gateway"].(string)
				return gw
			}
		}
		return ""
	}

	echo := startSeqEcho(t, nc.Client, echoTo, 20*time.Millisecond)
	// The baseline is taken after a warm-up of one kill cycle (a quarter
	// of a short soak), when every code path has run once and buffers
	// and pools have their steady size.
	warm := min(35*time.Second, d/4)
	var g0, heap0, rss0, thr0 int

	type outage struct {
		at time.Time
		gw string
	}
	var outages []outage
	kills, flushes, backupFlips := 0, 0, 0
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for s := 1; time.Since(start) < d; s++ {
		<-tick.C
		if g0 == 0 && time.Since(start) >= warm {
			g0, heap0 = goroutines(t, c)
			rss0, thr0 = procStatus(c.cmd.Process.Pid)
			t.Logf("after %s: goroutines %d, heap in use %d KiB, RSS %d KiB, threads %d", warm, g0, heap0>>10, rss0, thr0)
		}
		on := currentGateway()
		switch {
		case s%30 == 0:
			if strings.HasPrefix(on, primary.addr.String()) {
				outages = append(outages, outage{time.Now(), on})
			}
			primary.kill()
			kills++
			primary.start()
		case s%30 == 15:
			nc.FlushNAT(t)
			flushes++
		}
		if s%45 == 0 {
			if backup.up() {
				if strings.HasPrefix(on, backupIP.String()) {
					outages = append(outages, outage{time.Now(), on})
				}
				backup.kill()
			} else {
				backup.start()
			}
			backupFlips++
		}
		select {
		case <-c.exited:
			t.Fatalf("qcdvpn up exited: %v", c.err)
		default:
		}
	}
	time.Sleep(5 * time.Second) // the last outage's recovery, in-flight echoes

	g1, heap1 := goroutines(t, c)
	rss1, thr1 := procStatus(c.cmd.Process.Pid)
	sent, answered, dups, alien, last := echo.counts()
	evMu.Lock()
	var connected, failovers, rekeys, disconnected int
	reasons := map[string]int{}
	for _, e := range events {
		switch e.ev["type"] {
		case "connected":
			connected++
		case "failover":
			failovers++
		case "rekeyed":
			rekeys++
		case "disconnected":
			disconnected++
			reasons[fmt.Sprint(e.ev["reason"])]++
		}
	}
	evMu.Unlock()
	t.Logf("end after %s: goroutines %d (start %d), heap in use %d KiB (start %d), RSS %d KiB (start %d), threads %d (start %d)",
		time.Since(start).Round(time.Second), g1, g0, heap1>>10, heap0>>10, rss1, rss0, thr1, thr0)
	t.Logf("primary kills %d, NAT flushes %d, backup flips %d, outages of the gateway in use %d; events: connected %d, failover %d, rekeyed %d, disconnected %d",
		kills, flushes, backupFlips, len(outages), connected, failovers, rekeys, disconnected)
	t.Logf("disconnect reasons: %v", reasons)
	t.Logf("echo: sent %d, answered %d (%.1f %%), duplicates %d, foreign %d, last answer %s ago",
		sent, answered, 100*float64(answered)/float64(max(sent, 1)), dups, alien, time.Since(last).Round(time.Millisecond))

	var worst time.Duration
	for _, o := range outages {
		at, gw, ok := connectedAfter(o.at)
		if !ok || at.Sub(o.at) > 30*time.Second {
			t.Errorf("outage of %s at %s: no connected within 30 s", o.gw, o.at.Sub(start).Round(time.Second))
			continue
		}
		worst = max(worst, at.Sub(o.at))
		_ = gw
	}
	t.Logf("worst recovery %s", worst.Round(time.Millisecond))
	if len(outages) == 0 {
		t.Error("no outage hit the gateway in use: the soak proved nothing")
	}
	// Each lost SA is reported "disconnected" and must be followed by a
	// "connected": the client ends up connected, and never exited.
	evMu.Lock()
	lastConn, lastDisc := -1, -1
	for i, e := range events {
		switch e.ev["type"] {
		case "connected":
			lastConn = i
		case "disconnected":
			lastDisc = i
		}
	}
	evMu.Unlock()
	if lastDisc > lastConn {
		t.Errorf("the client ended disconnected (event %d after the last connected, %d)", lastDisc, lastConn)
	}
	if dups > 0 {
		t.Errorf("%d echo datagrams came back more than once", dups)
	}
	if time.Since(last) > 10*time.Second {
		t.Errorf("no echo answered in the last %s", time.Since(last).Round(time.Second))
	}
	if answered < sent/2 {
		t.Errorf("only %d of %d echoes answered", answered, sent)
	}
	// Flat: a handful of goroutines for in-flight work; the Go heap
	// within 25 % plus 4 MiB, RSS within 25 % plus 8 MiB of the baseline.
	if g1 > g0+10 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	if heap1 > heap0*5/4+4<<20 {
		t.Errorf("heap in use grew from %d KiB to %d KiB", heap0>>10, heap1>>10)
	}
	if rss1 > rss0*5/4+8<<10 {
		t.Errorf("RSS grew from %d KiB to %d KiB", rss0, rss1)
	}
	if err := c.stop(); err != nil {
		t.Errorf("client exit: %v", err)
	}
	<-evDone
}

// writeJSON writes v as JSON to path and returns path.
func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
