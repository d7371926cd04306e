// Package resolver resolves the client's gateway names with the
// underlying network's DNS servers, never through the tunnel: the servers
// are captured before the tunnel changes the system's DNS, every socket
// is passed to a control function (Android's VpnService.protect, the
// tunnel's fwmark on Linux), and answers are cached with their TTL and
// refreshed in the background, so that a failover finds every A and AAAA
// record of a gateway without asking anyone.
package resolver

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

// Limits of the cache: a TTL below MinTTL (or Options.MinTTL) is raised
// (a gateway name with TTL 0 would otherwise be looked up on every
// failover), one above MaxTTL lowered; FallbackTTL is kept for answers of the system resolver, which
// gives no TTL.
const (
	MinTTL      = 5 * time.Second
	MaxTTL      = time.Hour
	FallbackTTL = time.Minute
	// refreshAt is the share of a TTL after which an entry is refreshed.
	refreshAt = 0.75
	// retryEvery paces refreshes of an entry whose last refresh failed.
	retryEvery = 10 * time.Second
	maxNames   = 256
)

// Options configure a Resolver.
type Options struct {
	// Servers are the underlying network's DNS servers, in order. Empty:
	// the system resolver (net.DefaultResolver), without protection or
	// TTLs; use it only where no servers can be known.
	Servers []netip.AddrPort
	// Control, if set, is called with each socket's descriptor before it
	// sends (VpnService.protect). SetControl replaces it later.
	Control func(fd int) error
	// Timeout bounds one query to one server (default 2 s).
	Timeout time.Duration
	// MinTTL is the least time an answer is kept (default MinTTL); a
	// larger one spares a mobile device wake-ups for short-lived names.
	MinTTL time.Duration
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// Resolver is a cache of gateway names. It is safe for concurrent use.
type Resolver struct {
	servers []netip.AddrPort
	timeout time.Duration
	minTTL  time.Duration
	log     *slog.Logger
	control atomic.Pointer[func(fd int) error]
	queries atomic.Uint64
	running atomic.Int32 // Run loops refreshing the cache

	mu    sync.Mutex
	names map[string]*entry
	wake  chan struct{}
}

type entry struct {
	addrs   []netip.Addr
	fetched time.Time
	ttl     time.Duration
	failed  time.Time // last failed refresh (zero: none since fetched)
	busy    bool      // a refresh is under way
}

// New returns a resolver asking opts.Servers.
func New(opts Options) *Resolver {
	r := &Resolver{servers: append([]netip.AddrPort(nil), opts.Servers...), timeout: opts.Timeout,
		minTTL: min(max(opts.MinTTL, MinTTL), MaxTTL), log: opts.Logger, names: map[string]*entry{}, wake: make(chan struct{}, 1)}
	if r.timeout <= 0 {
		r.timeout = 2 * time.Second
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if opts.Control != nil {
		r.SetControl(opts.Control)
	}
	return r
}

// Servers returns the servers the resolver asks.
func (r *Resolver) Servers() []netip.AddrPort { return append([]netip.AddrPort(nil), r.servers...) }

// SetControl replaces the socket control function, e.g. once the tunnel
// is up and its fwmark known.
func (r *Resolver) SetControl(fn func(fd int) error) {
	if fn == nil {
		r.control.Store(nil)
		return
	}
	r.control.Store(&fn)
}

// Queries counts the DNS queries sent (A and AAAA count one each).
func (r *Resolver) Queries() uint64 { return r.queries.Load() }

// Lookup returns every address of host: the literal itself, or its A
// records then its AAAA records, each in the order the server gave. While
// Run runs, a cached answer is returned at once, even past its TTL (Run
// refreshes it); only a name never resolved is asked for now. Without
// Run, an expired answer is asked for again, and still used if that
// fails.
func (r *Resolver) Lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	r.mu.Lock()
	var cached []netip.Addr
	if e, ok := r.names[name]; ok {
		cached = append([]netip.Addr(nil), e.addrs...)
		stale := time.Since(e.fetched) >= e.ttl
		r.mu.Unlock()
		if !stale {
			return cached, nil
		}
		if r.running.Load() > 0 {
			r.kick()
			return cached, nil
		}
	} else {
		r.mu.Unlock()
	}
	addrs, ttl, err := r.query(ctx, name)
	if err != nil {
		if cached != nil {
			r.log.Info("looking a gateway name up again failed; using its old addresses", "name", name, "err", err)
			return cached, nil
		}
		return nil, err
	}
	r.mu.Lock()
	if e, ok := r.names[name]; ok {
		e.addrs, e.ttl, e.fetched, e.failed = addrs, ttl, time.Now(), time.Time{}
	} else if len(r.names) < maxNames {
		r.names[name] = &entry{addrs: addrs, fetched: time.Now(), ttl: ttl}
	}
	r.mu.Unlock()
	r.kick()
	return append([]netip.Addr(nil), addrs...), nil
}

func (r *Resolver) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run refreshes every cached name before its TTL ends, until ctx is done:
// the client runs it while connected, so that the addresses are current
// when a failover needs them. A refresh that fails keeps the old
// addresses and is retried every 10 s.
func (r *Resolver) Run(ctx context.Context) {
	r.running.Add(1)
	defer r.running.Add(-1)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next := r.refreshDue(ctx)
		t.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
	}
}

