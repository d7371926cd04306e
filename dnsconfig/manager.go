// Package dnsconfig applies a tunnel's DNS configuration (RFC 8598 split
// DNS: the gateway's servers and domains) to a Linux system and undoes it
// exactly, even after a crash. With systemd-resolved it sets per-link DNS
// and routing domains on the TUN; otherwise it runs a forwarder on
// loopback (split domains, or everything when the tunnel carries all
// traffic, to the tunnel's servers; the rest to the original resolvers)
// and points the resolver file at it. What it changes is recorded in the
// state directory before it changes anything, and a record left by a
// crashed run is undone by the next run (RestoreLeftover).
package dnsconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/qcdvpn/qcdvpn/resolver"
)

// Backends.
const (
	BackendAuto      = "auto"      // resolved when it runs, else the forwarder
	BackendResolved  = "resolved"  // systemd-resolved per-link settings
	BackendForwarder = "forwarder" // local forwarder + resolver file
)

// DefaultListen is the forwarder's address: loopback, port 53 (the stub
// resolver in libc knows no other port), away from systemd-resolved's
// 127.0.0.53 and 127.0.0.54.
var DefaultListen = netip.MustParseAddrPort("127.0.0.153:53")

// DefaultHold is how long a query for the tunnel waits during a failover
// before it is answered SERVFAIL.
const DefaultHold = 3 * time.Second

// Settings are what the gateway assigned.
type Settings struct {
	// Servers are the tunnel's DNS servers (INTERNAL_IP4_DNS/IP6_DNS).
	Servers []netip.Addr
	// Domains are the split domains (INTERNAL_DNS_DOMAIN).
	Domains []string
	// All sends every query to Servers: the tunnel carries all traffic
	// (RFC 8598 §2: domains are then ignored), or the gateway named no
	// domain (§5).
	All bool
	// Link is the TUN interface the tunnel's DNS goes through (its name
	// is known once the TUN exists, and may change after a reconnect).
	Link string
}

// Options configure a Manager.
type Options struct {
	// StateDir holds the crash record (required).
	StateDir string
	// ResolvConf is the resolver file (default /etc/resolv.conf); tests
	// point it at a temporary file, or run in a namespace where `ip netns
	// exec` bind-mounts /etc/netns/NAME/resolv.conf over it.
	ResolvConf string
	// Backend is BackendAuto (default), BackendResolved or BackendForwarder.
	Backend string
	// Listen is the forwarder's address (default DefaultListen).
	Listen netip.AddrPort
	// Underlay are the original resolvers; empty: those of ResolvConf,
	// read before anything changes.
	Underlay []netip.AddrPort
	// Hold bounds how long tunnel queries wait in a failover (default DefaultHold).
	Hold time.Duration
	// Run runs resolvectl (tests: a fake). Nil: exec.
	Run Runner
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger

	// tunnelPort is where the tunnel's servers listen (0: 53; tests
	// change it).
	tunnelPort uint16
}

// Manager owns the system's DNS configuration while a tunnel is up.
type Manager struct {
	opts    Options
	log     *slog.Logger
	backend string

	mu   sync.Mutex
	st   *state // nil until the first Apply
	fwd    *forwarder
	ctl    controls
	link   string
	closed bool // after Close nothing is changed again
}

