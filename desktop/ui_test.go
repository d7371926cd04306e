package desktop

import (
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/qcdvpn/qcdvpn/control"
	"github.com/qcdvpn/qcdvpn/sdk"
)

const testProfile = `{"name":"corp","gateways":["192.0.2.1:4500","192.0.2.9:4500"],"remote_id":"gw.example",
"local_id":"client.example","auth":{"method":"psk","psk":"correct horse battery staple"},
"traffic":{"include":["10.200.0.0/24"]}}`

type harness struct {
	t      *testing.T
	ui     *UI
	fake   *fakeBackend
	q      uiQueue
	store  *Store
	mu     sync.Mutex
	notifs []*fyne.Notification
}

// newHarness builds the UI on a test app with a fake backend and a store
// in a temporary directory holding profiles.
func newHarness(t *testing.T, profiles ...string) *harness {
	t.Helper()
	app := test.NewTempApp(t)
	h := &harness{t: t, fake: &fakeBackend{st: Status{State: StateIdle}}, q: make(uiQueue, 4096),
		store: NewStore(filepath.Join(t.TempDir(), "profiles"))}
	for i, p := range profiles {
		if _, err := h.store.Import("p"+string(rune('0'+i))+".json", []byte(p), "", Secrets{}); err != nil {
			t.Fatal(err)
		}
	}
	h.ui = New(app, Options{Backend: h.fake, Store: h.store, Mode: "test", Poll: 20 * time.Millisecond})
	h.ui.do = h.q.do
	h.ui.dropDelay = 20 * time.Millisecond
	h.ui.notify = func(n *fyne.Notification) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.notifs = append(h.notifs, n)
	}
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { h.ui.Stop(); close(done) }()
		for {
			select {
			case <-done:
				return
			case fn := <-h.q:
				fn()
			}
		}
	})
	return h
}

func (h *harness) notifications() []*fyne.Notification {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*fyne.Notification(nil), h.notifs...)
}

func (h *harness) field(name string) string { return h.ui.fields[name].Text }

