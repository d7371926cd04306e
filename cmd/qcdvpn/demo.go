package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/echotraffic"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// echoTarget is the UDP echo service behind the demo gateways.
var echoTarget = netip.MustParseAddrPort("10.200.0.1:7")

// demoOptions select one recovery drill.
type demoOptions struct {
	// Restart brings the crashed primary back at once, without state, so
	// that it answers with QCD tokens; otherwise it stays dead
	// (blackholed) and liveness checks find out.
	Restart bool
	QCD     bool
	// NoResumption turns tickets off in the client: failover by a full
	// exchange, to compare.
	NoResumption bool
	// FastLiveness overrides the client's timers.fast_liveness (a Go
	// duration): tests on a loaded machine, where restarting a gateway
	// can take seconds, keep liveness from ending the SA first.
	FastLiveness string
	Rate         int // echo packets per second
	Steady       time.Duration
	After        time.Duration // how long traffic runs after the crash
	Log          *slog.Logger
	Out          io.Writer // progress lines; nil: none
}

// demoResult is the drill's timeline.
type demoResult struct {
	Detection  time.Duration // crash (or restart) → qcd_verified / liveness_failed
	DetectedBy string
	FailoverTo string
	Resumed    bool
	Reconnect  time.Duration // connecting → connected with the backup
	Outage     time.Duration // crash (or restart) → first echo answered through the new SA
	Sent, Lost int
	Events     []sdk.Event
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", "Usage: qcdvpn demo [--blackhole] [--no-qcd]\n\nStarts a primary and a backup gateway on loopback, connects a client (netstack, no root), sends steady traffic, crashes the primary with kill -9 and prints how the client recovered.\n\nExample:\n  qcdvpn demo --no-qcd\n\nFlags:\n", stderr)
	blackhole := fs.Bool("blackhole", false, "leave the crashed primary dead instead of restarting it without state")
	noQCD := fs.Bool("no-qcd", false, "turn QCD off in the client (liveness checks only), to compare")
	logLevel := fs.String("log-level", "error", "log level on stderr")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	level, ok := parseLevel("demo", *logLevel, stderr)
	if !ok {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := runDemo(ctx, demoOptions{Restart: !*blackhole, QCD: !*noQCD, Rate: 50, Steady: 2 * time.Second, After: 8 * time.Second,
		Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), Out: stdout})
	if err != nil {
		fmt.Fprintf(stderr, "qcdvpn demo: %s\n", oneLine(err))
		return 1
	}
	printTimeline(stdout, res, !*blackhole)
	return 0
}

func printTimeline(w io.Writer, r *demoResult, restart bool) {
	from := "crash"
	if restart {
		from = "restart"
	}
	how := "full exchange"
	if r.Resumed {
		how = "resumed with a ticket"
	}
	fmt.Fprintf(w, "\ntimeline\n")
	fmt.Fprintf(w, "  detection   %6d ms after the %s (%s)\n", r.Detection.Milliseconds(), from, r.DetectedBy)
	fmt.Fprintf(w, "  failover    to %s, %s\n", r.FailoverTo, how)
	fmt.Fprintf(w, "  outage      %6d ms from the %s to the first answered packet\n", r.Outage.Milliseconds(), from)
	fmt.Fprintf(w, "  packets     %d sent, %d lost\n", r.Sent, r.Lost)
}

// demoGateway is one `qcdvpn gateway` child process.
type demoGateway struct {
	name, cfgPath string
	addr          netip.AddrPort
	cmd           *exec.Cmd
	log           *slog.Logger
}

