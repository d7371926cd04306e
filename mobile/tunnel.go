package mobile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/qcdvpn/qcdvpn/resume"
	"github.com/qcdvpn/qcdvpn/sdk"
	"github.com/qcdvpn/qcdvpn/tun"
)

// Platform is what the app provides to a Tunnel. Its methods are called
// from goroutines of the SDK, never concurrently with themselves for
// OnEvent (events arrive one at a time, in order), possibly concurrently
// for the others; they must not block for long.
type Platform interface {
	// Protect makes the socket fd bypass the tunnel (Android:
	// VpnService.protect(fd)). It is called for every UDP socket the SDK
	// opens, before the socket is used; false fails the connection
	// attempt. On iOS return true.
	Protect(fd int32) bool
	// OnEvent receives each event as one JSON object, the line that
	// `qcdvpn up --events json` prints: "time" (RFC 3339 with
	// nanoseconds), "type" and the fields of that type. It may call
	// Tunnel.Stop.
	OnEvent(eventJSON string)
	// Log receives diagnostics, one line each, at a level of LogDebug,
	// LogInfo, LogWarn or LogError. No secret is ever logged.
	Log(level int32, msg string)
	// StoreKey returns the 32-byte key that seals tickets and QCD tokens
	// at rest, kept by the Android Keystore or the iOS Keychain. It is
	// called once, by NewTunnel. Empty: a key file in StateDir instead.
	StoreKey() []byte
	// StateDir is an app-private directory for tickets and QCD tokens
	// (Android: Context.getNoBackupFilesDir(); iOS: the app group
	// container). Empty: the profile's state_dir, else nothing persists.
	StateDir() string
}

// MemoryLimit is the Go runtime's soft memory limit that NewTunnel sets
// when none is set yet: well inside iOS's 50 MiB for a packet tunnel
// extension, leaving room for what is not Go heap.
const MemoryLimit = 30 << 20

// Values of NewTunnel's tunFD that are not descriptors.
const (
	// TUNNetstack runs the tunnel over an in-process network stack
	// (tests; nothing outside the process reaches it).
	TUNNetstack int32 = -1
	// TUNLater: the app attaches its TUN with AttachTUN once the
	// connected event told the addresses to configure it with (Android,
	// where the interface is built with its addresses). Until then
	// nothing is read from the app and inbound packets are dropped.
	TUNLater int32 = -2
)

// Tunnel states, as StatusJSON's "state".
const (
	StateIdle         = "idle"
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateReconnecting = "reconnecting"
	StateStopped      = "stopped"
)

// Tunnel is one VPN connection. Create it with NewTunnel, then Start it;
// Stop ends it for good (a new connection is a new Tunnel, with the new
// TUN descriptor the OS hands over).
type Tunnel struct {
	platform Platform
	profile  *sdk.Profile
	dev      tun.Device // the app's TUN; nil with netstack
	late     *lateTUN   // with TUNLater: dev, filled in by AttachTUN
	client   *sdk.Client
	level    slog.LevelVar
	log      *slog.Logger

	mu       sync.Mutex
	state    string
	starting bool
	cancel   context.CancelFunc
	waitDone chan struct{}
	conn     sdk.Event // the last connected event
	since    time.Time // when the state last changed
}

// NewTunnel prepares a tunnel from a profile (the JSON document of
// sdk.Profile) over the TUN file descriptor tunFD, which the tunnel then
// owns and closes on Stop or on error (iOS: pass a dup of the utun
// descriptor); TUNNetstack (-1) selects an in-process network stack
// instead, TUNLater (-2) a descriptor given later with AttachTUN. Nothing
// is sent until Start. An invalid profile is an error naming the field.
func NewTunnel(profileJSON string, tunFD int32, platform Platform) (*Tunnel, error) {
	if platform == nil {
		if tunFD >= 0 {
			closeFD(int(tunFD))
		}
		return nil, errors.New("mobile: NewTunnel: platform is nil")
	}
	p, err := parseProfile(profileJSON)
	if err != nil {
		if tunFD >= 0 {
			closeFD(int(tunFD))
		}
		return nil, err
	}
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(MemoryLimit)
	}
	t := &Tunnel{platform: platform, profile: p, state: StateIdle, since: time.Now()}
	t.level.Set(slog.LevelInfo)
	t.log = slog.New(&platformHandler{p: platform, level: &t.level})
	opts := sdk.Options{
		Logger:    t.log,
		OnEvent:   t.onEvent,
		DataPlane: sdk.DataPlaneNetstack,
		StateDir:  platform.StateDir(),
		Protect: func(fd int) error {
			if !platform.Protect(int32(fd)) {
				return errors.New("the platform refused to protect it (VpnService.protect returned false)")
			}
			return nil
		},
	}
	opts.KeyProvider = platformKey{p: platform, fallbackDir: stateDirOf(opts.StateDir, p)}
	// Gateway names are refreshed at most once a minute: a wake-up each.
	opts.DNS.MinTTL = time.Minute
	switch {
	case tunFD >= 0:
		dev, err := fromFD(tunFD, p)
		if err != nil {
			return nil, err
		}
		t.dev = dev
	case tunFD == TUNLater:
		t.late = newLateTUN(p.EffectiveMTU())
		t.dev = t.late
	case tunFD != TUNNetstack:
		return nil, fmt.Errorf("mobile: NewTunnel: tunFD %d is neither a file descriptor, TUNNetstack (-1) nor TUNLater (-2)", tunFD)
	}
	if t.dev != nil {
		opts.DataPlane, opts.Device = sdk.DataPlaneDevice, t.dev
	}
	c, err := sdk.NewClient(p, opts)
	if err != nil {
		if t.dev != nil {
			t.dev.Close()
		}
		return nil, err
	}
	t.client = c
	return t, nil
}

