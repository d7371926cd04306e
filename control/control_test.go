package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// fakeBackend is an in-memory Backend that records what it is asked.
type fakeBackend struct {
	mu         sync.Mutex
	st         Status
	profiles   [][]byte
	connectErr error
	disconnect int
	subs       []chan sdk.Event
	shutdown   chan struct{}
	once       sync.Once
}

func newFake() *fakeBackend {
	return &fakeBackend{st: Status{State: StateConnected, Profile: "corp", Gateway: "192.0.2.1", VirtualIP: "10.100.0.2",
		Gateways: []GatewayStatus{{Address: "192.0.2.1", Active: true}, {Address: "vpn2.example:4500"}},
		DNS:      []string{"10.200.0.53"}, ConnectedSince: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
		IKESuite: "aes256gcm16-prfsha256-x25519", ESPSuite: "aes256gcm16", IKESPIi: "0102030405060708", IKESPIr: "1112131415161718",
		QCD: true, Resumption: true, Stats: sdk.Stats{PacketsIn: 7, BytesOut: 99}},
		shutdown: make(chan struct{})}
}

func (f *fakeBackend) Status() Status { f.mu.Lock(); defer f.mu.Unlock(); return f.st }
func (f *fakeBackend) Connect(ctx context.Context, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.profiles = append(f.profiles, append([]byte(nil), p...))
	return f.connectErr
}
func (f *fakeBackend) Disconnect(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disconnect++
	return nil
}
func (f *fakeBackend) Subscribe() (<-chan sdk.Event, func()) {
	ch := make(chan sdk.Event, 16)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	return ch, func() {}
}
func (f *fakeBackend) publish(e sdk.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		ch <- e
	}
}
func (f *fakeBackend) nsubs() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.subs) }
func (f *fakeBackend) Shutdown()  { f.once.Do(func() { close(f.shutdown) }) }

