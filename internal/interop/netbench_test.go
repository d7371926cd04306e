package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/benchreport"
	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// Shape of one TestNetBench run: short runs, repeated in interleaved
// rounds so that load drifting on a shared machine hits every variant
// alike; the whole run stays within about five minutes.
const (
	benchSecs     = 5  // per iperf3 run (after a 1 s omitted warm-up)
	benchRounds   = 3  // runs of each variant, round-robin
	benchPings    = 50 // per RTT measurement
	benchInterval = 10 * time.Millisecond
	benchConnects = 5 // per connect-time row
	benchIKE      = "aes256gcm16-prfsha256-x25519"
	wgMTU         = 1420 // wireguard-go's default
)

// TestNetBench is the network half of `make bench`: one run measures
// the bare veth, wireguard-go↔wireguard-go (configured with wg), `qcdvpn
// up` (kernel TUN) ↔ `qcdvpn gateway` (data tun) with AES-256-GCM and
// with ChaCha20-Poly1305, strongSwan↔strongSwan and qcdvpn↔strongSwan
// (kernel-libipsec), each in its own pair of namespaces joined by a veth
// link, all set up at once and measured back to back: ping RTT, iperf3
// TCP throughput with 1 and 4 streams in interleaved rounds, the tunnel
// processes' RSS idle and loaded, and qcdvpn's connect time (full and
// resumed). It writes BENCHMARKS.md and throughput.png into
// $QCDVPN_BENCH_REPORT and runs only when that is set. With
// $QCDVPN_BENCH_MICRO naming the micro-benchmark output of the same run
// (scripts/bench.sh's build/bench.txt) the esp Seal/Open figures are
// included.
func TestNetBench(t *testing.T) {
	outDir := os.Getenv("QCDVPN_BENCH_REPORT")
	if outDir == "" {
		t.Skip("SKIP: set QCDVPN_BENCH_REPORT=DIR (make bench) to measure the tunnels and write DIR/BENCHMARKS.md")
	}
	requireEnv(t)
	for _, tool := range []string{"iperf3", "ping", "wg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (scripts/install-deps.sh installs it): %v", tool, err)
		}
	}
	r := &benchreport.Report{Date: time.Now(), Seconds: benchSecs, Rounds: benchRounds, Pings: benchPings,
		PingInterval: benchInterval, LoadStart: loadavg(t), Machine: machine()}

	// Optimised builds, not the race-detector one the other tests use.
	tmp := t.TempDir()
	qbin, wgbin := filepath.Join(tmp, "qcdvpn"), filepath.Join(tmp, "wireguard-go")
	for _, b := range []struct{ out, pkg string }{{qbin, "github.com/qcdvpn/qcdvpn/cmd/qcdvpn"}, {wgbin, "golang.zx2c4.com/wireguard"}} {
		if out, err := exec.Command("go", "build", "-o", b.out, b.pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	r.Versions = versions(t, wgbin)

	// Every tunnel up at once (idle ones cost next to nothing), so the
	// rounds can alternate between them.
	veth := testbed.NewPair(t)
	aes := setupQcdvpn(t, qbin, "qcdvpn-aes", "aes256gcm16", "AES-256-GCM")
	swan, swanConnect := setupSwan(t)
	tunnels := []*tunnel{
		{v: benchreport.Variant{Key: "veth", Name: "raw veth (no tunnel)", Detail: "none, " + linkMTU(t, veth.Client, veth.Link.AIf)},
			pair: veth, dst: veth.GatewayIP},
		setupWireGuard(t, wgbin),
		aes.tunnel,
		setupQcdvpn(t, qbin, "qcdvpn-chacha", "chacha20poly1305", "ChaCha20-Poly1305").tunnel,
		swan,
		setupQcdvpnSwan(t, qbin),
	}
	for _, tn := range tunnels {
		tn.idleAndRTT(t)
	}
	for round := range benchRounds {
		for _, tn := range tunnels {
			tn.round(t)
			t.Logf("round %d %-28s %-30s 1 stream %6.0f Mbit/s, 4 streams %6.0f Mbit/s", round+1, tn.v.Name, tn.v.Detail,
				tn.v.Runs1[len(tn.v.Runs1)-1]/1e6, tn.v.Runs4[len(tn.v.Runs4)-1]/1e6)
		}
	}
	for _, tn := range tunnels {
		tn.finish(t)
		r.Variants = append(r.Variants, tn.v)
		if tn.memory != nil {
			r.Memory = append(r.Memory, tn.memory(tn.mem)...)
		}
	}
	r.Connect = append(aes.connectTimes(t), swanConnect)
	r.LoadEnd = loadavg(t)

	if path := os.Getenv("QCDVPN_BENCH_MICRO"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			t.Fatalf("micro-benchmark output: %v", err)
		}
		r.Micro, err = benchreport.ParseBench(f, "/esp", "BenchmarkSeal/", "BenchmarkOpen/", "BenchmarkRawAEAD/")
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	r.Notes = append(r.Notes, fmt.Sprintf("Caveats: %d s per iperf3 run on a shared %d-core machine where other "+
		"work ran at the same time (see the load above); iperf3 client and server and both tunnel ends share "+
		"those cores, so a tunnel that burns more CPU per byte also starves its own iperf3. The throughput "+
		"figures are medians of %d interleaved rounds; the range column shows how far single runs spread. "+
		"Single p99 RTT outliers are scheduling. strongSwan rows use charon's userspace ESP "+
		"(kernel-libipsec), not the kernel's XFRM. RSS is the whole process (Go runtime included); neither "+
		"wireguard-go nor qcdvpn runs with a GOMEMLIMIT here, so a loaded figure is what the buffer pools and "+
		"the garbage collector's default pacing make of it.", benchSecs, runtime.NumCPU(), benchRounds))
	if t.Failed() {
		t.Fatal("a measurement failed; BENCHMARKS.md not written")
	}
	var md, png bytes.Buffer
	if err := r.Markdown(&md, "throughput.png"); err != nil {
		t.Fatal(err)
	}
	if err := r.PlotThroughput(&png); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"BENCHMARKS.md": md.Bytes(), "throughput.png": png.Bytes()} {
		if err := os.WriteFile(filepath.Join(outDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %s and throughput.png:\n%s", filepath.Join(outDir, "BENCHMARKS.md"), md.String())
}

// tunnel is one established variant being measured: traffic goes from
// pair.Client to dst, an address in pair.Gateway; pids are the tunnel
// processes whose RSS is sampled, memory turns their samples into rows.
type tunnel struct {
	v      benchreport.Variant
	pair   *testbed.Pair
	dst    netip.Addr
	pids   []int
	mem    []rss
	memory func([]rss) []benchreport.Memory
}

// rss is one process's resident set, in bytes.
type rss struct{ idle, loaded, hwm uint64 }

// idleAndRTT checks the tunnel carries a ping (for WireGuard, its first
// handshake), records the processes' idle RSS, then the ping RTTs.
func (tn *tunnel) idleAndRTT(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tn.pair.Client.Ping(ctx, tn.dst); err != nil {
		t.Fatalf("%s: no ping through the tunnel to %s: %v", tn.v.Name, tn.dst, err)
	}
	time.Sleep(300 * time.Millisecond)
	tn.mem = make([]rss, len(tn.pids))
	for i, pid := range tn.pids {
		tn.mem[i].idle, _ = memStatus(t, pid)
	}
	tn.v.RTT = pingRTT(t, tn.pair.Client, tn.dst)
	t.Logf("%-28s %-30s RTT median %v p99 %v", tn.v.Name, tn.v.Detail, benchreport.Median(tn.v.RTT), benchreport.Percentile(tn.v.RTT, 99))
}

// round runs iperf3 with 1 and with 4 streams, sampling VmRSS every 50 ms.
func (tn *tunnel) round(t *testing.T) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for i, pid := range tn.pids {
				if cur, _, err := readStatus(pid); err == nil {
					tn.mem[i].loaded = max(tn.mem[i].loaded, cur)
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	tn.v.Runs1 = append(tn.v.Runs1, iperfStreams(t, tn.pair, tn.dst, benchSecs, 1))
	tn.v.Runs4 = append(tn.v.Runs4, iperfStreams(t, tn.pair, tn.dst, benchSecs, 4))
	close(stop)
	wg.Wait()
}

// finish takes the medians and the processes' VmHWM.
func (tn *tunnel) finish(t *testing.T) {
	t.Helper()
	tn.v.Tput1, tn.v.Tput4 = benchreport.MedianOf(tn.v.Runs1), benchreport.MedianOf(tn.v.Runs4)
	for i, pid := range tn.pids {
		_, tn.mem[i].hwm = memStatus(t, pid)
	}
	t.Logf("%-28s %-30s median 1 stream %6.0f Mbit/s, 4 streams %6.0f Mbit/s; rss %+v", tn.v.Name, tn.v.Detail, tn.v.Tput1/1e6, tn.v.Tput4/1e6, tn.mem)
}

// qcdTunnel is `qcdvpn up` against `qcdvpn gateway` (data tun, issuing
// tickets), which connectTimes reuses.
type qcdTunnel struct {
	*tunnel
	up    func(state string) (*client, map[string]any, time.Duration)
	first *client
	dir   string
	suite string
}

// setupQcdvpn starts `qcdvpn gateway` and `qcdvpn up` with one ESP suite.
func setupQcdvpn(t *testing.T, bin, key, esp, suite string) *qcdTunnel {
	pair := testbed.NewPair(t)
	var tk [32]byte
	_, _ = rand.Read(tk[:])
	g := startQcdGateway(t, pair, qcdGatewayOpts{auth: "psk", ikeProposals: []string{benchIKE}, espProposals: []string{esp},
		bin: bin, logLevel: "warn", ticketKey: hex.EncodeToString(tk[:])})
	e := &env{pair: pair, dir: t.TempDir()}
	n := 0
	up := func(state string) (*client, map[string]any, time.Duration) {
		p := profileFor(t, e, nil, benchIKE)
		p["esp_proposals"] = []string{esp}
		p["gateways"] = []string{g.addr.String()}
		p["state_dir"] = state
		delete(p, "timers") // the defaults: no liveness scare while another tunnel has the CPU
		dir := filepath.Join(e.dir, fmt.Sprint("p", n))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		prof := writeProfile(t, dir, p)
		n++
		start := time.Now()
		c := startBinary(t, pair.Client, bin, "up", "-p", prof, "--events", "json", "--log-level", "warn",
			"--tun", fmt.Sprint("qcdb", n), "--no-control", "--dns", "off")
		ev := c.waitEvent("connected", 20*time.Second)
		return c, ev, time.Since(start)
	}
	c, _, _ := up(filepath.Join(e.dir, "state"))
	tn := &tunnel{
		v:    benchreport.Variant{Key: key, Name: "qcdvpn up ↔ qcdvpn gateway", Detail: suite + ", " + linkMTU(t, pair.Client, "qcdb")},
		pair: pair, dst: hostBehind(pair),
		pids: []int{procOf(t, c.cmd.Process.Pid, "qcdvpn"), procOf(t, g.cmd.Process.Pid, "qcdvpn")},
		memory: func(m []rss) []benchreport.Memory {
			return []benchreport.Memory{
				{Key: key, Name: "qcdvpn up (" + suite + ")", Side: "client", Idle: m[0].idle, Loaded: m[0].loaded, HWM: m[0].hwm},
				{Key: key, Name: "qcdvpn gateway (" + suite + ", data tun)", Side: "gateway", Idle: m[1].idle, Loaded: m[1].loaded, HWM: m[1].hwm},
			}
		},
	}
	return &qcdTunnel{tunnel: tn, up: up, first: c, dir: e.dir, suite: suite}
}

// connectTimes stops the measured client and times full and resumed
// connects against the same gateway.
func (q *qcdTunnel) connectTimes(t *testing.T) []benchreport.Connect {
	if err := q.first.stop(); err != nil {
		t.Errorf("qcdvpn up exit: %v", err)
	}
	// Full exchanges: a fresh state directory each, closed cleanly.
	var fullIKE, fullWall, resIKE, resWall []time.Duration
	for i := range benchConnects {
		c, ev, wall := q.up(filepath.Join(q.dir, fmt.Sprint("full", i)))
		if ev["resumed"] != false {
			t.Errorf("full connect %d: resumed = %v", i, ev["resumed"])
		}
		fullIKE = append(fullIKE, elapsed(t, ev))
		fullWall = append(fullWall, wall)
		if err := c.stop(); err != nil {
			t.Errorf("qcdvpn up exit: %v", err)
		}
	}
	// Resumption: a client killed without closing its SA leaves its
	// ticket behind; the next start with that state directory resumes.
	state := filepath.Join(q.dir, "resume")
	kill := func(c *client) {
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	c, _, _ := q.up(state)
	kill(c)
	for i := range benchConnects {
		c, ev, wall := q.up(state)
		if ev["resumed"] != true {
			t.Errorf("connect %d with a ticket: resumed = %v", i, ev["resumed"])
		} else {
			resIKE = append(resIKE, elapsed(t, ev))
			resWall = append(resWall, wall)
		}
		kill(c)
	}
	return []benchreport.Connect{
		{Key: "qcdvpn-full", Name: "qcdvpn up, full exchange (" + q.suite + ")", Times: fullIKE, How: "`connected` event's elapsed_ms (IKE_SA_INIT + IKE_AUTH)"},
		{Key: "qcdvpn-resumed", Name: "qcdvpn up, resumed (RFC 5723)", Times: resIKE, How: "`connected` event's elapsed_ms (IKE_SESSION_RESUME + IKE_AUTH)"},
		{Key: "qcdvpn-full-wall", Name: "qcdvpn up, full exchange, process", Times: fullWall, How: "wall time from exec to `connected` (process start, TUN, routes)"},
		{Key: "qcdvpn-resumed-wall", Name: "qcdvpn up, resumed, process", Times: resWall, How: "wall time from exec to `connected`"},
	}
}

func elapsed(t *testing.T, ev map[string]any) time.Duration {
	t.Helper()
	ms, ok := ev["elapsed_ms"].(float64)
	if !ok || ms <= 0 {
		t.Errorf("connected event without elapsed_ms: %v", ev)
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// setupSwan is strongSwan↔strongSwan (both kernel-libipsec), as
// TestNetThroughput sets it up, with the client's connect timed.
func setupSwan(t *testing.T) (*tunnel, benchreport.Connect) {
	e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: benchIKE, espProposal: "aes256gcm16"})
	sc := testbed.SwanClient{
		Remote: e.pair.GatewayIP, Proposals: benchIKE, ESPProposals: "aes256gcm16",
		LocalID: "client.example", RemoteID: "gw.example", PSK: testPSK,
		RemoteTS: []netip.Prefix{e.pair.ProtectedPrefix()},
	}
	cl := testbed.StartStrongSwan(t, e.pair.Client, sc.Config())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := cl.Up(ctx, sc); err != nil {
		t.Fatalf("strongSwan client: %v", err)
	}
	took := time.Since(start)
	tn := &tunnel{
		v:    benchreport.Variant{Key: "strongswan", Name: "strongSwan ↔ strongSwan", Detail: "AES-256-GCM, " + linkMTU(t, e.pair.Client, "ipsec")},
		pair: e.pair, dst: hostBehind(e.pair),
	}
	return tn, benchreport.Connect{Key: "strongswan-full", Name: "strongSwan client, full exchange", Times: []time.Duration{took},
		How: "wall time of `swanctl --initiate` until the SA is listed ESTABLISHED"}
}

// setupQcdvpnSwan is `qcdvpn up` against a strongSwan gateway.
func setupQcdvpnSwan(t *testing.T, bin string) *tunnel {
	e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: benchIKE, espProposal: "aes256gcm16"})
	p := profileFor(t, e, nil, benchIKE)
	p["state_dir"] = filepath.Join(e.dir, "state")
	delete(p, "timers")
	c := startBinary(t, e.pair.Client, bin, "up", "-p", writeProfile(t, e.dir, p), "--events", "json",
		"--log-level", "warn", "--tun", "qcdbs0", "--no-control", "--dns", "off")
	c.waitEvent("connected", 20*time.Second)
	const key = "qcdvpn-strongswan"
	return &tunnel{
		v:    benchreport.Variant{Key: key, Name: "qcdvpn up → strongSwan", Detail: "AES-256-GCM, " + linkMTU(t, e.pair.Client, "qcdbs")},
		pair: e.pair, dst: hostBehind(e.pair),
		pids: []int{procOf(t, c.cmd.Process.Pid, "qcdvpn")},
		memory: func(m []rss) []benchreport.Memory {
			return []benchreport.Memory{{Key: key, Name: "qcdvpn up (→ strongSwan, AES-256-GCM)", Side: "client",
				Idle: m[0].idle, Loaded: m[0].loaded, HWM: m[0].hwm}}
		},
	}
}

// setupWireGuard runs wireguard-go in both namespaces of a new pair,
// configured with wg.
func setupWireGuard(t *testing.T, bin string) *tunnel {
	pair := testbed.NewPair(t)
	y := pair.Net.Addr().As4()[2]
	tunnelAddr := func(host byte) netip.Addr { return netip.AddrFrom4([4]byte{10, 201, y, host}) }
	id := fmt.Sprintf("%04x", time.Now().UnixNano()&0xffff)
	type end struct {
		ns      *testbed.NS
		ifname  string
		addr    netip.Addr
		underIP netip.Addr
		priv    string
		pub     string
		pid     int
	}
	ends := []*end{
		{ns: pair.Client, ifname: "wgc" + id, addr: tunnelAddr(1), underIP: pair.ClientIP},
		{ns: pair.Gateway, ifname: "wgg" + id, addr: tunnelAddr(2), underIP: pair.GatewayIP},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	for _, e := range ends {
		priv, err := exec.CommandContext(ctx, "wg", "genkey").Output()
		if err != nil {
			t.Fatalf("wg genkey: %v", err)
		}
		e.priv = filepath.Join(dir, e.ifname+".key")
		writeFile(t, e.priv, priv)
		pc := exec.CommandContext(ctx, "wg", "pubkey")
		pc.Stdin = bytes.NewReader(priv)
		pub, err := pc.Output()
		if err != nil {
			t.Fatalf("wg pubkey: %v", err)
		}
		e.pub = strings.TrimSpace(string(pub))
		e.pid = startWireGuardGo(t, bin, e.ns, e.ifname)
	}
	for i, e := range ends {
		peer := ends[1-i]
		if out, err := e.ns.Exec(ctx, "wg", "set", e.ifname, "private-key", e.priv, "listen-port", "51820",
			"peer", peer.pub, "endpoint", netip.AddrPortFrom(peer.underIP, 51820).String(), "allowed-ips", peer.addr.String()+"/32"); err != nil {
			t.Fatalf("wg set: %v\n%s", err, out)
		}
		for _, args := range [][]string{
			{"-n", e.ns.Name, "addr", "add", netip.PrefixFrom(e.addr, 24).String(), "dev", e.ifname},
			{"-n", e.ns.Name, "link", "set", e.ifname, "mtu", fmt.Sprint(wgMTU), "up"},
		} {
			if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v\n%s", args, err, out)
			}
		}
	}
	key := benchreport.BaselineKey
	return &tunnel{
		v:    benchreport.Variant{Key: key, Name: "wireguard-go ↔ wireguard-go", Detail: "ChaCha20-Poly1305, " + linkMTU(t, pair.Client, "wgc")},
		pair: pair, dst: ends[1].addr,
		pids: []int{ends[0].pid, ends[1].pid},
		memory: func(m []rss) []benchreport.Memory {
			return []benchreport.Memory{
				{Key: key, Name: "wireguard-go (client side)", Side: "client", Idle: m[0].idle, Loaded: m[0].loaded, HWM: m[0].hwm},
				{Key: key, Name: "wireguard-go (gateway side)", Side: "gateway", Idle: m[1].idle, Loaded: m[1].loaded, HWM: m[1].hwm},
			}
		},
	}
}

// startWireGuardGo runs `wireguard-go -f IFNAME` in ns until the test
// ends and returns its pid once its UAPI socket exists.
func startWireGuardGo(t *testing.T, bin string, ns *testbed.NS, ifname string) int {
	t.Helper()
	cmd := ns.Command(context.Background(), bin, "-f", ifname)
	cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("wireguard-go: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = os.Remove("/var/run/wireguard/" + ifname + ".sock")
	})
	sock := "/var/run/wireguard/" + ifname + ".sock"
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case <-done:
			t.Fatalf("wireguard-go %s exited: %s", ifname, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go %s: no %s within 10 s: %s", ifname, sock, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return procOf(t, cmd.Process.Pid, "wireguard-go")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// iperfStreams is iperf3 TCP from pair.Client to an iperf3 server on dst
// in pair.Gateway with n parallel streams, after a 1 s warm-up that is not
// counted; it returns the receiver's bit/s.
func iperfStreams(t *testing.T, pair *testbed.Pair, dst netip.Addr, secs, n int) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+30)*time.Second)
	defer cancel()
	port := fmt.Sprint(5201 + time.Now().Nanosecond()%500)
	srv := pair.Gateway.Command(ctx, "iperf3", "-s", "-1", "-B", dst.String(), "-p", port)
	if err := srv.Start(); err != nil {
		t.Fatalf("iperf3 server: %v", err)
	}
	defer srv.Wait()
	defer srv.Process.Kill()
	args := []string{"-c", dst.String(), "-p", port, "-t", fmt.Sprint(secs), "-O", "1", "-P", fmt.Sprint(n), "-J"}
	var out []byte
	var err error
	for try := 0; try < 30; try++ { // until the server listens
		out, err = pair.Client.Exec(ctx, "iperf3", args...)
		if !strings.Contains(string(out), "Connection refused") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("iperf3 %v: %v\n%s", args, err, out)
		return 0
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Error != "" || res.End.SumReceived.BitsPerSecond <= 0 {
		t.Errorf("iperf3 output: %v %s\n%s", err, res.Error, out)
		return 0
	}
	return res.End.SumReceived.BitsPerSecond
}

var pingTime = regexp.MustCompile(`time=([0-9.]+) ms`)

// pingRTT runs benchPings pings at benchInterval from ns to dst and
// returns each answered one's round trip.
func pingRTT(t *testing.T, ns *testbed.NS, dst netip.Addr) []time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	interval := strconv.FormatFloat(benchInterval.Seconds(), 'f', 3, 64)
	out, err := ns.Exec(ctx, "ping", "-n", "-c", fmt.Sprint(benchPings), "-i", interval, "-W", "1", dst.String())
	if err != nil {
		t.Errorf("ping: %v", err)
		return nil
	}
	var rtts []time.Duration
	for _, m := range pingTime.FindAllStringSubmatch(string(out), -1) {
		ms, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Errorf("ping output %q: %v", m[0], err)
			continue
		}
		rtts = append(rtts, time.Duration(ms*float64(time.Millisecond)))
	}
	if len(rtts) < benchPings*9/10 {
		t.Errorf("ping %s: %d of %d answered:\n%s", dst, len(rtts), benchPings, out)
	}
	return rtts
}