// TestConnectDisconnect taps Connect with the only stored profile, checks
// the backend got it with the Settings applied and the window shows the
// connected state; then taps Disconnect.
func TestConnectDisconnect(t *testing.T) {
	h := newHarness(t, testProfile)
	u := h.ui
	if u.selected != "corp" {
		t.Fatalf("selected %q, want the only profile corp", u.selected)
	}
	if u.stateLabel.Text != "Not connected" {
		t.Fatalf("state %q", u.stateLabel.Text)
	}
	if u.connectBtn.Disabled() || !u.disconnectBtn.Disabled() {
		t.Fatal("want Connect enabled and Disconnect disabled before connecting")
	}
	test.Tap(u.qcdCheck) // QCD off for this connect
	if u.Settings().QCD {
		t.Fatal("QCD still on after tapping its check")
	}
	if u.app.Preferences().BoolWithFallback(prefQCD, true) {
		t.Fatal("the QCD setting was not stored in the preferences")
	}
	test.Tap(u.connectBtn)
	if !u.connectBtn.Disabled() {
		t.Fatal("Connect not disabled while connecting")
	}
	h.q.pump(t, "connected", func() bool { return !u.busy })
	connects, _ := h.fake.calls()
	if len(connects) != 1 {
		t.Fatalf("%d connects, want 1", len(connects))
	}
	p, err := sdk.ParseProfile(connects[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "corp" || p.QCDEnabled() || !p.ResumptionEnabled() || p.Auth.PSK != "correct horse battery staple" {
		t.Fatalf("backend got profile %s (qcd %v, resumption %v), want corp with QCD off, resumption on", p.Name, p.QCDEnabled(), p.ResumptionEnabled())
	}
	if got := u.stateLabel.Text; got != "Connected to 192.0.2.1:4500" {
		t.Fatalf("state label %q", got)
	}
	if h.field("Virtual IP") != "10.100.0.7" || h.field("IKE") != "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519" || h.field("ESP") != "AES_GCM_16_256" {
		t.Fatalf("fields: vip %q ike %q esp %q", h.field("Virtual IP"), h.field("IKE"), h.field("ESP"))
	}
	if up := h.field("Uptime"); !strings.HasPrefix(up, "0:01:0") {
		t.Fatalf("uptime %q, want about 0:01:05", up)
	}
	if s := h.field("Session"); s != "full handshake; QCD off, resumption on" {
		t.Fatalf("session %q", s)
	}
	if u.stateIcon.Resource != iconUp || u.trayState != StateConnected {
		t.Fatal("state icon is not the connected one")
	}
	if !u.connectBtn.Disabled() || u.disconnectBtn.Disabled() || u.trayDisc.Disabled || !u.trayConnect.Disabled {
		t.Fatal("want Disconnect (button and tray) enabled, Connect disabled when connected")
	}
	// The gateway list marks the active one.
	if n := u.gatewayList.Length(); n != 2 {
		t.Fatalf("gateway list has %d rows", n)
	}
	if l := gatewayLine(u.status.Gateways[0], u.status.State); l != "192.0.2.1:4500  (in use)" {
		t.Fatalf("active gateway row %q", l)
	}
	if l := gatewayLine(u.status.Gateways[1], u.status.State); l != "192.0.2.9:4500" {
		t.Fatalf("backup gateway row %q", l)
	}

	test.Tap(u.disconnectBtn)
	h.q.pump(t, "disconnected", func() bool { return !u.busy })
	if _, d := h.fake.calls(); d != 1 {
		t.Fatalf("%d disconnects, want 1", d)
	}
	if u.stateLabel.Text != "Disconnected" || u.stateIcon.Resource != iconDown {
		t.Fatalf("after disconnect: %q", u.stateLabel.Text)
	}
	// A requested disconnect is no drop.
	u.HandleEvent(sdk.Event{Type: sdk.EventDisconnected, Gateway: "192.0.2.1:4500", Reason: "closed by user"})
	if n := h.notifications(); len(n) != 0 {
		t.Fatalf("notification %q on a requested disconnect", n[0].Title)
	}
}

// TestConnectError shows the backend's error on one line and stays
// disconnected.
func TestConnectError(t *testing.T) {
	h := newHarness(t, testProfile)
	h.fake.connectErr = errFake
	test.Tap(h.ui.connectBtn)
	h.q.pump(t, "connect to fail", func() bool { return !h.ui.busy })
	if got := h.ui.message.Text; got != "connect corp: gateway said AUTHENTICATION_FAILED" {
		t.Fatalf("message %q", got)
	}
	if h.ui.stateLabel.Text != "Disconnected" || h.ui.connectBtn.Disabled() {
		t.Fatalf("state %q, connect disabled %v", h.ui.stateLabel.Text, h.ui.connectBtn.Disabled())
	}
}

// TestEventDisplay streams events through the backend's event channel
// and checks the log shows them in plain words, newest first, and that
// failover and an unrequested drop raise notifications.
func TestEventDisplay(t *testing.T) {
	h := newHarness(t, testProfile)
	u := h.ui
	u.Start()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	evs := []sdk.Event{
		{Time: now, Type: sdk.EventConnecting, Gateway: "192.0.2.1:4500"},
		{Time: now, Type: sdk.EventConnected, Gateway: "192.0.2.1:4500", VirtualIP: "10.100.0.7", Elapsed: 42 * time.Millisecond,
			IKESuite: "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519", ESPSuite: "AES_GCM_16_256"},
		{Time: now, Type: sdk.EventStats, Stats: &sdk.Stats{BytesIn: 10}},
		{Time: now, Type: sdk.EventQCDVerified, Gateway: "192.0.2.1:4500", Source: "192.0.2.1:4500", SinceInbound: 120 * time.Millisecond},
		{Time: now, Type: sdk.EventFailover, From: "192.0.2.1", To: "192.0.2.9", Gateway: "192.0.2.9", Reason: "qcd"},
		{Time: now, Type: sdk.EventResumed, Gateway: "192.0.2.9:4500", Elapsed: 8 * time.Millisecond},
		{Time: now, Type: sdk.EventRekeyed, Gateway: "192.0.2.9:4500", Reason: "child", ESPSuite: "AES_GCM_16_256"},
		{Time: now, Type: sdk.EventDisconnected, Gateway: "192.0.2.9:4500", Reason: "liveness check failed"},
	}
	for _, e := range evs {
		h.fake.send(t, e)
	}
	want := []string{
		"10:00:00  Connecting to 192.0.2.1:4500…",
		"10:00:00  Connected to 192.0.2.1:4500 as 10.100.0.7 in 42 ms",
		"10:00:00  Gateway 192.0.2.1:4500 lost our session (crash or restart): its QCD token from 192.0.2.1:4500 was verified, after 120 ms of silence",
		"10:00:00  Failed over from 192.0.2.1 to 192.0.2.9 (qcd)",
		"10:00:00  Resumed the session with 192.0.2.9:4500 from a ticket in 8 ms",
		"10:00:00  Renewed the traffic keys with 192.0.2.9:4500 (AES_GCM_16_256)",
		"10:00:00  Disconnected from 192.0.2.9:4500: liveness check failed",
	}
	h.q.pump(t, "events in the log", func() bool { return len(u.events) >= len(want) })
	if strings.Join(u.events, "\n") != strings.Join(want, "\n") {
		t.Fatalf("event log:\n%s\nwant:\n%s", strings.Join(u.events, "\n"), strings.Join(want, "\n"))
	}
	// The list shows the newest first: the rendered first row.
	if u.eventList.Length() != len(want) {
		t.Fatalf("event list length %d", u.eventList.Length())
	}
	row := u.eventList.CreateItem()
	u.eventList.UpdateItem(0, row)
	if got := row.(*widget.Label).Text; got != want[len(want)-1] {
		t.Fatalf("first row %q, want the newest event", got)
	}
	h.q.pump(t, "the drop notification", func() bool { return len(h.notifications()) >= 2 })
	n := h.notifications()
	if len(n) != 2 || n[0].Title != "qcdvpn: failed over" || n[0].Content != "Now using 192.0.2.9 (was 192.0.2.1)" ||
		n[1].Title != "qcdvpn: tunnel dropped" || n[1].Content != "liveness check failed" {
		for _, x := range n {
			t.Logf("notification %q: %q", x.Title, x.Content)
		}
		t.Fatalf("%d notifications, want failover and drop", len(n))
	}
}

// TestStatusPollGraph lets the poller sample growing counters and checks
// the graph gets byte rates and draws something.
func TestStatusPollGraph(t *testing.T) {
	h := newHarness(t, testProfile)
	u := h.ui
	test.Tap(u.connectBtn)
	h.q.pump(t, "connected", func() bool { return !u.busy })
	u.Start()
	var mu sync.Mutex
	var bytes uint64
	stop := make(chan struct{})
	go func() { // the fake's counters grow like a tunnel carrying traffic
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			mu.Lock()
			bytes += 5000
			b := bytes
			mu.Unlock()
			h.fake.set(func(s *Status) { s.Stats.BytesIn, s.Stats.BytesOut, s.Stats.PacketsIn = b, b/2, b/100 })
		}
	}()
	defer close(stop)
	positive := func() int {
		in, out := u.graph.Samples()
		n := 0
		for i := range in {
			if in[i] > 0 && out[i] > 0 {
				n++
			}
		}
		return n
	}
	h.q.pump(t, "graph samples", func() bool { return positive() >= 3 })
	in, out := u.graph.Samples()
	for i := range in {
		if out[i] > in[i] || in[i] < 0 {
			t.Fatalf("sample %d: in %.0f out %.0f B/s, want in >= out >= 0 (out grows half as fast)", i, in[i], out[i])
		}
	}
	if !strings.Contains(u.rateLabel.Text, "/s in") {
		t.Fatalf("rate label %q", u.rateLabel.Text)
	}
	img := u.graph.draw(200, 80)
	if colored := countColor(img, colorIn); colored < 50 {
		t.Fatalf("graph drew %d pixels of the inbound colour", colored)
	}
}

// countColor counts the pixels of img that are exactly c.
func countColor(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) == c {
				n++
			}
		}
	}
	return n
}