// DefaultKeepalive is the NAT keepalive interval of a Tunnel whose
// profile sets no timers.keepalive: longer than the SDK's 20 s, as in
// strongSwan's Android app, since every keepalive wakes the radio. NAT
// mappings for UDP last 60 s or more on most carrier and home NATs; a
// profile for a network with shorter ones sets timers.keepalive itself.
const DefaultKeepalive = "45s"

// parseProfile parses a profile as sdk.ParseProfile does, with the mobile
// default DefaultKeepalive where timers.keepalive is absent or empty.
func parseProfile(profileJSON string) (*sdk.Profile, error) {
	p, err := sdk.ParseProfile([]byte(profileJSON))
	if err != nil {
		return nil, err
	}
	// ParseProfile has checked the document strictly (exact keys, no
	// duplicates), so this sees the same timers.keepalive it did.
	var probe struct {
		Timers struct {
			Keepalive *string `json:"keepalive"`
		} `json:"timers"`
	}
	if err := json.Unmarshal([]byte(profileJSON), &probe); err != nil {
		return nil, err
	}
	if ka := probe.Timers.Keepalive; ka == nil || *ka == "" {
		p.Timers.Keepalive = DefaultKeepalive
		if err := p.Validate(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// fromFD adopts a TUN descriptor. Android and iOS keep the MTU the app
// configured; a plain Linux TUN (tests) needs one set.
func fromFD(fd int32, p *sdk.Profile) (tun.Device, error) {
	mtu := 0
	if runtime.GOOS == "linux" {
		mtu = p.EffectiveMTU()
	}
	return tun.FromFD(int(fd), mtu)
}

// AttachTUN hands over the TUN descriptor of a tunnel made with
// TUNLater, typically from Platform.OnEvent on the connected event, once
// its "virtual_ip" and "dns" configured the interface (Android:
// VpnService.Builder.addAddress, addDnsServer, establish, detachFd). A
// later AttachTUN (after a reconnect gave other addresses) replaces the
// descriptor and closes the old one. The tunnel owns fd from here on,
// also on error.
func (t *Tunnel) AttachTUN(fd int32) error {
	if fd < 0 {
		return fmt.Errorf("mobile: AttachTUN: invalid file descriptor %d", fd)
	}
	if t.late == nil {
		closeFD(int(fd))
		return errors.New("mobile: AttachTUN: the tunnel was not made with TUNLater")
	}
	dev, err := fromFD(fd, t.profile)
	if err != nil {
		return err
	}
	if err := t.late.attach(dev); err != nil {
		return errors.New("mobile: AttachTUN: the tunnel was stopped")
	}
	return nil
}

// SetLogLevel sets the least level passed to Platform.Log (LogInfo by
// default; LogDebug shows every exchange).
func (t *Tunnel) SetLogLevel(level int32) { t.level.Set(slog.Level(level)) }

// Start connects to the first gateway of the profile that answers — by
// resumption where a ticket is held — and returns once the tunnel
// carries traffic, or with the error of every gateway tried. After it
// returns nil the tunnel keeps itself up (rekeys, liveness checks,
// failover) until Stop. A failed Start may be retried. Start blocks:
// call it off the UI thread.
func (t *Tunnel) Start() error {
	t.mu.Lock()
	switch {
	case t.state == StateStopped:
		t.mu.Unlock()
		return errors.New("mobile: Start: the tunnel was stopped; create a new one")
	case t.starting || t.waitDone != nil:
		t.mu.Unlock()
		return errors.New("mobile: Start: already started")
	}
	t.starting = true
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	t.setState(StateConnecting)
	t.mu.Unlock()

	err := t.client.Connect(ctx)

	t.mu.Lock()
	defer t.mu.Unlock()
	t.starting = false
	if t.state == StateStopped {
		cancel()
		if err == nil {
			err = errors.New("mobile: Start: stopped")
		}
		return err
	}
	if err != nil {
		cancel()
		t.cancel = nil
		t.setState(StateIdle)
		return err
	}
	done := make(chan struct{})
	t.waitDone = done
	go func() {
		defer close(done)
		if err := t.client.Wait(ctx); err != nil && ctx.Err() == nil {
			t.log.Warn("tunnel ended", "err", err)
		}
	}()
	return nil
}

// Stop deletes the IKE SA at the gateway (waiting up to 3 s for its
// answer), closes the socket and the TUN. A disconnected event follows
// if the tunnel was up. Stop may be called at any time, more than once,
// and from Platform.OnEvent.
func (t *Tunnel) Stop() {
	t.mu.Lock()
	if t.state == StateStopped {
		t.mu.Unlock()
		return
	}
	t.setState(StateStopped)
	cancel, done := t.cancel, t.waitDone
	t.mu.Unlock()
	_ = t.client.Close()
	if cancel != nil {
		cancel()
	}
	if done != nil {
		<-done
	}
	if t.dev != nil {
		t.dev.Close()
	}
}

// status is StatusJSON's document.
type status struct {
	State     string   `json:"state"`
	Since     string   `json:"since"`
	Profile   string   `json:"profile"`
	Gateway   string   `json:"gateway,omitempty"`
	VirtualIP string   `json:"virtual_ip,omitempty"`
	DNS       []string `json:"dns,omitempty"`
	Domains   []string `json:"dns_domains,omitempty"`
	IKESPIi   string   `json:"ike_spi_i,omitempty"`
	IKESPIr   string   `json:"ike_spi_r,omitempty"`
	IKESuite  string   `json:"ike_suite,omitempty"`
	ESPSuite  string   `json:"esp_suite,omitempty"`
	// KeyExchanges tells a quantum-safe tunnel (CURVE_25519, ML_KEM_768)
	// from a classical one.
	KeyExchanges []string   `json:"key_exchanges,omitempty"`
	Resumed      *bool      `json:"resumed,omitempty"`
	Stats        *sdk.Stats `json:"stats,omitempty"`
}

// StatusJSON is a snapshot of the tunnel as one JSON object: "state"
// (idle, connecting, connected, reconnecting, stopped), "since" (RFC
// 3339), "profile", and while connected "gateway", "virtual_ip", "dns",
// "dns_domains", "ike_spi_i", "ike_spi_r", "ike_suite", "esp_suite",
// "key_exchanges", "resumed" and the data plane counters under "stats".
func (t *Tunnel) StatusJSON() string {
	t.mu.Lock()
	st := status{State: t.state, Since: t.since.Format(time.RFC3339Nano), Profile: t.profile.Name}
	if t.state == StateConnected {
		e := t.conn
		st.Gateway, st.VirtualIP, st.DNS, st.Domains = e.Gateway, e.VirtualIP, e.DNS, e.Domains
		st.IKESPIi, st.IKESPIr, st.IKESuite, st.ESPSuite, st.Resumed = e.IKESPIi, e.IKESPIr, e.IKESuite, e.ESPSuite, &e.Resumed
		st.KeyExchanges = e.KeyExchanges
	}
	t.mu.Unlock()
	if st.State == StateConnected {
		s := t.client.Stats()
		st.Stats = &s
	}
	b, err := json.Marshal(st)
	if err != nil {
		return `{"state":"error"}`
	}
	return string(b)
}

// NetworkChanged tells the tunnel that the device's network changed
// (Wi-Fi to cellular, a new address): it sends a NAT keepalive from the
// socket at once and, with MOBIKE, moves the IKE SA to the new address
// (event roamed; the tunnel reconnects if the new path fails); without
// MOBIKE it starts a fast liveness check, so that a path that no longer
// works is noticed in seconds and the tunnel fails over. It never blocks
// and does nothing while no IKE SA is up.
func (t *Tunnel) NetworkChanged() { t.client.NetworkChanged() }

// onEvent tracks the state for StatusJSON and forwards the event.
func (t *Tunnel) onEvent(e sdk.Event) {
	t.mu.Lock()
	switch e.Type {
	case sdk.EventConnected:
		if t.state != StateStopped {
			t.conn = e
			t.setState(StateConnected)
		}
	case sdk.EventDisconnected, sdk.EventFailover:
		if t.state == StateConnected {
			t.setState(StateReconnecting)
		}
	}
	t.mu.Unlock()
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	t.platform.OnEvent(string(b))
}

// setState changes the state; t.mu is held.
func (t *Tunnel) setState(s string) {
	if t.state != s {
		t.state, t.since = s, time.Now()
	}
}

// platformKey is the store key from Platform.StoreKey, or a key file in
// the state directory when the platform has none.
type platformKey struct {
	p           Platform
	fallbackDir string
}

func (k platformKey) StoreKey() ([]byte, error) {
	if b := k.p.StoreKey(); len(b) > 0 {
		return resume.StaticKey(b).StoreKey()
	}
	if k.fallbackDir == "" {
		return nil, errors.New("mobile: the platform gave no store key and there is no state directory")
	}
	return resume.FileKey{Path: filepath.Join(k.fallbackDir, "store.key")}.StoreKey()
}

// stateDirOf is the state directory the SDK will use (Options.StateDir,
// else the profile's), "" if neither is set.
func stateDirOf(opt string, p *sdk.Profile) string {
	if opt != "" {
		return opt
	}
	return p.StateDir
}
