package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// iperf runs a one-off iperf3 server on the gateway side and a client in
// the client namespace for secs seconds; reverse makes the gateway send.
// It returns the received throughput in bit/s.
func iperf(t *testing.T, e *env, server netip.Addr, secs int, reverse bool) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+20)*time.Second)
	defer cancel()
	port := fmt.Sprint(5201 + time.Now().Nanosecond()%500)
	srv := e.pair.Gateway.Command(ctx, "iperf3", "-s", "-1", "-B", server.String(), "-p", port)
	if err := srv.Start(); err != nil {
		t.Fatalf("iperf3 server: %v", err)
	}
	defer srv.Wait()
	defer srv.Process.Kill()
	args := []string{"-c", server.String(), "-p", port, "-t", fmt.Sprint(secs), "-J"}
	if reverse {
		args = append(args, "-R")
	}
	var out []byte
	var err error
	for try := 0; try < 30; try++ { // until the server listens
		out, err = e.pair.Client.Exec(ctx, "iperf3", args...)
		if !strings.Contains(string(out), "Connection refused") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("iperf3 %v: %v\n%s", args, err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
				Bytes         float64 `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Error != "" {
		t.Fatalf("iperf3 output: %v %s\n%s", err, res.Error, out)
	}
	return res.End.SumReceived.BitsPerSecond
}

// TestInteropDataPlane carries ping and iperf3 TCP both ways through a
// kernel TUN and strongSwan for each ESP suite, then checks the client
// removed its interface and routes on exit.
func TestInteropDataPlane(t *testing.T) {
	requireEnv(t)
	for _, suite := range []string{"aes256gcm16", "chacha20poly1305", "aes256-sha256"} {
		t.Run(suite, func(t *testing.T) {
			t.Parallel()
			const ikeProp = "aes256gcm16-prfsha256-x25519"
			e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: ikeProp, espProposal: suite})
			p := profileFor(t, e, nil, ikeProp)
			p["esp_proposals"] = []string{suite}
			c := startClient(t, e.pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdt0")
			c.waitEvent("connected", 20*time.Second)
			behind := e.pair.ProtectedPrefix().Addr().Next()

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.pair.Client.Ping(ctx, behind); err != nil {
				t.Fatalf("ping %s through the tunnel: %v", behind, err)
			}
			up := iperf(t, e, behind, 2, false)
			down := iperf(t, e, behind, 2, true)
			t.Logf("%s: iperf3 client->gateway %.0f Mbit/s, gateway->client %.0f Mbit/s", suite, up/1e6, down/1e6)
			if up <= 0 || down <= 0 {
				t.Errorf("no throughput: up %.0f down %.0f", up, down)
			}

			sa, err := e.swan.WaitSA(ctx, "rw", nil)
			if err != nil || len(sa.Children) != 1 {
				t.Fatalf("gateway SA: %v %+v", err, sa)
			}
			ch := sa.Children[0]
			if ch.PacketsIn < 100 || ch.PacketsOut < 100 {
				t.Errorf("strongSwan child counters in %d out %d: traffic did not use the SA", ch.PacketsIn, ch.PacketsOut)
			}

			if err := c.stop(); err != nil {
				t.Fatalf("exit: %v", err)
			}
			out, _ := e.pair.Client.Exec(context.Background(), "ip", "link", "show")
			if strings.Contains(string(out), "qcdt0") {
				t.Errorf("TUN still exists after exit:\n%s", out)
			}
			rules, _ := e.pair.Client.Exec(context.Background(), "ip", "rule", "show")
			if strings.Contains(string(rules), "fwmark") {
				t.Errorf("policy rules left after exit:\n%s", rules)
			}
		})
	}
}

// TestInteropNetstack: rootless mode, an in-process TCP exchange through
// strongSwan: qcdvpn forwards a local port through its netstack tunnel to
// an echo server behind the gateway.
func TestInteropNetstack(t *testing.T) {
	requireEnv(t)
	const ikeProp = "aes256gcm16-prfsha256-x25519"
	e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: ikeProp})
	behind := e.pair.ProtectedPrefix().Addr().Next()
	ln, err := e.pair.Gateway.Listen("tcp", netip.AddrPortFrom(behind, 7007).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(conn, conn); conn.Close() }()
		}
	}()
	p := profileFor(t, e, nil, ikeProp)
	c := startClient(t, e.pair.Client, writeProfile(t, e.dir, p), "--netstack", "--forward", "127.0.0.1:17007="+netip.AddrPortFrom(behind, 7007).String())
	c.waitEvent("connected", 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var conn net.Conn
	for {
		conn, err = e.pair.Client.DialContext(ctx, "tcp", "127.0.0.1:17007")
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := strings.Repeat("through the tunnel ", 1000)
	go conn.Write([]byte(msg))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo through netstack tunnel: %v", err)
	}
	out, _ := e.pair.Client.Exec(ctx, "ip", "link", "show")
	if strings.Contains(string(out), "tun") || strings.Contains(string(out), "qcd") {
		t.Errorf("netstack mode created an interface:\n%s", out)
	}
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
}