// New checks opts and undoes what an earlier, crashed run left behind.
// Nothing is changed until Apply.
func New(opts Options) (*Manager, error) {
	if !supported {
		return nil, errors.New("dnsconfig: the system DNS is configured by qcdvpn on Linux only")
	}
	if opts.StateDir == "" {
		return nil, errors.New("dnsconfig: a state directory is required (the crash record lives there)")
	}
	if opts.ResolvConf == "" {
		opts.ResolvConf = resolver.DefaultResolvConf
	}
	if !opts.Listen.IsValid() {
		opts.Listen = DefaultListen
	}
	if opts.Hold <= 0 {
		opts.Hold = DefaultHold
	}
	if opts.Run == nil {
		opts.Run = execRunner
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{opts: opts, log: log}
	switch opts.Backend {
	case "", BackendAuto:
		m.backend = BackendForwarder
		if resolvedRunning() {
			if c, err := resolver.ReadResolvConf(opts.ResolvConf); err == nil && onlyStub(c.Servers) {
				m.backend = BackendResolved
			}
		}
	case BackendResolved, BackendForwarder:
		m.backend = opts.Backend
	default:
		return nil, fmt.Errorf("dnsconfig: unknown backend %q (want auto, resolved or forwarder)", opts.Backend)
	}
	if err := RestoreLeftover(opts.StateDir, opts.Run, log); err != nil {
		return nil, err
	}
	if m.backend == BackendForwarder && len(opts.Underlay) == 0 {
		servers, err := resolver.SystemServers(opts.ResolvConf)
		if err != nil {
			log.Warn("no original resolver: only the tunnel's domains will resolve", "err", err)
		}
		for _, s := range servers {
			if s != opts.Listen {
				m.opts.Underlay = append(m.opts.Underlay, s)
			}
		}
	}
	return m, nil
}

// Backend is the backend in use.
func (m *Manager) Backend() string { return m.backend }

// Underlay returns the original resolvers the forwarder uses.
func (m *Manager) Underlay() []netip.AddrPort {
	return append([]netip.AddrPort(nil), m.opts.Underlay...)
}

// SetControls sets the socket control functions: underlay for queries to
// the original resolvers (the tunnel's fwmark, VpnService.protect), and
// tunnel for queries to the tunnel's servers (nil: bound to the
// Settings' Link on Linux).
func (m *Manager) SetControls(underlay, tunnel func(fd int) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setControlsLocked(underlay, tunnel)
}

func (m *Manager) setControlsLocked(underlay, tunnel func(fd int) error) {
	m.ctl = controls{underlay, tunnel}
	if m.fwd != nil {
		if tunnel == nil && m.link != "" {
			tunnel = bindToDevice(m.link)
		}
		store(&m.fwd.underlayCtl, underlay)
		store(&m.fwd.tunnelCtl, tunnel)
	}
}

type controls struct{ underlay, tunnel func(fd int) error }

func store(p interface{ Store(*func(int) error) }, fn func(int) error) {
	if fn == nil {
		p.Store(nil)
		return
	}
	p.Store(&fn)
}

// Apply puts s into effect: the first call records the state and changes
// the system, later ones (after a failover or rekey) update it and
// release queries held by Hold.
func (m *Manager) Apply(s Settings) error {
	if len(s.Servers) == 0 {
		return errors.New("dnsconfig: the gateway assigned no DNS server")
	}
	if !s.All && len(s.Domains) == 0 {
		s.All = true
	}
	if s.Link != "" && !validLinkName(s.Link) {
		return fmt.Errorf("dnsconfig: link %q is not an interface name", s.Link)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		// A connect that finished after Close must not change the
		// system again: nothing would restore it.
		return errors.New("dnsconfig: closed")
	}
	if m.backend == BackendResolved {
		if s.Link == "" {
			return errors.New("dnsconfig: systemd-resolved needs the TUN's name")
		}
		return m.applyResolved(s)
	}
	if m.st != nil {
		if s.Link != m.link {
			m.link = s.Link
			m.setControlsLocked(m.ctl.underlay, m.ctl.tunnel)
		}
		m.fwd.set(s)
		return nil
	}
	m.link = s.Link
	st, err := snapshot(m.opts.ResolvConf)
	if err != nil {
		return err
	}
	port := m.opts.tunnelPort
	if port == 0 {
		port = 53
	}
	fwd := newForwarder(m.opts.Underlay, port, m.opts.Hold, m.log)
	m.fwd = fwd
	m.setControlsLocked(m.ctl.underlay, m.ctl.tunnel)
	fwd.set(s)
	if err := fwd.start(m.opts.Listen); err != nil {
		m.fwd = nil
		return err
	}
	st.Written = resolvConfFor(m.opts.Listen, st.Original)
	if err := saveState(m.opts.StateDir, st); err != nil {
		fwd.stop()
		m.fwd = nil
		return err
	}
	if err := writeFile(st, st.Written); err != nil {
		// Partly written, perhaps: put it back as recorded.
		if rerr := restoreFile(st, m.log); rerr == nil {
			_ = removeState(m.opts.StateDir)
		}
		fwd.stop()
		m.fwd = nil
		return err
	}
	m.st = st
	m.log.Info("DNS through the tunnel", "backend", m.backend, "servers", serverStrings(s.Servers),
		"domains", s.Domains, "all", s.All, "forwarder", m.opts.Listen, "resolv_conf", m.opts.ResolvConf)
	return nil
}

func (m *Manager) applyResolved(s Settings) error {
	if m.st == nil || m.st.Link != s.Link {
		if m.st != nil {
			// A new TUN: the old link went with the old one.
			_ = revertLink(m.opts.Run, m.st.Link)
		}
		st := &state{Version: stateVersion, PID: os.Getpid(), Backend: BackendResolved, Link: s.Link}
		if err := saveState(m.opts.StateDir, st); err != nil {
			return err
		}
		m.st = st
	}
	if err := applyResolved(m.opts.Run, s.Link, s); err != nil {
		return err
	}
	m.log.Info("DNS through the tunnel", "backend", m.backend, "link", s.Link,
		"servers", serverStrings(s.Servers), "domains", s.Domains, "all", s.All)
	return nil
}

// Hold makes queries for the tunnel wait (up to Options.Hold) until the
// next Apply: the tunnel is failing over, and they must not leak to the
// underlay meanwhile.
func (m *Manager) Hold() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fwd != nil {
		m.fwd.holdQueries()
	}
}

// Close restores what Apply changed, exactly, and removes the record;
// later Applies fail.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.st == nil {
		return nil
	}
	err := restore(m.st, m.opts.Run, m.log)
	if err == nil {
		err = removeState(m.opts.StateDir)
	}
	if m.fwd != nil {
		m.fwd.stop()
		m.fwd = nil
	}
	m.st = nil
	return err
}

var resolvedStub = netip.MustParseAddr("127.0.0.53")

func onlyStub(s []netip.AddrPort) bool {
	if len(s) == 0 {
		return false
	}
	for _, a := range s {
		if a.Addr() != resolvedStub {
			return false
		}
	}
	return true
}