func (g *demoGateway) start(ctx context.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe, "gateway", "-c", g.cfgPath, "--events", "json", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "QCDVPN_AS_CLI=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	g.cmd = cmd
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"type":"listening"`) {
				once.Do(func() { close(ready) })
			}
			g.log.Debug("gateway event", "gateway", g.name, "event", sc.Text())
		}
	}()
	select {
	case <-ready:
		return nil
	case <-time.After(10 * time.Second):
		g.kill()
		return fmt.Errorf("gateway %s did not start", g.name)
	case <-ctx.Done():
		g.kill()
		return ctx.Err()
	}
}

// kill is the crash: SIGKILL, no Delete, no cleanup.
func (g *demoGateway) kill() {
	if g.cmd != nil && g.cmd.Process != nil {
		_ = g.cmd.Process.Kill()
		_ = g.cmd.Wait()
		g.cmd = nil
	}
}

// stop is the graceful end (SIGTERM: every IKE SA deleted).
func (g *demoGateway) stop() {
	if g.cmd != nil && g.cmd.Process != nil {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = g.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = g.cmd.Process.Kill()
			<-done
		}
		g.cmd = nil
	}
}

// demoAddrs picks two loopback addresses unlikely to be in use.
func demoAddrs() (netip.AddrPort, netip.AddrPort) {
	var b [2]byte
	_, _ = rand.Read(b[:])
	x, y := 10+b[0]%240, 10+b[1]%240
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, x, y, 1}), 4500),
		netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, x, y, 2}), 4500)
}

// runDemo starts two gateways sharing a ticket key and a QCD secret,
// connects a client to the primary, crashes the primary and measures.
func runDemo(ctx context.Context, o demoOptions) (*demoResult, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	say := func(format string, args ...any) {
		if o.Out != nil {
			fmt.Fprintf(o.Out, format+"\n", args...)
		}
	}
	dir, err := os.MkdirTemp("", "qcdvpn-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	psk := hex.EncodeToString(key[:8])
	ticketKey := make([]byte, 32)
	_, _ = rand.Read(ticketKey)
	pa, ba := demoAddrs()
	gws := []*demoGateway{{name: "primary", addr: pa, log: log}, {name: "backup", addr: ba, log: log}}
	for _, g := range gws {
		cfg := map[string]any{
			"listen": []string{g.addr.String()}, "id": "gw.demo",
			"auth": map[string]any{"method": "psk", "psk": "0x" + psk},
			"pool": []string{"10.100.0.0/24"}, "local_ts": []string{"10.200.0.0/24"},
			"ike_proposals": []string{"aes256gcm16-prfsha256-x25519"}, "esp_proposals": []string{"aes256gcm16"},
			"qcd":       map[string]any{"secret_file": filepath.Join(dir, "qcd.secret")},
			"tickets":   map[string]any{"keys": []any{map[string]any{"id": "k1", "key_hex": hex.EncodeToString(ticketKey)}}, "lifetime": "1h"},
			"data":      "netstack",
			"state_dir": filepath.Join(dir, g.name),
		}
		b, _ := json.Marshal(cfg)
		g.cfgPath = filepath.Join(dir, g.name+".json")
		if err := os.WriteFile(g.cfgPath, b, 0o600); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, g := range gws {
			g.kill()
		}
	}()
	for _, g := range gws {
		if err := g.start(ctx); err != nil {
			return nil, err
		}
		say("gateway %-7s listening on %s (pid %d)", g.name, g.addr, g.cmd.Process.Pid)
	}
	profile := map[string]any{
		"name": "demo", "gateways": []string{pa.String(), ba.String()},
		"remote_id": "gw.demo", "local_id": "client.demo",
		"auth":          map[string]any{"method": "psk", "psk": "0x" + psk},
		"ike_proposals": []string{"aes256gcm16-prfsha256-x25519"}, "esp_proposals": []string{"aes256gcm16"},
		"traffic":    map[string]any{"include": []string{"10.200.0.0/24"}},
		"qcd":        map[string]any{"enabled": o.QCD},
		"resumption": map[string]any{"enabled": !o.NoResumption},
		"timers":     map[string]any{"fast_liveness": o.FastLiveness},
		"state_dir":  filepath.Join(dir, "client"),
	}
	pb, _ := json.Marshal(profile)
	p, err := sdk.ParseProfile(pb)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var events []sdk.Event
	evCh := make(chan sdk.Event, 256)
	c, err := sdk.NewClient(p, sdk.Options{Logger: log, DataPlane: sdk.DataPlaneNetstack, OnEvent: func(e sdk.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
		select {
		case evCh <- e:
		default:
		}
	}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := c.Connect(cctx); err != nil {
		return nil, err
	}
	go func() { _ = c.Wait(ctx) }()
	say("client connected to %s (%s)", pa.Addr(), "full exchange")

	tr := echotraffic.Start(c.Net, echoTarget, o.Rate)
	defer tr.Stop()
	select {
	case <-time.After(o.Steady):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if tr.Answered() == 0 {
		return nil, errors.New("no echo answered through the tunnel before the crash")
	}
	crash := time.Now()
	gws[0].kill()
	say("primary killed (kill -9) after %d packets", tr.Sent())
	mark := crash
	if o.Restart {
		if err := gws[0].start(ctx); err != nil {
			return nil, err
		}
		mark = time.Now()
		say("primary restarted without state after %d ms", mark.Sub(crash).Milliseconds())
	}
	res := &demoResult{}
	deadline := time.After(o.After)
wait:
	for {
		select {
		case e := <-evCh:
			if e.Time.Before(crash) {
				continue // the first connect
			}
			switch e.Type {
			case sdk.EventQCDVerified, sdk.EventLivenessFailed:
				if res.DetectedBy == "" {
					res.DetectedBy = string(e.Type)
					res.Detection = e.Time.Sub(mark)
					say("%s after %d ms", e.Type, res.Detection.Milliseconds())
				}
			case sdk.EventFailover:
				if res.FailoverTo == "" {
					res.FailoverTo = e.To
					say("failover from %s to %s (%s)", e.From, e.To, e.Reason)
				}
			case sdk.EventConnected:
				res.Resumed, res.Reconnect = e.Resumed, e.Elapsed
				if res.FailoverTo == "" {
					res.FailoverTo = e.Gateway
				}
				say("connected to %s, resumed=%v, in %.1f ms", e.Gateway, e.Resumed, float64(e.Elapsed.Microseconds())/1000)
			}
		case <-deadline:
			break wait
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	tr.Stop()
	first := tr.FirstAnsweredAfter(crash)
	if first.IsZero() {
		return nil, errors.New("traffic did not recover after the crash")
	}
	res.Outage = first.Sub(mark)
	res.Sent, res.Lost = tr.Sent(), tr.Sent()-tr.Answered()
	mu.Lock()
	res.Events = append(res.Events, events...)
	mu.Unlock()
	for _, g := range gws {
		g.stop()
	}
	say("gateways stopped")
	return res, nil
}
