package desktop_test

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/desktop"
	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// TestDesktopXvfb runs the real app (GL driver) under Xvfb against a live
// tunnel: `qcdvpn gateway` (data "tun") in a gateway namespace, pings
// from the client namespace through the tunnel for the traffic graph.
//
//   - attach: the usual set-up. `qcdvpn up --service` runs as root in the
//     client namespace with a kernel TUN; the app runs as an unprivileged
//     user (nobody), outside the namespace, and connects through the
//     control socket alone. Its screenshot is the README's.
//   - inprocess: the app itself runs as root in the client namespace with
//     its engine in-process.
//
// The app's --ready hook writes what the window shows once it has been
// connected for a while; the test then takes the window from the X
// server (xwininfo, import), checks the PNG is not blank, and checks the
// window says connected, with the virtual IP from the gateway's pool,
// the algorithms, the gateway list, the event log, the tray menu and
// traffic in the graph, and that the tunnel carries a ping.
//
// It builds both binaries (the GL driver takes minutes the first time),
// so it runs only with QCDVPN_DESKTOP_XVFB=1 (make desktop-test);
// QCDVPN_UPDATE_SCREENSHOT=1 also copies the attach run's PNG to
// docs/desktop.png (make desktop-screenshot).
func TestDesktopXvfb(t *testing.T) {
	if os.Getenv("QCDVPN_DESKTOP_XVFB") != "1" {
		t.Skip("SKIP: the Xvfb run of the desktop app needs QCDVPN_DESKTOP_XVFB=1 (make desktop-test)")
	}
	testbed.RequireRoot(t)
	for _, tool := range []string{"Xvfb", "xwininfo", "import", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (scripts/install-deps.sh installs it)", tool)
		}
	}
	e := &xenv{}
	bin, err := os.MkdirTemp("", "qcdvpn-desktop-bin-") // world-traversable, for the unprivileged run
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	e.qcdvpn, e.app = filepath.Join(bin, "qcdvpn"), filepath.Join(bin, "qcdvpn-desktop")
	build(t, e.qcdvpn, "github.com/qcdvpn/qcdvpn/cmd/qcdvpn")
	build(t, e.app, "github.com/qcdvpn/qcdvpn/desktop/cmd/qcdvpn-desktop")
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}

	e.pair = testbed.NewPair(t)
	pair := e.pair
	e.host = pair.ProtectedPrefix().Addr().Next()
	// A primary and a backup gateway sharing a ticket key, so that the
	// client resumes on the backup when the primary dies.
	ticketKey := make([]byte, 32)
	_, _ = crand.Read(ticketKey)
	e.backup = pair.AnotherGateway(t)
	e.primaryCmd = e.startGateway(t, pair, ticketKey)
	e.startGateway(t, e.backup, ticketKey)

	// One X server for both runs, in the host namespace: clients in the
	// client namespace reach it through its socket file.
	e.display = freeDisplay(t)
	start(t, exec.Command("Xvfb", e.display, "-screen", "0", "1400x900x24", "-nolisten", "tcp"), "Xvfb")
	waitFile(t, "/tmp/.X11-unix/X"+e.display[1:])

	// Traffic through the tunnel whenever it is up, for the graph.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			_ = pair.Client.Command(ctx, "ping", "-q", "-i", "0.2", "-s", "1200", "-w", "60", e.host.String()).Run()
			time.Sleep(200 * time.Millisecond)
		}
	}()

	// In-process first: the attach run ends by killing the primary.
	t.Run("inprocess", func(t *testing.T) { e.run(t, ModeInProcessTest) })
	t.Run("attach", func(t *testing.T) { e.run(t, ModeAttachTest) })
}

// startGateway runs `qcdvpn gateway` (data "tun") in p's gateway
// namespace, with a host behind it, until the test ends.
func (e *xenv) startGateway(t *testing.T, p *testbed.Pair, ticketKey []byte) *exec.Cmd {
	p.Gateway.AddLoopbackAddr(t, netip.PrefixFrom(e.host, 32))
	dir := t.TempDir()
	cfg := map[string]any{
		"listen":    []string{p.GatewayIP.String()},
		"id":        "gw.example",
		"auth":      map[string]any{"method": "psk", "psk": "desktop-xvfb-test-psk"},
		"pool":      []string{p.PoolPrefix().String()},
		"local_ts":  []string{p.ProtectedPrefix().String()},
		"data":      "tun",
		"qcd":       map[string]any{"secret_file": filepath.Join(dir, "qcd.secret")},
		"tickets":   map[string]any{"keys": []any{map[string]any{"id": "k1", "key_hex": hex.EncodeToString(ticketKey)}}, "lifetime": "1h"},
		"state_dir": filepath.Join(dir, "state"),
	}
	path := writeJSON(t, filepath.Join(dir, "gateway.json"), cfg)
	gw := p.Gateway.Command(context.Background(), e.qcdvpn, "gateway", "-c", path, "--events", "json", "--log-level", "info")
	waitLine(t, start(t, gw, "gateway "+p.GatewayIP.String()), `"type":"listening"`, 20*time.Second)
	return gw
}

