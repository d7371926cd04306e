package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// qcdvpnBin is the CLI built once for all tests (empty when not built).
var qcdvpnBin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() == 0 {
			dir, err := os.MkdirTemp("", "qcdvpn-interop-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			qcdvpnBin = filepath.Join(dir, "qcdvpn")
			out, err := exec.Command("go", "build", "-race", "-o", qcdvpnBin, "github.com/qcdvpn/qcdvpn/cmd/qcdvpn").CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "building qcdvpn: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// env is one client namespace and one gateway namespace with strongSwan.
type env struct {
	pair    *testbed.Pair
	swan    *testbed.StrongSwan
	swanCfg testbed.SwanConfig
	dir     string
}

// client is a running qcdvpn command: `qcdvpn up` in the client
// namespace, or `qcdvpn gateway` in a gateway namespace (both print one
// JSON event per line on stdout).
type client struct {
	t      *testing.T
	name   string // "qcdvpn up", "qcdvpn gateway"
	cmd    *exec.Cmd
	events chan map[string]any
	stderr *strings.Builder
	mu     sync.Mutex
	exited chan struct{}
	err    error
}

func requireEnv(t *testing.T) {
	t.Helper()
	testbed.RequireRoot(t)
	testbed.RequireStrongSwan(t)
	if qcdvpnBin == "" {
		t.Skip("SKIP: qcdvpn binary not built (needs root)")
	}
}

// writeProfile writes a profile JSON document into dir.
func writeProfile(t *testing.T, dir string, p map[string]any) string {
	t.Helper()
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "profile.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startClient runs `qcdvpn up -p profile --events json` in ns; extra
// flags come last, so they override the defaults (e.g. "--log-level",
// "info").
func startClient(t *testing.T, ns *testbed.NS, profile string, extra ...string) *client {
	t.Helper()
	args := append([]string{"up", "-p", profile, "--events", "json", "--log-level", "debug"}, extra...)
	return startQcdvpn(t, ns, args...)
}

// startQcdvpn runs `qcdvpn ARGS...` in ns, reading its stdout as JSON
// events; cleanup kills it (SIGKILL) and, if the test failed, logs its
// stderr.
func startQcdvpn(t *testing.T, ns *testbed.NS, args ...string) *client {
	t.Helper()
	return startBinary(t, ns, qcdvpnBin, args...)
}

// startBinary is startQcdvpn with another build of qcdvpn.
func startBinary(t *testing.T, ns *testbed.NS, bin string, args ...string) *client {
	t.Helper()
	cmd := ns.Command(context.Background(), bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, name: "qcdvpn " + args[0], cmd: cmd, events: make(chan map[string]any, 100), stderr: &strings.Builder{}, exited: make(chan struct{})}
	cmd.Stderr = syncWriter{&c.mu, c.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				c.mu.Lock()
				fmt.Fprintf(c.stderr, "NON-JSON STDOUT LINE: %s\n", sc.Text())
				c.mu.Unlock()
				continue
			}
			c.events <- ev
		}
		c.err = cmd.Wait()
		close(c.events)
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exited
		// The binary is built with -race; a killed process has no exit
		// status to tell of a race, its stderr does.
		if strings.Contains(c.Stderr(), "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race", c.name)
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", c.name, c.Stderr())
		}
	})
	return c
}

type syncWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (c *client) Stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// waitEvent returns the next event of type typ, failing on timeout or exit.
func (c *client) waitEvent(typ string, timeout time.Duration) map[string]any {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatalf("%s exited (%v) before %q; stderr:\n%s", c.name, c.err, typ, c.Stderr())
			}
			if ev["type"] == typ {
				return ev
			}
		case <-deadline:
			c.t.Fatalf("%s: no %q event within %s; stderr:\n%s", c.name, typ, timeout, c.Stderr())
		}
	}
}

// eventsUntil returns every event up to and including the next one of
// type typ, in order, failing on timeout or exit.
func (c *client) eventsUntil(typ string, timeout time.Duration) []map[string]any {
	c.t.Helper()
	deadline := time.After(timeout)
	var seen []map[string]any
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatalf("%s exited (%v) before %q; events so far %v; stderr:\n%s", c.name, c.err, typ, types(seen), c.Stderr())
			}
			seen = append(seen, ev)
			if ev["type"] == typ {
				return seen
			}
		case <-deadline:
			c.t.Fatalf("%s: no %q event within %s; events so far %v; stderr:\n%s", c.name, typ, timeout, types(seen), c.Stderr())
		}
	}
}

// pending returns the events already received and not yet read, without
// waiting.
func (c *client) pending() []map[string]any {
	var out []map[string]any
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return out
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

// types lists the types of evs, for messages.
func types(evs []map[string]any) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = fmt.Sprint(ev["type"])
	}
	return out
}

// wait returns the exit error once the process ends.
func (c *client) wait(timeout time.Duration) (error, bool) {
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				<-c.exited
				return c.err, true
			}
		case <-time.After(timeout):
			return nil, false
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (c *client) stop() error {
	_ = c.cmd.Process.Signal(os.Interrupt)
	err, ok := c.wait(10 * time.Second)
	if !ok {
		return fmt.Errorf("%s did not exit within 10 s of SIGINT", c.name)
	}
	return err
}
