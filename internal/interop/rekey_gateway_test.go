package interop

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// wirePacket is one UDP/4500 packet tcpdump saw on the client's link:
// ESP with its SPI, or IKE with its initiator's SPI.
type wirePacket struct {
	at     time.Time
	out    bool   // sent by the client
	esp    bool   // ESP, else IKE
	spi    string // ESP SPI, or the IKE SA's SPIs (hex, "SPIi->SPIr")
	ikeMsg string // IKE: what tcpdump says of the message
}

// wireCapture runs tcpdump on the client's veth for UDP port 4500.
type wireCapture struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	pkts []wirePacket
	done chan struct{}
}

var (
	espLine = regexp.MustCompile(`^(\d+\.\d+) IP (\S+)\.\d+ > \S+: (?:\[[^\]]*\] )?UDP-encap: ESP\(spi=0x([0-9a-f]+),`)
	ikeLine = regexp.MustCompile(`^(\d+\.\d+) IP (\S+)\.\d+ > \S+: (?:\[[^\]]*\] )?NONESP-encap: isakmp 2\.0 msgid \S+ cookie ([0-9a-f]+->[0-9a-f]+): (.*)`)
)

func startWireCapture(t *testing.T, pair *testbed.Pair) *wireCapture {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("SKIP: tcpdump not installed")
	}
	c := &wireCapture{done: make(chan struct{})}
	c.cmd = pair.Client.Command(context.Background(), "tcpdump", "-l", "-n", "-tt", "-vv", "-i", pair.Link.AIf, "udp", "port", "4500")
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	t.Cleanup(func() { _ = c.cmd.Process.Kill(); <-c.done })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		var once sync.Once
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	client := pair.ClientIP.String()
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		var ipLine string
		for sc.Scan() {
			l := sc.Text()
			// With -vv the IP header is a line of its own, the UDP
			// payload the next one (indented), more detail after it.
			if !strings.HasPrefix(l, " ") {
				ipLine = l
				continue
			}
			f := strings.Fields(ipLine)
			if len(f) < 2 {
				continue
			}
			full := f[0] + " IP " + strings.TrimSpace(l)
			var p wirePacket
			var ts string
			if m := espLine.FindStringSubmatch(full); m != nil {
				ts, p.out, p.esp, p.spi = m[1], m[2] == client, true, m[3]
			} else if m := ikeLine.FindStringSubmatch(full); m != nil {
				ts, p.out, p.spi, p.ikeMsg = m[1], m[2] == client, m[3], m[4]
			} else {
				continue
			}
			sec, err := strconv.ParseFloat(ts, 64)
			if err != nil {
				continue
			}
			p.at = time.Unix(0, int64(sec*1e9))
			c.mu.Lock()
			c.pkts = append(c.pkts, p)
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

func (c *wireCapture) packets() []wirePacket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pkts)
}

// spisIn lists the SPIs of ESP packets (out: the client's) or IKE packets
// between from and to, in order of first use.
func spisIn(pkts []wirePacket, esp, out bool, from, to time.Time) []string {
	var spis []string
	for _, p := range pkts {
		if p.esp == esp && (!esp || p.out == out) && !p.at.Before(from) && p.at.Before(to) && !slices.Contains(spis, p.spi) {
			spis = append(spis, p.spi)
		}
	}
	return spis
}

// rekeyWindow is the time from one rekey (or the connect) to the next.
type rekeyWindow struct {
	reason     string // "connected", "child", "ike"
	start, end time.Time
}

