package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/dnstest"
	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// DNS in namespaces: `qcdvpn up` with a kernel TUN against `qcdvpn
// gateway` (data "tun") serving a zone behind the tunnel. The client
// namespace's resolver file is /etc/netns/NAME/resolv.conf, which `ip
// netns exec` bind-mounts over /etc/resolv.conf; it names an "ISP"
// resolver on the underlay (a dnstest server the test runs in the
// gateway namespace, on the link address).

// zoneHost is the address of the gateway's DNS zone behind the tunnel.
func zoneHost(pair *testbed.Pair) netip.Addr {
	b := pair.ProtectedPrefix().Addr().As4()
	b[3] = 53
	return netip.AddrFrom4(b)
}

// wwwCorp is what the gateway's zone says www.corp.test is.
func wwwCorp(pair *testbed.Pair) netip.Addr {
	b := pair.ProtectedPrefix().Addr().As4()
	b[3] = 5
	return netip.AddrFrom4(b)
}

// startDNSGateway runs `qcdvpn gateway` (PSK, data "tun") in pair's
// gateway namespace with dns, dns_domains ["corp.test"] and a dns_zone on
// zoneHost, a loopback alias of the namespace.
func startDNSGateway(t *testing.T, pair *testbed.Pair) *client {
	t.Helper()
	pair.Gateway.AddLoopbackAddr(t, netip.PrefixFrom(zoneHost(pair), 32))
	dir := t.TempDir()
	cfg := map[string]any{
		"listen":      []string{pair.GatewayIP.String()},
		"id":          "gw.example",
		"auth":        map[string]any{"method": "psk", "psk": testPSK},
		"pool":        []string{pair.PoolPrefix().String()},
		"local_ts":    []string{pair.ProtectedPrefix().String()},
		"dns":         []string{zoneHost(pair).String()},
		"dns_domains": []string{"corp.test"},
		"dns_zone": map[string]any{"listen": zoneHost(pair).String(), "records": []string{
			"www.corp.test. 60 IN A " + wwwCorp(pair).String(),
		}},
		"data":      "tun",
		"state_dir": filepath.Join(dir, "state"),
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.json")
	writeFile(t, path, b)
	g := startQcdvpn(t, pair.Gateway, "gateway", "-c", path, "--events", "json", "--log-level", "info")
	g.waitEvent("listening", 15*time.Second)
	return g
}

// underlayResolver starts the "ISP" resolver in ns on addr:53 (UDP and
// TCP). Its answer for www.corp.test differs from the zone's, so that a
// leaked query also shows in the answer.
func underlayResolver(t *testing.T, ns *testbed.NS, addr netip.Addr, records ...string) *dnstest.Server {
	t.Helper()
	records = append(records, "other.test. 60 IN A 198.51.100.7", "www.corp.test. 60 IN A 198.51.100.99")
	s, err := dnstest.New(records...)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(addr, 53).String()
	pc, err := ns.ListenPacket("udp", ap)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ns.Listen("tcp", ap)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(pc, l)
	t.Cleanup(s.Close)
	return s
}

// netnsResolvConf writes /etc/netns/NAME/resolv.conf for ns (mode 0644)
// and removes it when the test ends; it returns the path.
func netnsResolvConf(t *testing.T, ns *testbed.NS, content string) string {
	t.Helper()
	dir := filepath.Join("/etc/netns", ns.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileState is a file's bytes and mode, for exact comparisons.
type fileState struct {
	b    []byte
	mode fs.FileMode
}

func readFileState(t *testing.T, path string) fileState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{b, fi.Mode()}
}

func (a fileState) equal(b fileState) bool { return bytes.Equal(a.b, b.b) && a.mode == b.mode }

// resolveIn resolves name inside ns the way programs there do: getent,
// through the C library's stub resolver and the namespace's resolver
// file. It returns the first IPv4 address, or "" if none.
func resolveIn(t *testing.T, ns *testbed.NS, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, _ := ns.Command(ctx, "getent", "ahostsv4", name).Output()
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// capture runs tcpdump on an interface of ns, printing DNS (port 53)
// packets; lines returns what it saw so far.
type capture struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func startCapture(t *testing.T, ns *testbed.NS, ifname string) *capture {
	t.Helper()
	c := &capture{done: make(chan struct{})}
	c.cmd = ns.Command(context.Background(), "tcpdump", "-l", "-n", "-i", ifname, "port", "53")
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Skipf("SKIP: tcpdump: %v", err)
	}
	t.Cleanup(func() { _ = c.cmd.Process.Kill(); <-c.done })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
		}
		_ = c.cmd.Wait()
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not start listening within 10 s")
	}
	return c
}