// refreshDue refreshes the entries that are due (one goroutine each) and
// returns when the next one will be.
func (r *Resolver) refreshDue(ctx context.Context) time.Time {
	now := time.Now()
	next := now.Add(MaxTTL)
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, e := range r.names {
		due := e.fetched.Add(time.Duration(float64(e.ttl) * refreshAt))
		if !e.failed.IsZero() {
			due = e.failed.Add(retryEvery)
		}
		if e.busy {
			continue
		}
		if !due.After(now) {
			e.busy = true
			go r.refresh(ctx, name)
			continue
		}
		if due.Before(next) {
			next = due
		}
	}
	return next
}

func (r *Resolver) refresh(ctx context.Context, name string) {
	addrs, ttl, err := r.query(ctx, name)
	r.mu.Lock()
	defer r.kick()
	defer r.mu.Unlock()
	e := r.names[name]
	if e == nil {
		return
	}
	e.busy = false
	if err != nil {
		if ctx.Err() == nil {
			r.log.Info("refreshing a gateway name failed; keeping its addresses", "name", name, "err", err)
		}
		e.failed = time.Now()
		return
	}
	e.addrs, e.ttl, e.fetched, e.failed = addrs, ttl, time.Now(), time.Time{}
}

// query asks the servers in turn for A and AAAA records of name.
func (r *Resolver) query(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	if len(r.servers) == 0 {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
		if err != nil {
			return nil, 0, err
		}
		for i := range addrs {
			addrs[i] = addrs[i].Unmap()
		}
		return addrs, FallbackTTL, nil
	}
	var errs []error
	for _, srv := range r.servers {
		addrs, ttl, err := r.ask(ctx, srv, name)
		if err == nil {
			return addrs, ttl, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		var nx *NameError
		if errors.As(err, &nx) {
			break // an authoritative "no such name": no other server is asked
		}
	}
	return nil, 0, errors.Join(errs...)
}

// NameError is a server's answer that a name has no address.
type NameError struct {
	Name, Server string
	Rcode        int
}

func (e *NameError) Error() string {
	if e.Rcode == dns.RcodeSuccess {
		return fmt.Sprintf("%s: no A or AAAA record (server %s)", e.Name, e.Server)
	}
	return fmt.Sprintf("%s: %s from %s", e.Name, dns.RcodeToString[e.Rcode], e.Server)
}

// ask sends the A and AAAA queries to one server at once.
func (r *Resolver) ask(ctx context.Context, srv netip.AddrPort, name string) ([]netip.Addr, time.Duration, error) {
	type result struct {
		addrs []netip.Addr
		ttl   uint32
		rcode int
		err   error
	}
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA}
	res := make([]result, len(qtypes))
	var wg sync.WaitGroup
	for i, qt := range qtypes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := r.exchange(ctx, srv, name, qt)
			if err != nil {
				res[i].err = err
				return
			}
			res[i].rcode = m.Rcode
			res[i].addrs, res[i].ttl = Addresses(m, name)
		}()
	}
	wg.Wait()
	var addrs []netip.Addr
	ttl := uint32(MaxTTL / time.Second)
	rcode := dns.RcodeSuccess
	for _, x := range res {
		if x.err != nil {
			return nil, 0, fmt.Errorf("%s: server %s: %w", name, srv, x.err)
		}
		if x.rcode != dns.RcodeSuccess {
			rcode = x.rcode
			continue
		}
		addrs = append(addrs, x.addrs...)
		if len(x.addrs) > 0 {
			ttl = min(ttl, x.ttl)
		}
	}
	if len(addrs) == 0 {
		if rcode == dns.RcodeSuccess || rcode == dns.RcodeNameError {
			return nil, 0, &NameError{Name: name, Server: srv.String(), Rcode: rcode}
		}
		return nil, 0, fmt.Errorf("%s: server %s answered %s", name, srv, dns.RcodeToString[rcode])
	}
	d := min(max(time.Duration(ttl)*time.Second, r.minTTL), MaxTTL)
	return addrs, d, nil
}