// TestQcdvpnGatewayRekeys: `qcdvpn up` with a kernel TUN against `qcdvpn
// gateway` (data "tun") while a ping runs at 20/s, once with the client
// rekeying (Child SA every 10 s, IKE SA at 15 s) and once with the gateway
// rekeying on the same timers. Every window between two rekeys has its
// echo replies and loses nothing; tcpdump on the client's link shows a
// new ESP SPI each way after each Child SA rekey, the old one never again
// once the rekey is a second old, and after the IKE SA rekey IKE messages
// only on the new IKE SA.
func TestQcdvpnGatewayRekeys(t *testing.T) {
	requireEnv(t)
	timers := map[string]any{"ike_lifetime": "15s", "child_lifetime": "10s"}
	for _, initiator := range []string{"client", "gateway"} {
		t.Run(initiator, func(t *testing.T) {
			t.Parallel()
			const prop, esp = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
			pair := testbed.NewPair(t)
			o := qcdGatewayOpts{auth: "psk", ikeProposals: []string{prop}, espProposals: []string{esp}}
			if initiator == "gateway" {
				o.timers = timers
			}
			g := startQcdGateway(t, pair, o)
			e := &env{pair: pair, dir: t.TempDir()}
			p := profileFor(t, e, nil, prop)
			p["gateways"] = []string{g.addr.String()}
			p["esp_proposals"] = []string{esp}
			p["state_dir"] = filepath.Join(e.dir, "state")
			if initiator == "client" {
				p["timers"] = map[string]any{"retransmit_timeout": "500ms", "retransmit_tries": 3,
					"ike_lifetime": timers["ike_lifetime"], "child_lifetime": timers["child_lifetime"]}
			}
			wire := startWireCapture(t, pair)
			c := startClient(t, pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdrk0")
			c.waitEvent("connected", 20*time.Second)
			windows := []rekeyWindow{{reason: "connected", start: time.Now()}}
			pg := startPinger(t, pair.Client, hostBehind(pair), 50*time.Millisecond)

			// Two Child SA rekeys (at about 9-10 s and 18-20 s) and one IKE
			// SA rekey (13.5-15 s) within 23 s.
			deadline := time.After(23 * time.Second)
		loop:
			for {
				select {
				case ev, ok := <-c.events:
					if !ok {
						t.Fatalf("client exited during the rekeys: %v", c.err)
					}
					switch ev["type"] {
					case "rekeyed":
						now := time.Now()
						windows[len(windows)-1].end = now
						windows = append(windows, rekeyWindow{reason: fmt.Sprint(ev["reason"]), start: now})
						t.Logf("%s rekey at %s", ev["reason"], now.Sub(windows[0].start).Round(time.Millisecond))
					case "disconnected", "liveness_failed", "failover":
						t.Fatalf("tunnel dropped during the rekeys: %v", ev)
					}
				case <-deadline:
					break loop
				}
			}
			end := time.Now()
			windows[len(windows)-1].end = end
			pg.halt()

			var child, ikeN int
			for _, w := range windows[1:] {
				if w.reason == "ike" {
					ikeN++
				} else {
					child++
				}
			}
			if child < 2 || ikeN < 1 {
				t.Errorf("%s initiated %d Child SA and %d IKE SA rekeys in 23 s, want at least 2 and 1", initiator, child, ikeN)
			}

			// Echo replies per window: all answered but the last half second.
			pg.mu.Lock()
			for i, w := range windows {
				var sent, answered int
				var lost []string
				for seq, at := range pg.sentAt {
					if at.Before(w.start) || !at.Before(w.end) || at.After(end.Add(-500*time.Millisecond)) {
						continue
					}
					sent++
					if _, ok := pg.replies[seq&0xffff]; ok {
						answered++
					} else {
						lost = append(lost, fmt.Sprintf("seq %d at +%s", seq, at.Sub(w.start).Round(time.Millisecond)))
					}
				}
				t.Logf("window %d (after %s): %d echo requests, %d replies; lost %v", i, w.reason, sent, answered, lost)
				if sent == 0 || answered < sent {
					t.Errorf("window %d (after the %s): %d of %d echo requests answered", i, w.reason, answered, sent)
				}
			}
			pg.mu.Unlock()

			// The SAs on the wire: ESP SPIs each way, IKE SPIs.
			pkts := wire.packets()
			const grace = time.Second
			var outSPIs, inSPIs []string
			ikeSA := "" // the IKE SA in use, as "SPIi->SPIr"
			for _, p := range pkts {
				if !p.esp && strings.HasPrefix(p.ikeMsg, "child_sa  ikev2_auth") {
					ikeSA = p.spi
					break
				}
			}
			if ikeSA == "" {
				t.Fatal("tcpdump saw no IKE_AUTH")
			}
			for i, w := range windows {
				from := w.start.Add(grace)
				if i == 0 {
					from = w.start
				}
				// The test reads events a little late: the next rekey may
				// be on the wire just before w.end.
				to := w.end.Add(-grace)
				out, in := spisIn(pkts, true, true, from, to), spisIn(pkts, true, false, from, to)
				if len(out) != 1 || len(in) != 1 {
					t.Errorf("window %d (after the %s): ESP SPIs out %v in %v, want one each way", i, w.reason, out, in)
					continue
				}
				if w.reason == "child" && (slices.Contains(outSPIs, out[0]) || slices.Contains(inSPIs, in[0])) {
					t.Errorf("window %d: ESP SPIs out %s in %s were used before %v %v: the Child SA rekey did not replace them", i, out[0], in[0], outSPIs, inSPIs)
				}
				if w.reason == "ike" && (out[0] != outSPIs[len(outSPIs)-1] || in[0] != inSPIs[len(inSPIs)-1]) {
					t.Errorf("window %d: the IKE SA rekey changed the ESP SPIs", i)
				}
				if !slices.Contains(outSPIs, out[0]) {
					outSPIs, inSPIs = append(outSPIs, out[0]), append(inSPIs, in[0])
				}
				// The old SAs are gone: after the grace, no packet of an
				// earlier SA, ESP or IKE.
				for _, p := range pkts {
					if p.at.Before(from) || !p.at.Before(to) {
						continue
					}
					if p.esp && p.spi != out[0] && p.spi != in[0] {
						t.Errorf("window %d: ESP on SPI %s (out %v) %s after the %s rekey", i, p.spi, p.out, p.at.Sub(w.start).Round(time.Millisecond), w.reason)
					}
				}
				if w.reason == "child" {
					// The old pair is deleted by an INFORMATIONAL around
					// the rekey. Its responder sends on the new SA only
					// after that delete (RFC 7296 §2.8), so the switch of
					// both SPIs above shows it arrived.
					deleted := false
					for _, p := range pkts {
						deleted = deleted || (!p.esp && strings.Contains(p.ikeMsg, "inf2") && p.at.After(w.start.Add(-grace)) && p.at.Before(from))
					}
					if !deleted {
						t.Errorf("window %d: no INFORMATIONAL (the old Child SA's delete) within %s of the rekey", i, grace)
					}
				}
				if w.reason == "ike" {
					// The new IKE SA is the first other one on the wire
					// around the event (which the test reads a little late).
					next := ""
					for _, p := range pkts {
						if !p.esp && p.spi != ikeSA && !strings.HasSuffix(p.spi, "->0000000000000000") && !p.at.Before(w.start.Add(-grace)) {
							next = p.spi
							break
						}
					}
					if next == "" {
						t.Errorf("window %d: no IKE message on a new IKE SA after the IKE SA rekey", i)
					}
					for _, p := range pkts {
						if !p.esp && p.spi == ikeSA && !p.at.Before(from) {
							t.Errorf("IKE message on the old IKE SA %s %s after its rekey: %s", ikeSA, p.at.Sub(w.start).Round(time.Millisecond), p.ikeMsg)
						}
					}
					t.Logf("IKE SA %s rekeyed to %s", ikeSA, next)
					ikeSA = next
				}
			}
			t.Logf("ESP SPIs out %v in %v", outSPIs, inSPIs)
			sent, answered := pg.counts()
			t.Logf("%d echo requests, %d replies", sent, answered)
			if err := c.stop(); err != nil {
				t.Fatalf("qcdvpn up exit: %v", err)
			}
		})
	}
}

// TestSwanClientGatewayRekeys: strongSwan as the client of `qcdvpn
// gateway` (data "tun") while a ping runs at 20/s, once with strongSwan
// rekeying (Child SA every 10 s, IKE SA at 15 s) and once with the gateway
// rekeying on the same timers: strongSwan accepts every rekey (its own
// checks of the traffic selectors and keys), the ping loses nothing, and
// at the end strongSwan has one IKE SA with one installed Child SA, on
// SPIs other than the first ones.
func TestSwanClientGatewayRekeys(t *testing.T) {
	requireEnv(t)
	const prop, esp = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
	for _, initiator := range []string{"strongswan", "gateway"} {
		t.Run(initiator, func(t *testing.T) {
			t.Parallel()
			pair := testbed.NewPair(t)
			o := qcdGatewayOpts{auth: "psk", ikeProposals: []string{prop}, espProposals: []string{esp}}
			if initiator == "gateway" {
				o.timers = map[string]any{"ike_lifetime": "15s", "child_lifetime": "10s"}
			}
			g := startQcdGateway(t, pair, o)
			cl := swanClientFor(t, g, prop, esp)
			if initiator == "strongswan" {
				cl.ConnExtras = "rekey_time = 15s\nover_time = 5s\nrand_time = 1s"
				cl.ChildExtras = "rekey_time = 10s\nlife_time = 20s\nrand_time = 1s"
			} else {
				// strongSwan leaves rekeying to the gateway.
				cl.ConnExtras = "rekey_time = 0\nreauth_time = 0"
				cl.ChildExtras = "rekey_time = 0\nlife_time = 1h"
			}
			swan := testbed.StartStrongSwan(t, pair.Client, cl.Config())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			first, err := swan.Up(ctx, cl)
			if err != nil {
				t.Fatalf("strongSwan client: %v", err)
			}
			ch0, _ := first.Child("net")
			pg := startPinger(t, pair.Client, hostBehind(pair), 50*time.Millisecond)
			time.Sleep(23 * time.Second)
			cutoff := time.Now().Add(-500 * time.Millisecond)
			// Let the last rekey's delete settle before listing.
			pg.halt()
			sent, answered := pg.counts()
			lost := pg.lost(cutoff)
			t.Logf("%d echo requests, %d replies, %d lost", sent, answered, len(lost))
			if len(lost) > 0 {
				t.Errorf("%d echo requests lost (seq %v)", len(lost), lost[:min(len(lost), 20)])
			}
			sas, err := swan.ListSAs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(sas) != 1 {
				t.Fatalf("strongSwan has %d IKE SAs (%+v), want one: the old one was not deleted", len(sas), sas)
			}
			// One installed Child SA; a replaced one the peer deleted
			// stays listed as DELETED for charon's delete_rekeyed_delay
			// (5 s), one still REKEYED was never deleted.
			var ch testbed.ChildSA
			installed := 0
			for _, c := range sas[0].Children {
				switch c.State {
				case "INSTALLED":
					ch = c
					installed++
				case "DELETED":
				default:
					t.Errorf("strongSwan Child SA %s/%s is %s, want it deleted", c.SPIIn, c.SPIOut, c.State)
				}
			}
			if installed != 1 {
				t.Fatalf("strongSwan has %d installed Child SAs, want 1: %+v", installed, sas[0].Children)
			}
			if ch.State != "INSTALLED" || ch.SPIIn == ch0.SPIIn || ch.SPIOut == ch0.SPIOut || ch.PacketsIn == 0 || ch.PacketsOut == 0 {
				t.Errorf("strongSwan Child SA %+v, first one %s/%s", ch, ch0.SPIIn, ch0.SPIOut)
			}
			if sas[0].InitiatorSPI == first.InitiatorSPI {
				t.Errorf("IKE SA %s not rekeyed", first.InitiatorSPI)
			}
			log := swan.Log()
			// Two Child SA and one IKE SA rekey, each a CREATE_CHILD_SA.
			want := "parsed CREATE_CHILD_SA request"
			if initiator == "strongswan" {
				want = "generating CREATE_CHILD_SA request"
			}
			if n := strings.Count(log, want); n < 3 {
				t.Errorf("strongSwan's log has %d times %q, want at least 3", n, want)
			}
			t.Logf("strongSwan: IKE SA %s -> %s, Child SA %s/%s -> %s/%s", first.InitiatorSPI, sas[0].InitiatorSPI, ch0.SPIIn, ch0.SPIOut, ch.SPIIn, ch.SPIOut)
			for _, bad := range []string{"unacceptable", "failed", "TS_UNACCEPTABLE", "INVALID_SPI"} {
				if l := logLine(log, bad); l != "" {
					t.Errorf("strongSwan log: %s", l)
				}
			}
		})
	}
}