func (c *capture) matching(s string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// dnsProfile is a client profile for gateways (names or addresses) with
// fast liveness checks and the state in dir.
func dnsProfile(t *testing.T, pair *testbed.Pair, dir string, gateways ...string) string {
	t.Helper()
	p := map[string]any{
		"name":          "dns",
		"gateways":      gateways,
		"remote_id":     "gw.example",
		"local_id":      "client.example",
		"auth":          map[string]any{"method": "psk", "psk": testPSK},
		"ike_proposals": []string{"aes256gcm16-prfsha256-x25519"},
		"esp_proposals": []string{"aes256gcm16"},
		"traffic":       map[string]any{"include": []string{pair.ProtectedPrefix().String()}},
		"timers": map[string]any{"retransmit_timeout": "300ms", "retransmit_tries": 3,
			"liveness": "2s", "fast_liveness": "1s"},
		"state_dir": filepath.Join(dir, "state"),
	}
	return writeProfile(t, dir, p)
}

// TestSplitDNSNoLeakAndFailover: a split domain resolves through the
// tunnel's DNS server (the gateway's zone) while another name resolves
// through the underlay resolver; tcpdump on the underlay links sees the
// other name's query and gw.test's, never the split domain. The gateway
// name has two A records: when the primary dies the client moves to the
// second address without a new lookup. After `up` exits the resolver file
// is byte for byte and mode as before.
func TestSplitDNSNoLeakAndFailover(t *testing.T) {
	requireEnv(t)
	primary := testbed.NewPair(t)
	backup := primary.AnotherGateway(t)
	isp := underlayResolver(t, primary.Gateway, primary.GatewayIP,
		"gw.test. 300 IN A "+primary.GatewayIP.String(), "gw.test. 300 IN A "+backup.GatewayIP.String())
	conf := netnsResolvConf(t, primary.Client, fmt.Sprintf("# test resolver\nnameserver %s\noptions timeout:2 attempts:2\n", primary.GatewayIP))
	before := readFileState(t, conf)
	g1 := startDNSGateway(t, primary)
	startDNSGateway(t, backup)
	capA := startCapture(t, primary.Client, primary.Link.AIf)
	capB := startCapture(t, primary.Client, backup.Link.AIf)

	dir := t.TempDir()
	c := startClient(t, primary.Client, dnsProfile(t, primary, dir, "gw.test:4500"), "--tun", "qcdns0")
	ev := c.waitEvent("connected", 20*time.Second)
	if ev["gateway"] != primary.GatewayIP.String() {
		t.Fatalf("connected to %v, want the first A record %s", ev["gateway"], primary.GatewayIP)
	}
	if fmt.Sprint(ev["dns"]) != fmt.Sprintf("[%s]", zoneHost(primary)) || fmt.Sprint(ev["dns_domains"]) != "[corp.test]" {
		t.Fatalf("connected event: dns %v dns_domains %v", ev["dns"], ev["dns_domains"])
	}
	asked := isp.Count("gw.test")
	if asked == 0 {
		t.Fatal("gw.test was not looked up at the underlay resolver")
	}
	if up := readFileState(t, conf); up.equal(before) || !strings.Contains(string(up.b), "nameserver 127.0.0.153") {
		t.Fatalf("resolver file while up:\n%s", up.b)
	}

	check := func(when string) {
		t.Helper()
		if got := resolveIn(t, primary.Client, "www.corp.test"); got != wwwCorp(primary).String() {
			t.Fatalf("%s: www.corp.test resolved to %q, want the tunnel zone's %s", when, got, wwwCorp(primary))
		}
		if got := resolveIn(t, primary.Client, "other.test"); got != "198.51.100.7" {
			t.Fatalf("%s: other.test resolved to %q, want the underlay resolver's 198.51.100.7", when, got)
		}
	}
	check("connected")

	// The primary dies (kill -9): the client fails over to the second A
	// record from its cache.
	_ = g1.cmd.Process.Kill()
	killed := time.Now()
	for {
		ev = c.waitEvent("connected", 30*time.Second)
		if ev["gateway"] == backup.GatewayIP.String() {
			break
		}
	}
	t.Logf("failed over to %s in %v", backup.GatewayIP, time.Since(killed).Round(time.Millisecond))
	if n := isp.Count("gw.test"); n != asked {
		t.Fatalf("the failover looked gw.test up again: %d queries, had %d", n, asked)
	}
	check("after failover")

	// Leak test: the underlay carried the other name's query (so the
	// capture works) and gw.test's, never the split domain.
	time.Sleep(200 * time.Millisecond) // tcpdump's last lines
	if len(capA.matching("other.test")) == 0 {
		t.Fatalf("capture on %s saw no query for other.test: the capture does not work", primary.Link.AIf)
	}
	if len(capA.matching("gw.test")) == 0 {
		t.Fatalf("capture saw no query for gw.test")
	}
	for _, cp := range []*capture{capA, capB} {
		if leaked := cp.matching("corp.test"); len(leaked) > 0 {
			t.Fatalf("split-domain queries on the underlay:\n%s", strings.Join(leaked, "\n"))
		}
	}
	if n := isp.Count("www.corp.test"); n != 0 {
		t.Fatalf("the underlay resolver was asked for www.corp.test %d times", n)
	}

	if err := c.stop(); err != nil {
		t.Fatalf("qcdvpn up: %v\n%s", err, c.Stderr())
	}
	if after := readFileState(t, conf); !after.equal(before) {
		t.Fatalf("resolver file after down differs:\nbefore (%v):\n%s\nafter (%v):\n%s", before.mode, before.b, after.mode, after.b)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "dns-state.json")); !os.IsNotExist(err) {
		t.Fatalf("DNS state record left after a clean exit: %v", err)
	}
}