// Modes of one run of TestDesktopXvfb.
const (
	ModeAttachTest    = "attach"
	ModeInProcessTest = "inprocess"
)

// xenv is what the runs of TestDesktopXvfb share.
type xenv struct {
	qcdvpn, app string
	pair        *testbed.Pair // the client and the primary gateway
	backup      *testbed.Pair // the client and the backup gateway
	primaryCmd  *exec.Cmd     // the primary gateway's process
	host        netip.Addr
	display     string
}

// nobody is the unprivileged user the attached app runs as.
const nobody = 65534

func (e *xenv) run(t *testing.T, mode string) {
	pair := e.pair
	attach := mode == ModeAttachTest
	uid := 0
	if attach {
		uid = nobody
	}
	// A world-traversable work directory (t.TempDir is 0700 root).
	dir, err := os.MkdirTemp("", "qcdvpn-desktop-xvfb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The user's config dir holds the profile, as an import leaves it.
	home := filepath.Join(dir, "home")
	store := desktop.NewStore(filepath.Join(home, ".config", "qcdvpn", "profiles"))
	profile := map[string]any{
		"name":      "office",
		"gateways":  []string{netip.AddrPortFrom(pair.GatewayIP, 4500).String(), netip.AddrPortFrom(e.backup.GatewayIP, 4500).String()},
		"remote_id": "gw.example", "local_id": "client.example",
		"auth":      map[string]any{"method": "psk", "psk": "desktop-xvfb-test-psk"},
		"traffic":   map[string]any{"include": []string{pair.ProtectedPrefix().String()}},
		"state_dir": filepath.Join(dir, "client-state"),
	}
	b, _ := json.Marshal(profile)
	if _, err := store.Import("office.json", b, "", desktop.Secrets{}); err != nil {
		t.Fatal(err)
	}
	chownTree(t, home, uid)

	// A session bus of the app's user, for the tray (a StatusNotifierItem
	// on D-Bus) and the notifications.
	busDir := filepath.Join(dir, "bus")
	if err := os.Mkdir(busDir, 0o700); err != nil {
		t.Fatal(err)
	}
	chownTree(t, busDir, uid)
	busAddr := "unix:path=" + filepath.Join(busDir, "socket")
	bus := exec.Command("dbus-daemon", "--session", "--nofork", "--address="+busAddr)
	asUser(bus, uid)
	start(t, bus, "dbus-daemon")
	waitFile(t, filepath.Join(busDir, "socket"))
	// The desktop notifications the app sends, as the bus carries them.
	mon := exec.Command("dbus-monitor", "--address", busAddr, "interface='org.freedesktop.Notifications'")
	asUser(mon, uid)
	monLines := start(t, mon, "dbus-monitor")
	var notes []string
	var notesMu sync.Mutex
	go func() {
		for l := range monLines {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "string \"qcdvpn: "); ok {
				notesMu.Lock()
				notes = append(notes, "qcdvpn: "+strings.TrimSuffix(v, "\""))
				notesMu.Unlock()
			}
		}
	}()

	tunName := fmt.Sprintf("qcdx%d", rand.IntN(10000))
	args := []string{"--connect", "office", "--ready", filepath.Join(home, "ready.json"), "--ready-after", "10s", "--log-level", "info"}
	var cmd *exec.Cmd
	if attach {
		// The privileged service, idle until the app connects; its socket
		// is the app user's to use (--control-owner).
		sock := filepath.Join(dir, "ctl", "control.sock")
		svc := pair.Client.Command(context.Background(), e.qcdvpn, "up", "--service", "--tun", tunName,
			"--control", sock, "--control-owner", fmt.Sprint(uid), "--events", "json", "--log-level", "info")
		start(t, svc, "qcdvpn up --service")
		waitFile(t, sock)
		cmd = exec.Command(e.app, append([]string{"--engine", "auto", "--socket", sock}, args...)...)
		asUser(cmd, uid)
	} else {
		cmd = pair.Client.Command(context.Background(), e.app, append([]string{"--engine", "inprocess", "--tun", tunName}, args...)...)
	}
	cmd.Env = append(os.Environ(), "DISPLAY="+e.display, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_RUNTIME_DIR=", "LIBGL_ALWAYS_SOFTWARE=1", "LANG=en_US.UTF-8", "DBUS_SESSION_BUS_ADDRESS="+busAddr)
	out := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	var snap desktop.Snapshot
	readyFile := filepath.Join(home, "ready.json")
	for deadline := time.Now().Add(90 * time.Second); ; {
		if b, err := os.ReadFile(readyFile); err == nil {
			if err := json.Unmarshal(b, &snap); err != nil {
				t.Fatalf("ready file: %v", err)
			}
			t.Logf("window state: %s", b)
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("qcdvpn-desktop exited before it was connected: %v\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("qcdvpn-desktop not connected after 90 s\n%s", out.String())
		}
	}

	readSnap := func() (desktop.Snapshot, bool) {
		var s desktop.Snapshot
		b, err := os.ReadFile(readyFile)
		if err != nil || json.Unmarshal(b, &s) != nil {
			return desktop.Snapshot{}, false
		}
		return s, true
	}
	gwInUse, gwIdle := pair.GatewayIP, e.backup.GatewayIP
	if attach {
		// The primary dies (kill -9, no goodbye): the window follows the
		// failover to the backup, resumed from the ticket.
		gwInUse, gwIdle = e.backup.GatewayIP, pair.GatewayIP
		_ = e.primaryCmd.Process.Kill()
		deadline := time.Now().Add(45 * time.Second)
		for {
			s, ok := readSnap()
			if ok && strings.HasPrefix(s.Headline, "Connected to "+gwInUse.String()) && containsLine(s.Events, "Resumed") && s.GraphSamples > 0 {
				// A few seconds of traffic on the backup for the graph.
				time.Sleep(3 * time.Second)
				snap, _ = readSnap()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the window did not show a failover to %s within 45 s: %q %q\n%s", gwInUse, s.Headline, s.Events, out.String())
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("after the failover: %q", snap.Events)
		// The failover raised a desktop notification (Notify on the bus).
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			notesMu.Lock()
			n := strings.Join(notes, "|")
			notesMu.Unlock()
			if strings.Contains(n, "qcdvpn: failed over") {
				if strings.Contains(n, "dropped") {
					t.Errorf("a failover also notified a drop: %q", n)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("no failover notification on the session bus (saw %q)", n)
				break
			}
		}
	}

	// The tunnel the window calls connected carries traffic.
	if b, err := pair.Client.Command(context.Background(), "ping", "-c", "2", "-W", "2", e.host.String()).CombinedOutput(); err != nil {
		t.Errorf("ping %s through the tunnel: %v\n%s", e.host, err, b)
	}

	// The screenshot, from the X server: what a person would see.
	xctx, xcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer xcancel()
	info, err := exec.CommandContext(xctx, "xwininfo", "-display", e.display, "-name", "qcdvpn").CombinedOutput()
	if err != nil {
		t.Fatalf("xwininfo: %v\n%s", err, info)
	}
	full, shot := filepath.Join(dir, "screen.png"), filepath.Join(dir, "desktop.png")
	if b, err := exec.CommandContext(xctx, "import", "-display", e.display, "-window", "root", "png:"+full).CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, b)
	}
	cropTo(t, full, shot, windowRect(t, string(info)))

	// SIGTERM ends the app cleanly (an in-process tunnel with it).
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("qcdvpn-desktop after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("qcdvpn-desktop still running 15 s after SIGTERM")
	}
	if t.Failed() {
		t.Logf("qcdvpn-desktop output:\n%s", out.String())
	}

	// What the window says.
	if want := "Connected to " + gwInUse.String(); !strings.HasPrefix(snap.Headline, want) {
		t.Errorf("headline %q, want %q", snap.Headline, want)
	}
	if attach && !strings.HasPrefix(snap.Mode, "attached to ") || !attach && !strings.HasPrefix(snap.Mode, "in-process engine") {
		t.Errorf("engine mode %q for the %s run", snap.Mode, mode)
	}
	if vip, err := netip.ParseAddr(snap.Fields["Virtual IP"]); err != nil || !pair.PoolPrefix().Contains(vip) {
		t.Errorf("virtual IP %q, want one of %s", snap.Fields["Virtual IP"], pair.PoolPrefix())
	}
	if !strings.HasPrefix(snap.Fields["IKE"], "AES_GCM_16") || !strings.HasPrefix(snap.Fields["ESP"], "AES_GCM_16") || !strings.HasPrefix(snap.Fields["Uptime"], "0:00:") {
		t.Errorf("algorithms or uptime missing: %v", snap.Fields)
	}
	inUse := map[string]bool{}
	for _, g := range snap.Gateways {
		if a, ok := strings.CutSuffix(g, "  (in use)"); ok {
			inUse[a] = true
		}
	}
	if len(snap.Gateways) != 2 || len(inUse) != 1 || !inUse[netip.AddrPortFrom(gwInUse, 4500).String()] {
		t.Errorf("gateway list %q, want %s marked in use and %s not", snap.Gateways, gwInUse, gwIdle)
	}
	if want := "Show window|Connect office (disabled)|Disconnect|Quit"; !snap.Tray || strings.Join(snap.TrayItems, "|") != want || snap.TrayIcon != "qcdvpn-connected.png" {
		t.Errorf("tray %v %q icon %q, want %q and the connected icon", snap.Tray, snap.TrayItems, snap.TrayIcon, want)
	}
	if snap.GraphBytesIn <= 0 {
		t.Errorf("traffic graph has no inbound bytes (%d samples)", snap.GraphSamples)
	}
	wantEvents := []string{"Connecting to " + pair.GatewayIP.String(), "Connected to " + pair.GatewayIP.String()}
	if attach {
		wantEvents = append(wantEvents, "Failed over from "+pair.GatewayIP.String()+" to "+gwInUse.String(),
			"Resumed the session with "+gwInUse.String(), "Connected to "+gwInUse.String())
	}
	for _, want := range wantEvents {
		if !containsLine(snap.Events, want) {
			t.Errorf("event log lacks %q: %q", want, snap.Events)
		}
	}

	// The pixels: a real window, not blank.
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	sd, colours := pixelStats(img)
	t.Logf("screenshot %s: %v, luminance std dev %.1f, %d colours", shot, img.Bounds().Size(), sd, colours)
	if img.Bounds().Dx() < 600 || img.Bounds().Dy() < 400 || img.Bounds().Dx() >= 1400 {
		t.Errorf("screenshot is %v, want the window", img.Bounds().Size())
	}
	if sd < 10 || colours < 32 {
		t.Errorf("screenshot looks blank: luminance std dev %.1f, %d colours", sd, colours)
	}
	if attach && os.Getenv("QCDVPN_UPDATE_SCREENSHOT") == "1" && !t.Failed() {
		b, _ := os.ReadFile(shot)
		if err := os.WriteFile(filepath.Join("..", "docs", "desktop.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// freeDisplay picks an X display number no server uses.
func freeDisplay(t *testing.T) string {
	for range 100 {
		n := 100 + rand.IntN(800)
		_, err1 := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n))
		_, err2 := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n))
		if os.IsNotExist(err1) && os.IsNotExist(err2) {
			return fmt.Sprintf(":%d", n)
		}
	}
	t.Fatal("no free X display number")
	return ""
}

// asUser makes cmd run as uid (and its group), unless uid is 0.
func asUser(cmd *exec.Cmd, uid int) {
	if uid == 0 {
		return
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
}

// chownTree gives a directory tree to uid.
func chownTree(t *testing.T, root string, uid int) {
	t.Helper()
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
	}
}

func build(t *testing.T, out, pkg string) {
	t.Helper()
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// start starts cmd, stops it at the test's end, and returns its stdout
// lines; stderr goes to the test log on failure.
func start(t *testing.T, cmd *exec.Cmd, name string) <-chan string {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedWriter{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	lines := make(chan string, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, stderr.String())
		}
	})
	return lines
}

func waitLine(t *testing.T, lines <-chan string, substr string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, substr) {
				return
			}
		case <-timeout:
			t.Fatalf("no line with %s after %s", substr, d)
		}
	}
}