// procOf returns the pid of the program started as pid through `ip netns
// exec` (which execs in place; a forking ip would leave it as a child).
func procOf(t *testing.T, pid int, comm string) int {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			t.Fatalf("process %d: %v", pid, err)
		}
		if strings.TrimSpace(string(b)) == comm {
			return pid
		}
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(kids)); len(f) == 1 {
			if c, err := strconv.Atoi(f[0]); err == nil {
				pid = c
			}
		}
	}
	t.Fatalf("process %d is not %s", pid, comm)
	return 0
}

// memStatus is readStatus failing the test on error.
func memStatus(t *testing.T, pid int) (rss, hwm uint64) {
	t.Helper()
	rss, hwm, err := readStatus(pid)
	if err != nil {
		t.Errorf("%v", err)
	}
	return rss, hwm
}

// readStatus returns VmRSS and VmHWM of pid in bytes.
func readStatus(pid int) (rss, hwm uint64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %q: %v", pid, k, v, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS/VmHWM", pid)
	}
	return rss, hwm, sc.Err()
}

// linkMTU is the MTU of the first interface in ns whose name starts
// with prefix, as text ("?" when there is none).
func linkMTU(t *testing.T, ns *testbed.NS, prefix string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns.Name, "-o", "link", "show").Output()
	if err != nil {
		t.Errorf("ip link: %v", err)
		return "?"
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || !strings.HasPrefix(f[1], prefix) {
			continue
		}
		for i := 2; i+1 < len(f); i++ {
			if f[i] == "mtu" {
				return "MTU " + f[i+1]
			}
		}
	}
	return "?"
}