// TestDNSRestoredAfterKill9: `qcdvpn up` killed with -9 leaves the
// resolver file pointing at its dead forwarder and its record in the
// state directory; the next `up` restores the original first (and so
// learns the real underlay resolver, not the dead forwarder), and after
// it exits the file is byte for byte and mode as before the first run.
func TestDNSRestoredAfterKill9(t *testing.T) {
	requireEnv(t)
	pair := testbed.NewPair(t)
	underlayResolver(t, pair.Gateway, pair.GatewayIP)
	conf := netnsResolvConf(t, pair.Client, fmt.Sprintf("nameserver %s\nsearch example.test\n", pair.GatewayIP))
	if err := os.Chmod(conf, 0o640); err != nil {
		t.Fatal(err)
	}
	before := readFileState(t, conf)
	startDNSGateway(t, pair)
	dir := t.TempDir()
	profile := dnsProfile(t, pair, dir, netip.AddrPortFrom(pair.GatewayIP, 4500).String())
	record := filepath.Join(dir, "state", "dns-state.json")

	c := startClient(t, pair.Client, profile, "--tun", "qcdns1")
	c.waitEvent("connected", 20*time.Second)
	if got := resolveIn(t, pair.Client, "www.corp.test"); got != wwwCorp(pair).String() {
		t.Fatalf("www.corp.test = %q", got)
	}
	_ = c.cmd.Process.Kill()
	c.wait(10 * time.Second)
	if st := readFileState(t, conf); st.equal(before) {
		t.Fatal("the resolver file was restored without a record (expected the crash to leave it)")
	}
	if _, err := os.Stat(record); err != nil {
		t.Fatalf("no DNS state record after kill -9: %v", err)
	}

	c = startClient(t, pair.Client, profile, "--tun", "qcdns1")
	c.waitEvent("connected", 20*time.Second)
	if !strings.Contains(c.Stderr(), "restoring DNS configuration left by an earlier run") {
		t.Errorf("the second up did not report restoring the leftover; stderr:\n%s", c.Stderr())
	}
	if got := resolveIn(t, pair.Client, "other.test"); got != "198.51.100.7" {
		t.Fatalf("after the restart other.test = %q (the forwarder must use the original resolver)", got)
	}
	if got := resolveIn(t, pair.Client, "www.corp.test"); got != wwwCorp(pair).String() {
		t.Fatalf("after the restart www.corp.test = %q", got)
	}
	if err := c.stop(); err != nil {
		t.Fatalf("qcdvpn up: %v", err)
	}
	if after := readFileState(t, conf); !after.equal(before) {
		t.Fatalf("resolver file differs:\nbefore (%v):\n%s\nafter (%v):\n%s", before.mode, before.b, after.mode, after.b)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("record left: %v", err)
	}

	// kill -9 once more; this time `qcdvpn down -p` (no up answers)
	// restores it.
	c = startClient(t, pair.Client, profile, "--tun", "qcdns1", "--no-control")
	c.waitEvent("connected", 20*time.Second)
	_ = c.cmd.Process.Kill()
	c.wait(10 * time.Second)
	if st := readFileState(t, conf); st.equal(before) {
		t.Fatal("the resolver file was restored without a record (expected the crash to leave it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := pair.Client.Exec(ctx, qcdvpnBin, "down", "-p", profile, "--control", filepath.Join(dir, "no-such.sock")); err != nil {
		t.Fatalf("qcdvpn down -p: %v\n%s", err, out)
	}
	if after := readFileState(t, conf); !after.equal(before) {
		t.Fatalf("after kill -9 and down the resolver file differs:\nbefore (%v):\n%s\nafter (%v):\n%s", before.mode, before.b, after.mode, after.b)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("record left after down: %v", err)
	}
}

// TestSwanSplitDNS: strongSwan as the gateway hands out a DNS server and
// a split domain (swanctl pool attributes dns and 25, INTERNAL_DNS_DOMAIN);
// `qcdvpn up` applies them, and a name of the domain resolves through the
// tunnel at a resolver behind strongSwan while other names use the
// underlay resolver.
func TestSwanSplitDNS(t *testing.T) {
	requireEnv(t)
	pair := testbed.NewPair(t)
	inside := zoneHost(pair)
	pair.Gateway.AddLoopbackAddr(t, netip.PrefixFrom(inside, 32))
	// The resolver behind the gateway, reached only through the tunnel.
	zone, err := dnstest.New("www.corp.test. 60 IN A " + wwwCorp(pair).String())
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pair.Gateway.ListenPacket("udp", netip.AddrPortFrom(inside, 53).String())
	if err != nil {
		t.Fatal(err)
	}
	zone.Start(pc, nil)
	t.Cleanup(zone.Close)
	isp := underlayResolver(t, pair.Gateway, pair.GatewayIP)
	conf := netnsResolvConf(t, pair.Client, fmt.Sprintf("nameserver %s\n", pair.GatewayIP))
	before := readFileState(t, conf)

	e, _ := gatewayOn(t, pair, gwOpts{auth: "psk", ikeProposal: "aes256gcm16-prfsha256-x25519",
		poolExtras: fmt.Sprintf("dns = %s\n25 = corp.test", inside)})
	p := profileFor(t, e, nil, "aes256gcm16-prfsha256-x25519")
	p["state_dir"] = filepath.Join(e.dir, "state")
	c := startClient(t, pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdns2")
	ev := c.waitEvent("connected", 20*time.Second)
	if fmt.Sprint(ev["dns"]) != fmt.Sprintf("[%s]", inside) || fmt.Sprint(ev["dns_domains"]) != "[corp.test]" {
		t.Fatalf("connected event from strongSwan: dns %v dns_domains %v", ev["dns"], ev["dns_domains"])
	}
	if got := resolveIn(t, pair.Client, "www.corp.test"); got != wwwCorp(pair).String() {
		t.Fatalf("www.corp.test resolved to %q, want %s from the resolver behind strongSwan", got, wwwCorp(pair))
	}
	if got := resolveIn(t, pair.Client, "other.test"); got != "198.51.100.7" {
		t.Fatalf("other.test resolved to %q, want the underlay resolver's", got)
	}
	if zone.Count("www.corp.test") == 0 || isp.Count("www.corp.test") != 0 {
		t.Fatalf("www.corp.test: %d queries behind the tunnel, %d at the underlay resolver", zone.Count("www.corp.test"), isp.Count("www.corp.test"))
	}
	if err := c.stop(); err != nil {
		t.Fatalf("qcdvpn up: %v", err)
	}
	if after := readFileState(t, conf); !after.equal(before) {
		t.Fatalf("resolver file differs after down:\n%s", after.b)
	}
}

// TestFullTunnelDNS: with all traffic in the tunnel every query goes to
// the tunnel's server (split domains are ignored, RFC 8598 §2), none to
// the underlay resolver; yet the gateway name is refreshed before its TTL
// ends at the underlay resolver, over the underlay (its socket carries
// the tunnel's fwmark: unmarked, the query would be routed into the TUN
// and dropped, as the child SA covers only the protected prefix).
func TestFullTunnelDNS(t *testing.T) {
	requireEnv(t)
	pair := testbed.NewPair(t)
	// The resolver is off-link, reached by the client's default route (a
	// resolver on the link's subnet is reached directly whatever the
	// mark: the main table's non-default routes win, as with wg-quick).
	b4 := pair.Net.Addr().As4()
	far := netip.AddrFrom4([4]byte{198, 18, b4[2], 53})
	pair.Gateway.AddLoopbackAddr(t, netip.PrefixFrom(far, 32))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pair.Client.Exec(ctx, "ip", "route", "add", "default", "via", pair.GatewayIP.String()); err != nil {
		t.Fatal(err)
	}
	isp := underlayResolver(t, pair.Gateway, far, "gw.test. 1 IN A "+pair.GatewayIP.String())
	conf := netnsResolvConf(t, pair.Client, fmt.Sprintf("nameserver %s\n", far))
	before := readFileState(t, conf)
	startDNSGateway(t, pair)
	capture := startCapture(t, pair.Client, pair.Link.AIf)
	dir := t.TempDir()
	path := dnsProfile(t, pair, dir, "gw.test:4500")
	raw, _ := os.ReadFile(path)
	var p map[string]any
	_ = json.Unmarshal(raw, &p)
	p["traffic"] = map[string]any{"include": []string{"0.0.0.0/0"}}
	c := startClient(t, pair.Client, writeProfile(t, dir, p), "--tun", "qcdns3")
	ev := c.waitEvent("connected", 20*time.Second)
	if _, ok := ev["dns_domains"]; ok {
		t.Errorf("full tunnel: dns_domains %v reported, want none (RFC 8598 §2)", ev["dns_domains"])
	}
	connected := isp.Count("gw.test")
	time.Sleep(200 * time.Millisecond) // tcpdump's lines of the first lookup
	seen := len(capture.matching("gw.test"))
	if got := resolveIn(t, pair.Client, "www.corp.test"); got != wwwCorp(pair).String() {
		t.Fatalf("www.corp.test = %q", got)
	}
	if got := resolveIn(t, pair.Client, "other.test"); got != "" {
		t.Fatalf("other.test = %q: answered outside the tunnel's server", got)
	}
	if n := isp.Count("other.test") + isp.Count("www.corp.test"); n != 0 {
		t.Fatalf("%d queries reached the underlay resolver in a full tunnel", n)
	}
	// TTL 1 s is raised to 5 s and refreshed at 3/4 of it.
	deadline := time.Now().Add(8 * time.Second)
	for isp.Count("gw.test") == connected && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if isp.Count("gw.test") == connected {
		t.Fatal("gw.test was not refreshed while connected")
	}
	time.Sleep(200 * time.Millisecond)
	if len(capture.matching("gw.test")) <= seen {
		t.Fatalf("the refresh did not go over the underlay; capture:\n%s", strings.Join(capture.matching("53"), "\n"))
	}
	if leaked := append(capture.matching("corp.test"), capture.matching("other.test")...); len(leaked) > 0 {
		t.Fatalf("queries on the underlay in a full tunnel:\n%s", strings.Join(leaked, "\n"))
	}
	if err := c.stop(); err != nil {
		t.Fatalf("qcdvpn up: %v", err)
	}
	if after := readFileState(t, conf); !after.equal(before) {
		t.Fatalf("resolver file differs after down:\n%s", after.b)
	}
}