// windowRect reads a window's geometry from xwininfo's output.
func windowRect(t *testing.T, info string) image.Rectangle {
	t.Helper()
	get := func(key string) int {
		_, rest, ok := strings.Cut(info, key)
		if !ok {
			t.Fatalf("xwininfo output lacks %q:\n%s", key, info)
		}
		var v int
		fmt.Sscan(rest, &v)
		return v
	}
	x, y := get("Absolute upper-left X:"), get("Absolute upper-left Y:")
	return image.Rect(x, y, x+get("Width:"), y+get("Height:"))
}

// cropTo writes the part r of the PNG src to dst.
func cropTo(t *testing.T, src, dst string, r image.Rectangle) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("screen capture: %v", err)
	}
	r = r.Intersect(img.Bounds())
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if r.Empty() || !ok {
		t.Fatalf("window %v outside the screen %v", r, img.Bounds())
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(out, sub.SubImage(r)); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func containsLine(lines []string, substr string) bool {
	for _, l := range lines {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

// pixelStats is the standard deviation of the luminance and the number
// of distinct colours (capped at 4096).
func pixelStats(img image.Image) (float64, int) {
	b := img.Bounds()
	var sum, sq, n float64
	colours := map[[3]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			l := (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 257
			sum += l
			sq += l * l
			n++
			if len(colours) < 4096 {
				colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			}
		}
	}
	mean := sum / n
	return math.Sqrt(max(sq/n-mean*mean, 0)), len(colours)
}

// lockedWriter is a strings.Builder safe for concurrent writes.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