// serve starts a server on a fresh path with b until the test ends.
func serve(t *testing.T, b Backend, opts ServerOptions) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qcdvpn", "control.sock")
	s, err := Listen(path, opts)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), b) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func dialT(t *testing.T, path string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientServer(t *testing.T) {
	f := newFake()
	s := serve(t, f, ServerOptions{})
	c := dialT(t, s.Path())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if !reflect.DeepEqual(st, f.Status()) {
		t.Errorf("Status:\n got %+v\nwant %+v", st, f.Status())
	}
	prof := `{"name":"x","gateways":["192.0.2.9"]}`
	if err := c.Connect(ctx, []byte(prof)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if err := c.Connect(ctx, nil); err != nil {
		t.Fatalf("Connect(nil): %v", err)
	}
	f.mu.Lock()
	f.connectErr = errors.New("profile: gateways[0]: bad\nsecond line")
	f.mu.Unlock()
	err = c.Connect(ctx, []byte(prof))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "profile: gateways[0]: bad; second line" {
		t.Errorf("Connect error = %v, want the backend's error on one line", err)
	}
	f.mu.Lock()
	if len(f.profiles) != 3 || string(f.profiles[0]) != prof || len(f.profiles[1]) != 0 {
		t.Errorf("backend got profiles %q", f.profiles)
	}
	f.mu.Unlock()
	if err := c.Disconnect(ctx); err != nil || f.disconnect != 1 {
		t.Errorf("Disconnect: %v (%d calls)", err, f.disconnect)
	}

	// Events: what the backend publishes arrives decoded, in order.
	ectx, ecancel := context.WithCancel(ctx)
	evs, err := c.Events(ectx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	for f.nsubs() == 0 {
		time.Sleep(time.Millisecond)
	}
	want := []sdk.Event{
		{Time: time.Date(2026, 12, 1, 9, 0, 0, 5, time.UTC), Type: sdk.EventConnected, Gateway: "192.0.2.1", VirtualIP: "10.100.0.2",
			DNS: []string{"10.200.0.53"}, IKESuite: "a", ESPSuite: "b", IKESPIi: "01", IKESPIr: "02", Resumed: true, Elapsed: 42500 * time.Microsecond},
		{Time: time.Date(2026, 12, 1, 9, 0, 1, 0, time.UTC), Type: sdk.EventFailover, From: "192.0.2.1", To: "192.0.2.2", Gateway: "192.0.2.2", Reason: "qcd_verified"},
		{Time: time.Date(2026, 12, 1, 9, 0, 2, 0, time.UTC), Type: sdk.EventStats, Stats: &sdk.Stats{PacketsOut: 3, DropAuth: 1}},
		{Time: time.Date(2026, 12, 1, 9, 0, 3, 0, time.UTC), Type: sdk.EventQCDVerified, Source: "192.0.2.1:4500", SinceInbound: 1500 * time.Microsecond},
	}
	for _, e := range want {
		f.publish(e)
	}
	for i, w := range want {
		select {
		case got := <-evs:
			if !reflect.DeepEqual(got, w) {
				t.Errorf("event %d:\n got %+v\nwant %+v", i, got, w)
			}
		case <-ctx.Done():
			t.Fatal("events did not arrive")
		}
	}
	ecancel()
	for range evs { // closes once ctx ends
	}

	// Down: the backend shuts down; Down returns when the server goes.
	go func() { <-f.shutdown; s.Close() }()
	if err := c.Down(ctx); err != nil {
		t.Errorf("Down: %v", err)
	}
	select {
	case <-f.shutdown:
	default:
		t.Error("Down did not shut the backend down")
	}
}

func TestBadRequestsOverSocket(t *testing.T) {
	s := serve(t, newFake(), ServerOptions{})
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	ask := func(line string) Reply {
		t.Helper()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		l, err := readLine(r, maxReplySize)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		var rep Reply
		if err := json.Unmarshal(l, &rep); err != nil {
			t.Fatalf("%s: reply %q: %v", line, l, err)
		}
		return rep
	}
	for _, c := range []struct{ line, want string }{
		{`{"cmd":"reboot"}`, `request: cmd: "reboot" is not one of status, connect, disconnect, down, events`},
		{`not json`, "request: invalid JSON"},
		{`{"cmd":"status","extra":1}`, `request: unknown field "extra"`},
		{`{"cmd":"status","profile":{}}`, `request: profile: only allowed with "connect"`},
	} {
		if rep := ask(c.line); rep.OK || rep.Error != c.want {
			t.Errorf("%s: got %+v, want error %q", c.line, rep, c.want)
		}
	}
	// The connection stays usable after a bad request.
	if rep := ask(`{"cmd":"status"}`); !rep.OK || rep.Status == nil || rep.Status.State != StateConnected {
		t.Errorf("status after errors: %+v", rep)
	}
	// An oversized line is refused and the connection closed.
	big := `{"cmd":"connect","profile":{"name":"` + strings.Repeat("x", MaxRequestSize) + `"}}`
	if rep := ask(big); rep.OK || !strings.Contains(rep.Error, "request too large") {
		t.Errorf("oversized: %+v", rep)
	}
}

func TestDecodeRequest(t *testing.T) {
	for _, c := range []struct {
		in, cmd, profile, err string
	}{
		{in: `{"cmd":"status"}`, cmd: "status"},
		{in: ` {"cmd":"events"} `, cmd: "events"},
		{in: `{"cmd":"connect","profile":{"name":"a"}}`, cmd: "connect", profile: `{"name":"a"}`},
		{in: `{"profile":null,"cmd":"connect"}`, cmd: "connect"},
		{in: `{"cmd":"down"}`, cmd: "down"},
		{in: `{}`, err: "request: cmd: required"},
		{in: `[]`, err: "request: want a JSON object"},
		{in: `{"cmd":1}`, err: "request: cmd: want a string"},
		{in: `{"cmd":"status","cmd":"down"}`, err: `request: duplicate field "cmd"`},
		{in: `{"Cmd":"status"}`, err: `request: unknown field "Cmd"`},
		{in: `{"cmd":"connect","profile":"x"}`, err: "request: profile: want a JSON object"},
		{in: `{"cmd":"status"}{}`, err: "request: data after the JSON object"},
		{in: `{"cmd":"status"`, err: "request: invalid JSON"},
		{in: `{"cmd":""}`, err: `request: cmd: "" is not one of status, connect, disconnect, down, events`},
	} {
		req, err := DecodeRequest([]byte(c.in))
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%s: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || req.Cmd != c.cmd || string(req.Profile) != c.profile {
			t.Errorf("%s: got %+v %v", c.in, req, err)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{`{"cmd":"status"}`, `{"cmd":"connect","profile":{"name":"a","auth":{"psk":"s"}}}`, `{"cmd":"x"}`, `{`, `[]`, `{"cmd":"status","cmd":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeRequest(b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		switch req.Cmd {
		case CmdStatus, CmdConnect, CmdDisconnect, CmdDown, CmdEvents:
		default:
			t.Fatalf("accepted cmd %q", req.Cmd)
		}
		if req.Profile != nil && (req.Cmd != CmdConnect || !json.Valid(req.Profile)) {
			t.Fatalf("accepted profile %q with %q", req.Profile, req.Cmd)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"type":"connected","time":"2026-12-01T09:00:00Z","elapsed_ms":1.5,"stats":{"packets_in":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvent(b)
		if err == nil && e.Type == "" {
			t.Fatal("accepted an event without type")
		}
	})
}

func TestListenRefusesLiveRemovesStale(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "qcdvpn")
	path := filepath.Join(dir, "control.sock")
	s, err := Listen(path, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(context.Background(), newFake())
	if _, err := Listen(path, ServerOptions{}); !errors.Is(err, ErrInUse) {
		t.Errorf("second Listen: %v, want ErrInUse", err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v %v, want 0700", fi.Mode(), err)
	}
	fi, err = os.Lstat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v %v, want a 0600 socket", fi.Mode(), err)
	}
	s.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}
	// A stale socket (its server died without removing it) is replaced.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	s2, err := Listen(path, ServerOptions{})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	s2.Close()
	// A file that is not a socket is left alone.
	os.WriteFile(path, []byte("x"), 0o600)
	if _, err := Listen(path, ServerOptions{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a file: %v", err)
	}
}

func TestDialNothingRunning(t *testing.T) {
	_, err := Dial(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if err == nil || !strings.Contains(err.Error(), "no qcdvpn is running") {
		t.Errorf("Dial: %v", err)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("QCDVPN_CONTROL", "/x/y.sock")
	if p := DefaultPath(); p != "/x/y.sock" {
		t.Errorf("with QCDVPN_CONTROL: %s", p)
	}
	t.Setenv("QCDVPN_CONTROL", "")
	p := DefaultPath()
	if os.Geteuid() == 0 && p != "/run/qcdvpn/control.sock" {
		t.Errorf("root: %s", p)
	}
	if !strings.HasSuffix(p, "control.sock") {
		t.Errorf("DefaultPath %s", p)
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	e := sdk.Event{Time: time.Date(2026, 12, 1, 9, 0, 0, 123456789, time.UTC), Type: sdk.EventDisconnected, Gateway: "192.0.2.1", Reason: "closed by user"}
	b, _ := json.Marshal(e)
	got, err := DecodeEvent(b)
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Errorf("round trip: %+v %v", got, err)
	}
	if _, err := DecodeEvent([]byte(`{"time":"x","type":"stats"}`)); err == nil {
		t.Error("bad time accepted")
	}
}