func loadavg(t *testing.T) string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// machine describes the CPU, cores, memory, kernel and Go version.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 && f[0] == "MemTotal:" {
			if kb, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%s, %d cores%s, Linux %s, %s %s/%s", model, runtime.NumCPU(), mem, kernel, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// versions names what was measured: qcdvpn's commit, the wireguard-go
// module, wg, strongSwan and iperf3.
func versions(t *testing.T, wgbin string) []string {
	first := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return "?"
		}
		l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return strings.TrimSpace(l)
	}
	commit := first("git", "rev-parse", "--short", "HEAD")
	if out := first("git", "status", "--porcelain", "--untracked-files=no"); out != "" && out != "?" {
		commit += " (with local changes)"
	}
	wgmod := first("go", "list", "-m", "golang.zx2c4.com/wireguard")
	return []string{
		"qcdvpn: commit " + commit + " (`go build`, no -race)",
		"wireguard-go: " + wgmod + " from go.sum, `go build golang.zx2c4.com/wireguard` (" + first(wgbin, "--version") + "), configured with " + strings.TrimSuffix(first("wg", "--version"), " - https://git.zx2c4.com/wireguard-tools/"),
		"strongSwan: " + first("dpkg-query", "-W", "-f", "${Version}", "strongswan-charon") + " (Debian), charon with kernel-libipsec",
		"iperf3: " + first("iperf3", "--version") + "; ping: " + first("ping", "-V"),
	}
}
