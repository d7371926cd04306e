package mobile

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Environment of TestMemoryReport (set by scripts/bench.sh) and of the
// gateway process it starts.
const (
	memoryReportEnv   = "QCDVPN_MEMORY_REPORT"
	gatewayProcessEnv = "QCDVPN_MOBILE_GATEWAY_PROCESS"
)

// TestGatewayProcess is the gateway of TestMemoryReport, in a process of
// its own so that its memory is not counted: it prints its address and
// runs until its stdin closes.
func TestGatewayProcess(t *testing.T) {
	if os.Getenv(gatewayProcessEnv) == "" {
		t.Skip("the gateway process of TestMemoryReport")
	}
	gw := startGateway(t)
	fmt.Printf("gateway %s\n", gw)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// vmRSS is the process's resident set size (/proc/self/status VmRSS),
// 0 where there is no /proc.
func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestMemoryReport prints (make bench) the live heap (HeapInuse after a
// full collection) and the RSS of a process that runs one tunnel: before
// it, connected and idle, and under UDP load. The gateway runs in another
// process; the test binary's own share is in the "before" figures.
func TestMemoryReport(t *testing.T) {
	if os.Getenv(memoryReportEnv) == "" {
		t.Skip("make bench sets " + memoryReportEnv)
	}
	gw := startGatewayProcess(t)
	mib := func(v uint64) string { return fmt.Sprintf("%.2f MiB", float64(v)/(1<<20)) }
	rss := func() string {
		if v := vmRSS(); v > 0 {
			return mib(v)
		}
		return "n/a"
	}
	report := func(what string, extra string) {
		heap := liveHeap() // collects first, so RSS is read after GC too
		t.Logf("memory %-18s live heap %10s  RSS %10s%s", what+":", mib(heap), rss(), extra)
	}
	report("before the tunnel", "")

	tn, err := NewTunnel(profileJSON(t, gw), TUNNetstack, newFakePlatform(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()
	if err := tn.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := echo(t, tn, []byte("warm up")); err != nil {
		t.Fatalf("echo: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	report("idle tunnel", "")
	echoed := loadTunnel(t, tn, 4, 3*time.Second, func() { report("loaded tunnel", "") })
	t.Logf("memory load: 4 flows of 1200-byte UDP datagrams, %d echoed in 3 s", echoed)
}

// startGatewayProcess runs TestGatewayProcess in a child process until
// the test ends.
func startGatewayProcess(t *testing.T) netip.AddrPort {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestGatewayProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), gatewayProcessEnv+"=1", memoryReportEnv+"=")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "gateway "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return netip.MustParseAddrPort(a)
	case <-time.After(20 * time.Second):
		t.Fatal("the gateway process printed no address")
		return netip.AddrPort{}
	}
}

// loadTunnel runs flows UDP flows of 1200-byte datagrams through tn to
// the echo service, each waiting for its echo, for d; at runs halfway
// through. It returns how many came back.
func loadTunnel(t testing.TB, tn *Tunnel, flows int, d time.Duration, at func()) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	var echoed atomic.Int64
	for range flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tn.client.Net().DialUDPAddrPort(netip.AddrPort{}, echoTarget)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			out := make([]byte, 1200)
			in := make([]byte, 1500)
			for ctx.Err() == nil {
				if _, err := c.Write(out); err != nil {
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, err := c.Read(in); err == nil {
					echoed.Add(1)
				}
			}
		}()
	}
	time.Sleep(d / 2)
	at()
	cancel()
	wg.Wait()
	return echoed.Load()
}
