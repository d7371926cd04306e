package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/qcdvpn/qcdvpn/gateway"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// childEnv selects what a re-run test binary does instead of the tests.
const childEnv = "QCDVPN_E2E_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "client":
		os.Exit(childClient())
	case "gateway":
		os.Exit(childGateway())
	case "flood":
		os.Exit(childFlood())
	default:
		fmt.Fprintf(os.Stderr, "e2e: unknown %s=%q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}

// child runs this test binary in mode with extra environment; its stdin
// and stdout are pipes. It is killed when the test ends.
type child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *lineReader
	done  chan struct{}
	wait  error
	waitM sync.Mutex
}

func startChild(t testing.TB, mode string, env ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode), env...)
	return startCmd(t, cmd)
}

// startCmd starts cmd with piped stdin and stdout, killed when the test ends.
func startCmd(t testing.TB, cmd *exec.Cmd) *child {
	t.Helper()
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	c := &child{cmd: cmd, in: in, out: newLineReader(out), done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		c.waitM.Lock()
		c.wait = err
		c.waitM.Unlock()
		close(c.done)
	}()
	t.Cleanup(func() { c.kill() })
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// kill is SIGKILL and reap, bounded.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

// exited waits for the child to end by itself.
func (c *child) exited(timeout time.Duration) error {
	select {
	case <-c.done:
		c.waitM.Lock()
		defer c.waitM.Unlock()
		return c.wait
	case <-time.After(timeout):
		return fmt.Errorf("child %d still running after %v", c.pid(), timeout)
	}
}

// --- client child: connect, report, die without Close ---

// childConnected is what the client child reports.
type childConnected struct {
	SPIi, SPIr uint64
	Resumed    bool
	Gateway    string
}

func childClient() int {
	p, err := sdk.ParseProfile([]byte(os.Getenv("QCDVPN_E2E_PROFILE")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child client:", err)
		return 1
	}
	c, err := sdk.NewClient(p, sdk.Options{Logger: testLogger(), LocalAddr: "127.0.0.1:0",
		DataPlane: sdk.DataPlaneNetstack, StateDir: os.Getenv("QCDVPN_E2E_STATE")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child client:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child client: connect:", err)
		return 1
	}
	s := c.Session()
	spii, spir := s.SPIs()
	b, _ := json.Marshal(childConnected{SPIi: spii, SPIr: spir, Resumed: s.Resumed(), Gateway: s.Remote().String()})
	fmt.Printf("connected %s\n", b)
	// The "kill": no Close, no Delete; the record with the ticket stays
	// in the state directory, as after kill -9 or a phone's OOM killer.
	os.Exit(0)
	return 0
}

// runClientChild connects a client in a child process with state in dir
// and lets it die without Close.
func runClientChild(t testing.TB, profile []byte, dir string) childConnected {
	t.Helper()
	c := startChild(t, "client", "QCDVPN_E2E_PROFILE="+string(profile), "QCDVPN_E2E_STATE="+dir)
	line, err := c.out.next("connected ", 30*time.Second)
	if err != nil {
		t.Fatalf("client child: %v", err)
	}
	var cc childConnected
	if err := json.Unmarshal([]byte(line), &cc); err != nil {
		t.Fatalf("client child said %q: %v", line, err)
	}
	if err := c.exited(10 * time.Second); err != nil {
		t.Fatalf("client child: %v", err)
	}
	return cc
}

// --- gateway child: serve, answer CPU queries ---

func childGateway() int {
	cfg, err := gateway.LoadConfig(os.Getenv("QCDVPN_E2E_CONFIG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child gateway:", err)
		return 1
	}
	opts := gateway.Options{Logger: testLogger()}
	if os.Getenv("QCDVPN_E2E_GW_EVENTS") != "" {
		// One "event {json}" line per gateway event (the HA tests read them).
		var mu sync.Mutex
		opts.OnEvent = func(e gateway.Event) {
			b, _ := json.Marshal(e)
			mu.Lock()
			fmt.Printf("event %s\n", b)
			mu.Unlock()
		}
	}
	g, err := gateway.New(cfg, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child gateway:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	fmt.Printf("listening %s\n", g.Addrs()[0])
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "cpu":
			var ru syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			fmt.Printf("cpu %d %d\n", ru.Utime.Nano(), ru.Stime.Nano())
		}
	}
	// stdin closed: the parent is done.
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return 0
}

// --- flood child: unprotected junk at a client ---

// floodSpec tells the flood child what to send.
type floodSpec struct {
	Target     string  // the client's socket
	FirstSrc   string  // first source address; NSrc consecutive ones
	NSrc       int     // source addresses
	Senders    int     // goroutines
	Rate       int     // messages per second overall
	Seconds    float64 // duration
	SPIi, SPIr uint64  // the client's IKE SA
	ChildSPI   uint32  // its outbound Child SA SPI
	// OtherToken is a valid token of another IKE SA (OtherSPIi/r) of the
	// same gateway.
	OtherToken           string
	OtherSPIi, OtherSPIr uint64
}

// floodResult is what the flood child achieved.
type floodResult struct {
	Sent    int
	Seconds float64
	Errors  int
	Kinds   int
}

func childFlood() int {
	var spec floodSpec
	if err := json.Unmarshal([]byte(os.Getenv("QCDVPN_E2E_FLOOD")), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child flood:", err)
		return 1
	}
	res, err := flood(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child flood:", err)
		return 1
	}
	b, _ := json.Marshal(res)
	fmt.Printf("flood %s\n", b)
	return 0
}

// floodMessages are the forgeries of TestQCDFlood, each kind several
// times with fresh random parts.
func floodMessages(spec floodSpec) (msgs [][]byte, kinds int) {
	rnd := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	rnd64 := func() uint64 { return binary.BigEndian.Uint64(rnd(8)) }
	other, _ := hex.DecodeString(spec.OtherToken)
	childSPI := binary.BigEndian.AppendUint32(nil, spec.ChildSPI)
	i, r := spec.SPIi, spec.SPIr
	invIKE := notifyPayload(protoIKE, nil, notifyInvalidIKESPI, nil)
	invSPI := notifyPayload(protoESP, childSPI, notifyInvalidSPI, nil)
	resp := uint8(flagResponse)
	gens := []func() []byte{
		// Wrong token for the right SPIs.
		func() []byte { return ikeMessage(i, r, exchInformational, resp, 0, invIKE, tokenPayload(rnd(32))) },
		func() []byte {
			return ikeMessage(i, r, exchInformational, resp, uint32(rnd64()), invIKE, tokenPayload(rnd(16+int(rnd(1)[0])%113)))
		},
		// The same behind a non-ESP marker.
		func() []byte {
			return marked(ikeMessage(i, r, exchInformational, resp, 1, invIKE, tokenPayload(rnd(32))))
		},
		// Another SA's (valid) token for our SPIs.
		func() []byte { return ikeMessage(i, r, exchInformational, resp, 2, invIKE, tokenPayload(other)) },
		// Another SA's token with its own SPIs (an SA we do not hold).
		func() []byte {
			return ikeMessage(spec.OtherSPIi, spec.OtherSPIr, exchInformational, resp, 2, invIKE, tokenPayload(other))
		},
		// Truncated (15) and oversized (129) tokens.
		func() []byte { return ikeMessage(i, r, exchInformational, resp, 3, invIKE, tokenPayload(rnd(15))) },
		func() []byte { return ikeMessage(i, r, exchInformational, resp, 3, invIKE, tokenPayload(rnd(129))) },
		// Ten tokens in one message.
		func() []byte {
			ps := []payload{invIKE}
			for range 10 {
				ps = append(ps, tokenPayload(rnd(32)))
			}
			return ikeMessage(i, r, exchInformational, resp, 4, ps...)
		},
		// Random SPIs.
		func() []byte {
			return ikeMessage(rnd64(), rnd64(), exchInformational, resp, 5, invIKE, tokenPayload(rnd(32)))
		},
		// Our SPIi, random SPIr.
		func() []byte {
			return ikeMessage(i, rnd64(), exchInformational, resp, 5, invIKE, tokenPayload(rnd(32)))
		},
		// INVALID_SPI naming our child SPI, zero IKE SPIs, wrong token;
		// also with the SPI in the data (strongSwan style).
		func() []byte { return ikeMessage(0, 0, exchInformational, resp, 0, invSPI, tokenPayload(rnd(32))) },
		func() []byte {
			return ikeMessage(0, 0, exchInformational, resp, 0, notifyPayload(protoESP, nil, notifyInvalidSPI, childSPI), tokenPayload(rnd(32)))
		},
		// Tokens without INVALID_*; a bare INVALID_IKE_SPI.
		func() []byte { return ikeMessage(i, r, exchInformational, resp, 0, tokenPayload(rnd(32))) },
		func() []byte { return ikeMessage(i, r, exchInformational, resp, 0, invIKE) },
		// Malformed chains, with our SPIs so that they reach the SA.
		func() []byte { // length field too long
			m := ikeMessage(i, r, exchInformational, resp, 0, invIKE, tokenPayload(rnd(32)))
			binary.BigEndian.PutUint32(m[24:], uint32(len(m)+7))
			return m
		},
		func() []byte { // payload running past the end
			m := ikeMessage(i, r, exchInformational, resp, 0, invIKE, tokenPayload(rnd(32)))
			binary.BigEndian.PutUint16(m[28+2:], 0xfff0)
			return m
		},
		func() []byte { // payload length below its header
			m := ikeMessage(i, r, exchInformational, resp, 0, invIKE, tokenPayload(rnd(32)))
			binary.BigEndian.PutUint16(m[28+2:], 2)
			return m
		},
		func() []byte { // trailing octets after the last payload
			m := ikeMessage(i, r, exchInformational, resp, 0, invIKE, tokenPayload(rnd(32)))
			m = append(m, rnd(9)...)
			binary.BigEndian.PutUint32(m[24:], uint32(len(m)))
			return m
		},
		func() []byte { // next payload claims more after the last
			m := ikeMessage(i, r, exchInformational, resp, 0, invIKE, tokenPayload(rnd(32)))
			m[28+8] = payloadNotify // the token payload's next-payload field
			return m
		},
		func() []byte { // unknown critical payload
			return ikeMessage(i, r, exchInformational, resp, 0, invIKE, payload{typ: 200, critical: true, body: rnd(8)}, tokenPayload(rnd(32)))
		},
		func() []byte { // an SK payload of junk after the notifies
			return ikeMessage(i, r, exchInformational, resp, 0, invIKE, tokenPayload(rnd(32)), payload{typ: payloadSK, body: rnd(48)})
		},
		func() []byte { // notify shorter than its SPI
			return ikeMessage(i, r, exchInformational, resp, 0, payload{typ: payloadNotify, body: []byte{protoESP, 8, 0, notifyInvalidSPI, 1}})
		},
		func() []byte { // IKE major version 1
			m := ikeMessage(i, r, exchInformational, resp, 0, invIKE, tokenPayload(rnd(32)))
			m[17] = 0x10
			return m
		},
		func() []byte { return rnd(20) },              // shorter than a header
		func() []byte { return append(rnd(4), 0xff) }, // not IKE at all
	}
	for range 48 {
		for _, g := range gens {
			msgs = append(msgs, g())
		}
	}
	return msgs, len(gens)
}

func flood(spec floodSpec) (floodResult, error) {
	target, err := netip.ParseAddrPort(spec.Target)
	if err != nil {
		return floodResult{}, err
	}
	src, err := netip.ParseAddr(spec.FirstSrc)
	if err != nil {
		return floodResult{}, err
	}
	var conns []*ipv4.PacketConn
	for range spec.NSrc {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		if err != nil {
			return floodResult{}, err
		}
		defer c.Close()
		_ = c.SetWriteBuffer(1 << 20)
		conns = append(conns, ipv4.NewPacketConn(c))
		src = src.Next()
	}
	msgs, kinds := floodMessages(spec)
	dst := net.UDPAddrFromAddrPort(target)
	senders := max(spec.Senders, 1)
	per := float64(spec.Rate) / float64(senders)
	dur := time.Duration(spec.Seconds * float64(time.Second))
	start := time.Now()
	var mu sync.Mutex
	res := floodResult{Kinds: kinds}
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			const batch = 32
			ms := make([]ipv4.Message, batch)
			for k := range ms {
				ms[k].Buffers = make([][]byte, 1)
				ms[k].Addr = dst
			}
			sent, errs, next, sock := 0, 0, s*7919, s
			for {
				el := time.Since(start)
				if el >= dur {
					break
				}
				due := int(el.Seconds() * per)
				if sent >= due {
					time.Sleep(300 * time.Microsecond)
					continue
				}
				n := min(batch, due-sent)
				for k := range n {
					ms[k].Buffers[0] = msgs[next%len(msgs)]
					next++
				}
				c := conns[sock%len(conns)]
				sock += senders
				w, err := c.WriteBatch(ms[:n], 0)
				if err != nil {
					errs++
					time.Sleep(time.Millisecond)
				}
				sent += max(w, 0)
			}
			mu.Lock()
			res.Sent += sent
			res.Errors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// oneLine trims a child's output for messages.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " | ") }
