package dnsconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// maxInflight bounds the queries the forwarder works on at once; more are
// dropped (the stub resolver retries), so a flood cannot exhaust memory.
const maxInflight = 256

// forwarder is a DNS proxy on loopback: queries for the split domains (or
// all of them) go to the tunnel's servers over sockets bound to the TUN,
// the rest to the original servers over sockets that bypass the tunnel.
// While the tunnel is down (a failover), tunnel queries wait up to hold
// for it and are then answered SERVFAIL: they never leave by the
// underlay.
type forwarder struct {
	log      *slog.Logger
	hold     time.Duration
	timeout  time.Duration
	underlay []netip.AddrPort
	udp, tcp *dns.Server
	sem      chan struct{}
	// tunnelPort is where the tunnel's servers listen: 53 (tests change it).
	tunnelPort uint16

	underlayCtl atomic.Pointer[func(fd int) error]
	tunnelCtl   atomic.Pointer[func(fd int) error]

	mu       sync.Mutex
	settings Settings
	ready    chan struct{} // closed while the tunnel carries DNS
	up       bool
	stopped  chan struct{}
}

func newForwarder(underlay []netip.AddrPort, tunnelPort uint16, hold time.Duration, log *slog.Logger) *forwarder {
	return &forwarder{log: log, hold: hold, timeout: 2 * time.Second, underlay: underlay, tunnelPort: tunnelPort,
		sem: make(chan struct{}, maxInflight), ready: make(chan struct{}), stopped: make(chan struct{})}
}

// start listens on addr, UDP and TCP.
func (f *forwarder) start(addr netip.AddrPort) error {
	pc, err := net.ListenPacket("udp", addr.String())
	if err != nil {
		return fmt.Errorf("dnsconfig: forwarder on %s: %w", addr, err)
	}
	l, err := net.Listen("tcp", addr.String())
	if err != nil {
		pc.Close()
		return fmt.Errorf("dnsconfig: forwarder on %s: %w", addr, err)
	}
	f.udp = &dns.Server{PacketConn: pc, Handler: f}
	f.tcp = &dns.Server{Listener: l, Handler: f, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	for _, s := range []*dns.Server{f.udp, f.tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() {
			if err := s.ActivateAndServe(); err != nil {
				f.log.Debug("DNS forwarder stopped", "err", err)
			}
		}()
		<-started
	}
	return nil
}

func (f *forwarder) stop() {
	f.mu.Lock()
	select {
	case <-f.stopped:
	default:
		close(f.stopped)
	}
	f.mu.Unlock()
	for _, s := range []*dns.Server{f.udp, f.tcp} {
		if s != nil {
			_ = s.Shutdown()
		}
	}
}

// set installs the tunnel's settings and releases held queries.
func (f *forwarder) set(s Settings) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settings = s
	if !f.up {
		f.up = true
		close(f.ready)
	}
}

// holdQueries makes tunnel queries wait (failover).
func (f *forwarder) holdQueries() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up {
		f.up = false
		f.ready = make(chan struct{})
	}
}

// toTunnel reports whether name goes to the tunnel's servers.
func toTunnel(s *Settings, name string) bool {
	if s.All {
		return true
	}
	for _, d := range s.Domains {
		if dns.IsSubDomain(dns.Fqdn(d), name) {
			return true
		}
	}
	return false
}

// ServeDNS implements dns.Handler.
func (f *forwarder) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	select {
	case f.sem <- struct{}{}:
		defer func() { <-f.sem }()
	default:
		return // overloaded: drop, the client retries
	}
	if q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 || q.Response {
		f.reply(w, q, dns.RcodeFormatError)
		return
	}
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	name := strings.ToLower(q.Question[0].Name)
	f.mu.Lock()
	s := f.settings
	ready, up := f.ready, f.up
	f.mu.Unlock()
	if !toTunnel(&s, name) {
		f.forward(w, q, network, f.underlay, f.underlayCtl.Load())
		return
	}
	if !up {
		t := time.NewTimer(f.hold)
		select {
		case <-ready:
			t.Stop()
		case <-t.C:
			f.log.Debug("DNS query held past the failover limit", "name", name)
			f.reply(w, q, dns.RcodeServerFailure)
			return
		case <-f.stopped:
			t.Stop()
			f.reply(w, q, dns.RcodeServerFailure)
			return
		}
		f.mu.Lock()
		s = f.settings
		f.mu.Unlock()
	}
	servers := make([]netip.AddrPort, len(s.Servers))
	for i, a := range s.Servers {
		servers[i] = netip.AddrPortFrom(a, f.tunnelPort)
	}
	f.forward(w, q, network, servers, f.tunnelCtl.Load())
}

func (f *forwarder) reply(w dns.ResponseWriter, q *dns.Msg, rcode int) {
	m := new(dns.Msg)
	m.SetRcode(q, rcode)
	_ = w.WriteMsg(m)
}

// forward asks servers in turn and relays the first answer.
func (f *forwarder) forward(w dns.ResponseWriter, q *dns.Msg, network string, servers []netip.AddrPort, ctl *func(fd int) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*f.timeout)
	defer cancel()
	control := func(_, _ string, rc syscall.RawConn) error {
		if ctl == nil {
			return nil
		}
		var ferr error
		if err := rc.Control(func(fd uintptr) { ferr = (*ctl)(int(fd)) }); err != nil {
			return err
		}
		return ferr
	}
	c := &dns.Client{Net: network, Timeout: f.timeout, Dialer: &net.Dialer{Timeout: f.timeout, Control: control}}
	var errs []error
	for _, srv := range servers {
		m, _, err := c.ExchangeContext(ctx, q, srv.String())
		if err == nil {
			m.Id = q.Id
			_ = w.WriteMsg(m)
			return
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(servers) == 0 {
		errs = append(errs, errors.New("no server"))
	}
	f.log.Debug("DNS query failed", "name", q.Question[0].Name, "err", errors.Join(errs...))
	f.reply(w, q, dns.RcodeServerFailure)
}