// exchange sends one query over UDP, and again over TCP if the answer is
// truncated.
func (r *Resolver) exchange(ctx context.Context, srv netip.AddrPort, name string, qt uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qt)
	q.SetEdns0(1232, false)
	var m *dns.Msg
	var err error
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: r.timeout, Dialer: &net.Dialer{Timeout: r.timeout, Control: r.dialControl}}
		r.queries.Add(1)
		m, _, err = c.ExchangeContext(ctx, q, srv.String())
		if err != nil || !m.Truncated {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if m.Id != q.Id {
		return nil, errors.New("answer to another query")
	}
	return m, nil
}

func (r *Resolver) dialControl(_, _ string, rc syscall.RawConn) error {
	fn := r.control.Load()
	if fn == nil {
		return nil
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = (*fn)(int(fd)) }); err != nil {
		return err
	}
	if ferr != nil {
		return fmt.Errorf("protecting the DNS socket: %w", ferr)
	}
	return nil
}

// Addresses returns the A and AAAA records of an answer that belong to
// name, following CNAMEs in the answer, with the smallest TTL among them.
func Addresses(m *dns.Msg, name string) ([]netip.Addr, uint32) {
	owners := map[string]bool{strings.ToLower(dns.Fqdn(name)): true}
	// CNAME chains may come in any order; follow them a bounded number of times.
	for range 8 {
		grew := false
		for _, rr := range m.Answer {
			if c, ok := rr.(*dns.CNAME); ok && owners[strings.ToLower(c.Hdr.Name)] && !owners[strings.ToLower(c.Target)] {
				owners[strings.ToLower(c.Target)] = true
				grew = true
			}
		}
		if !grew {
			break
		}
	}
	var out []netip.Addr
	ttl := ^uint32(0)
	for _, rr := range m.Answer {
		if !owners[strings.ToLower(rr.Header().Name)] {
			continue
		}
		var a netip.Addr
		switch v := rr.(type) {
		case *dns.A:
			a, _ = netip.AddrFromSlice(v.A.To4())
		case *dns.AAAA:
			a, _ = netip.AddrFromSlice(v.AAAA.To16())
		default:
			continue
		}
		if !a.IsValid() || a.IsUnspecified() {
			continue
		}
		out = append(out, a.Unmap())
		ttl = min(ttl, rr.Header().Ttl)
	}
	return out, ttl
}