// TestImport taps Import (a file dialog opens), then feeds the dialog's
// callback the files a user would pick: a qcdvpn JSON profile, a broken
// one, strongSwan Android profiles (.sswan) with a certificate and with
// EAP (the app asks for the password), and a broken .sswan.
func TestImport(t *testing.T) {
	h := newHarness(t)
	u := h.ui
	if len(u.profiles) != 0 || !u.connectBtn.Disabled() {
		t.Fatal("empty store: want no profiles and Connect disabled")
	}
	test.Tap(u.importBtn)
	if u.win.Canvas().Overlays().Top() == nil {
		t.Fatal("Import did not open a dialog")
	}
	u.win.Canvas().Overlays().Top().Hide()

	src := t.TempDir()
	write := func(name, data string) fyne.URIReadCloser {
		t.Helper()
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := storage.Reader(storage.NewFileURI(p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	u.importChosen(write("corp.json", testProfile), nil)
	if u.message.Text != "" {
		t.Fatalf("import error: %s", u.message.Text)
	}
	if len(u.profiles) != 1 || u.profiles[0].Name != "corp" || u.selected != "corp" || u.connectBtn.Disabled() {
		t.Fatalf("after import: profiles %v, selected %q", u.profiles, u.selected)
	}
	fi, err := os.Stat(filepath.Join(h.store.Dir(), "corp.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stored profile: %v %v, want mode 0600", err, fi)
	}
	if !strings.HasSuffix(u.events[len(u.events)-1], `Imported profile "corp" (192.0.2.1:4500, 192.0.2.9:4500)`) {
		t.Fatalf("log %q", u.events[len(u.events)-1])
	}

	u.importChosen(write("broken.json", `{"name":"x","gateways":[],"bogus":1}`), nil)
	if !strings.HasPrefix(u.message.Text, "import broken.json: profile: ") || len(u.profiles) != 1 {
		t.Fatalf("broken import: message %q, %d profiles", u.message.Text, len(u.profiles))
	}
	sample := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "profileimport", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// A .sswan with the client certificate: converted, PEM inline.
	u.importChosen(write("lab.sswan", sample("good/cert-ec-pem.sswan")), nil)
	if u.message.Text != "" || u.selected != "Lab gateway" || len(u.profiles) != 2 {
		t.Fatalf(".sswan import: message %q, selected %q, %d profiles", u.message.Text, u.selected, len(u.profiles))
	}
	stored, err := h.store.Load("Lab gateway")
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.ParseProfile(stored)
	if err != nil {
		t.Fatal(err)
	}
	if p.Auth.Method != "pubkey" || !strings.HasPrefix(p.Auth.Cert, "-----BEGIN") || !strings.HasPrefix(p.CA, "-----BEGIN") || p.Gateways[0] != "192.0.2.10:4500" {
		t.Fatalf("stored .sswan profile: method %s, gateways %v, cert inline %v", p.Auth.Method, p.Gateways, strings.HasPrefix(p.Auth.Cert, "-----BEGIN"))
	}
	// An EAP .sswan holds no password: the app asks for it, then imports.
	u.importChosen(write("office.sswan", sample("good/eap.sswan")), nil)
	if u.secretDialog == nil || u.secretEntry == nil {
		t.Fatalf("no password dialog for an EAP .sswan (message %q)", u.message.Text)
	}
	test.Type(u.secretEntry, "s3cret")
	u.secretDialog.Submit()
	if u.message.Text != "" || u.selected != "Office EAP" || len(u.profiles) != 3 {
		t.Fatalf("EAP .sswan import: message %q, selected %q", u.message.Text, u.selected)
	}
	stored, _ = h.store.Load("Office EAP")
	if p, err := sdk.ParseProfile(stored); err != nil || p.Auth.Method != "eap-mschapv2" || p.Auth.Username != "bob" || p.Auth.Password != "s3cret" {
		t.Fatalf("stored EAP profile: %v %+v", err, p)
	}
	if !containsSuffix(u.events, "Import note: ") {
		t.Fatalf("no import notes for a .sswan with per-app routing and a proxy: %q", u.events)
	}
	// A broken .sswan: one clear line, nothing stored.
	u.importChosen(write("no-ca.sswan", sample("bad/no-ca.sswan")), nil)
	if !strings.HasPrefix(u.message.Text, "import no-ca.sswan: sswan: ") || len(u.profiles) != 3 {
		t.Fatalf("broken .sswan: message %q, %d profiles", u.message.Text, len(u.profiles))
	}
	// Cancelling the dialog changes nothing.
	u.importChosen(nil, nil)
	if len(u.profiles) != 3 {
		t.Fatal("cancel changed the list")
	}
}

func containsSuffix(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// TestDropThenFailover: a drop followed by a failover notifies the
// failover only.
func TestDropThenFailover(t *testing.T) {
	h := newHarness(t, testProfile)
	u := h.ui
	u.HandleEvent(sdk.Event{Type: sdk.EventDisconnected, Gateway: "192.0.2.1:4500", Reason: "gateway did not answer the liveness check"})
	u.HandleEvent(sdk.Event{Type: sdk.EventFailover, From: "192.0.2.1", To: "192.0.2.9", Reason: "liveness_failed"})
	time.Sleep(50 * time.Millisecond) // past dropDelay
	for len(h.q) > 0 {
		(<-h.q)()
	}
	n := h.notifications()
	if len(n) != 1 || n[0].Title != "qcdvpn: failed over" {
		for _, x := range n {
			t.Logf("notification %q: %q", x.Title, x.Content)
		}
		t.Fatalf("%d notifications, want the failover only", len(n))
	}
}

// TestCloseInProcess: closing the window with an in-process tunnel up
// asks first; an attached backend's tunnel outlives the app, so it does not.
func TestCloseInProcess(t *testing.T) {
	h := newHarness(t, testProfile)
	h.ui.status.State = StateConnected
	h.ui.closeWindow()
	if h.ui.confirmQuit != nil {
		t.Fatal("asked before quitting with an attached backend")
	}
	eng := &EngineBackend{B: control.NewEngine(control.EngineOptions{})}
	defer eng.Close()
	h.ui.opts.Backend = eng
	h.ui.closeWindow()
	if h.ui.confirmQuit == nil || h.ui.win.Canvas().Overlays().Top() == nil {
		t.Fatal("no confirmation before ending an in-process tunnel")
	}
}
