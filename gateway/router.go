package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/qcdvpn/qcdvpn/dataplane"
	"github.com/qcdvpn/qcdvpn/esp"
	"github.com/qcdvpn/qcdvpn/ike"
	"github.com/qcdvpn/qcdvpn/internal/ippkt"
	"github.com/qcdvpn/qcdvpn/tun"
)

// maxPacket is the largest IP packet a TUN read may return.
const maxPacket = 65535

// Sender sends sealed ESP packets to one client; the router shares the
// client data plane's buffer layout (dataplane.ReadOffset and the rest).
type Sender = dataplane.Sender

// RouterStats are the router's counters, summed over all clients.
type RouterStats struct {
	// PacketsIn and BytesIn count inner packets written to the TUN;
	// PacketsOut and BytesOut inner packets sealed and sent.
	PacketsIn, BytesIn, PacketsOut, BytesOut uint64
	// Inbound drops: unknown SPI, failed authentication, replayed,
	// malformed, inner addresses outside the SA's selectors, SA expired.
	DropNoSA, DropAuth, DropReplay, DropMalformed, DropSelector, DropExpired uint64
	// Outbound drops: no client owns the destination, the source is
	// outside the client's TSr, the SA is exhausted or its limits reached.
	DropOutNoRoute, DropOutSelector, DropOutLimit uint64
	// SendErrors counts batches the Sender failed to send.
	SendErrors uint64
}

type routerCounters struct {
	packetsIn, bytesIn, packetsOut, bytesOut                                 atomic.Uint64
	dropNoSA, dropAuth, dropReplay, dropMalformed, dropSelector, dropExpired atomic.Uint64
	dropOutNoRoute, dropOutSelector, dropOutLimit, sendErrors                atomic.Uint64
}

// ownerCounters are one owner's packet counters; the same pointer lives in
// every snapshot, so counts survive rekeys.
type ownerCounters struct {
	in, out atomic.Uint64
}

// pair is the writers' record of one Child SA, keyed by its inbound SPI.
// Guarded by Router.mu; snapshots copy what the hot path needs.
type pair struct {
	owner  any
	spiIn  uint32
	in     *esp.Inbound  // nil when only SendOn named this pair
	out    *esp.Outbound // nil for AddInbound
	spiOut uint32
	// sending is false while a prepared outbound SA waits for SendOn.
	sending bool
	// since orders sending pairs: the newest wins a destination.
	since uint64
	tsi   []netip.Prefix // the client's side
	tsr   []netip.Prefix // the gateway's side
	peer  netip.AddrPort
	udp   *net.UDPAddr
	ctrs  *ownerCounters
}

// inEntry is what HandleESP needs of one inbound SA. Immutable.
type inEntry struct {
	in       *esp.Inbound
	tsi, tsr []netip.Prefix
	ctrs     *ownerCounters
}

// outEntry is what Run needs of one outbound SA. Immutable.
type outEntry struct {
	out  *esp.Outbound
	tsr  []netip.Prefix
	peer netip.AddrPort
	udp  *net.UDPAddr
	ctrs *ownerCounters
}

// netRoute sends a destination prefix wider than one address to an SA.
type netRoute struct {
	pfx   netip.Prefix
	since uint64
	e     *outEntry
}

// table is an immutable snapshot of every installed SA, swapped atomically.
type table struct {
	in     map[uint32]*inEntry
	hosts  map[netip.Addr]*outEntry // single-address TSi: the usual virtual IP
	nets   []netRoute               // longest prefix first, then newest
	owners map[any]*ownerCounters
}

var emptyTable = &table{}

// Router is the gateway's ESP data plane for many clients: it opens ESP
// from any client into the TUN device and seals what the TUN device
// returns for the client owning the destination. The hot paths (HandleESP,
// Run) read an immutable snapshot through one atomic load and take no
// lock; control methods rebuild the snapshot under a mutex.
type Router struct {
	dev  tun.Device
	send Sender
	log  *slog.Logger

	tab atomic.Pointer[table]
	c   routerCounters

	mu      sync.Mutex // writers: pairs, owners, clock
	pairs   map[uint32]*pair
	owners  map[any]*ownerCounters
	clock   uint64
	unknown atomic.Pointer[func(spi uint32, from netip.AddrPort)]

	// Inbound scratch, used only from the transport's read goroutine.
	inBufs [][]byte
	// writeMu keeps TUN writes out of Close: the netstack device panics
	// when written after closing. Taken once per batch.
	writeMu sync.RWMutex
	closed  bool

	closeOnce sync.Once
	done      chan struct{}

	// crew seals and opens batches on several cores; Run starts it and
	// stops it when it returns.
	crew atomic.Pointer[dataplane.Crew]
	in   routerInBatch
}

// routerInBatch is HandleESP's per-batch state, reused (one read goroutine).
type routerInBatch struct {
	es   []*inEntry
	pkts [][]byte
	res  [][]byte // what to write to the TUN, nil if dropped
	wg   sync.WaitGroup
	f    func(lo, hi int)
}

// NewRouter builds a router over dev that sends through send. log may be nil.
func NewRouter(dev tun.Device, send Sender, log *slog.Logger) *Router {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Router{
		dev: dev, send: send, log: log,
		pairs:  make(map[uint32]*pair),
		owners: make(map[any]*ownerCounters),
		done:   make(chan struct{}),
	}
	r.tab.Store(emptyTable)
	return r
}

type installMode int

const (
	modeBoth     installMode = iota // inbound and outbound now
	modePrepare                     // inbound now, outbound on SendOn
	modeInbound                     // inbound only
	modeOutbound                    // outbound only
)

// Install accepts c's inbound SA and sends on its outbound SA from now on,
// for packets to c's TSi (the client's side), to peer. owner groups the
// SAs of one IKE SA (the *ike.Session, say); it must be comparable. For a
// destination the newest SA sending to it wins, so a rekey's new SA takes
// over from the old one, which stays accepted until Retire.
func (r *Router) Install(owner any, c *ike.ChildSA, peer netip.AddrPort, lim esp.Limits) error {
	return r.install(owner, c, peer, lim, modeBoth)
}

// Prepare accepts c's inbound SA now but sends on it only after SendOn:
// the responder of a rekey keeps sending on the old SA until the initiator
// surely has the new one (RFC 7296 §2.8).
func (r *Router) Prepare(owner any, c *ike.ChildSA, peer netip.AddrPort, lim esp.Limits) error {
	return r.install(owner, c, peer, lim, modePrepare)
}

// AddInbound accepts traffic on c's inbound SA too and leaves sending alone
// (the losing SA of a simultaneous rekey).
func (r *Router) AddInbound(owner any, c *ike.ChildSA, peer netip.AddrPort, lim esp.Limits) error {
	return r.install(owner, c, peer, lim, modeInbound)
}

// SendOn sends on c's outbound SA from now on (after Prepare or AddInbound
// of c; a prepared SA keeps its sequence numbers).
func (r *Router) SendOn(owner any, c *ike.ChildSA, peer netip.AddrPort, lim esp.Limits) error {
	return r.install(owner, c, peer, lim, modeOutbound)
}

func (r *Router) install(owner any, c *ike.ChildSA, peer netip.AddrPort, lim esp.Limits, mode installMode) error {
	switch {
	case !comparableKey(owner):
		return errors.New("gateway: router: owner is nil or not comparable")
	case c == nil:
		return errors.New("gateway: router: no child SA")
	case c.SPIIn == 0 || c.SPIOut == 0:
		return errors.New("gateway: router: child SA with SPI 0")
	case !peer.IsValid() || peer.Port() == 0:
		return fmt.Errorf("gateway: router: invalid peer address %s", peer)
	}
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	suite := esp.Suite{Encr: c.Suite.Encr, KeyBits: c.Suite.KeyBits, Integ: c.Suite.Integ, ESN: c.Suite.ESN}
	now := time.Now()

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.isClosed() {
		return errors.New("gateway: router: closed")
	}
	p := r.pairs[c.SPIIn]
	if p != nil && p.owner != owner {
		return fmt.Errorf("gateway: router: inbound SPI %08x belongs to another IKE SA", c.SPIIn)
	}
	// Build the new SAs before touching p, so that an error changes nothing.
	var newIn *esp.Inbound
	if mode != modeOutbound && (p == nil || p.in == nil) {
		in, err := esp.NewInbound(c.SPIIn, suite, c.EncrIn, c.IntegIn, lim, now)
		if err != nil {
			return fmt.Errorf("gateway: router: inbound SA: %w", err)
		}
		newIn = in
	}
	var newOut *esp.Outbound
	// An outbound SA already prepared or in use keeps its sequence numbers.
	if mode != modeInbound && (p == nil || p.out == nil || p.spiOut != c.SPIOut) {
		out, err := esp.NewOutbound(c.SPIOut, suite, c.EncrOut, c.IntegOut, lim, now)
		if err != nil {
			return fmt.Errorf("gateway: router: outbound SA: %w", err)
		}
		if out.Headroom() > dataplane.ReadOffset {
			return fmt.Errorf("gateway: router: ESP header of %d bytes does not fit the read offset", out.Headroom())
		}
		newOut = out
	}
	if p == nil {
		p = &pair{owner: owner, spiIn: c.SPIIn}
		r.pairs[c.SPIIn] = p
	}
	ctrs := r.owners[owner]
	if ctrs == nil {
		ctrs = new(ownerCounters)
		r.owners[owner] = ctrs
	}
	p.ctrs = ctrs
	p.tsi, p.tsr = ike.Prefixes(c.TSi), ike.Prefixes(c.TSr)
	p.peer, p.udp = peer, net.UDPAddrFromAddrPort(peer)
	if newIn != nil {
		p.in = newIn
	}
	if newOut != nil {
		p.out, p.spiOut, p.sending = newOut, c.SPIOut, false
	}
	if mode == modeBoth || mode == modeOutbound {
		r.clock++
		p.sending, p.since = true, r.clock
	}
	r.publish()
	return nil
}

// SetPeer sends owner's traffic to peer from now on (MOBIKE, NAT rebinding).
func (r *Router) SetPeer(owner any, peer netip.AddrPort) {
	if !comparableKey(owner) || !peer.IsValid() {
		return
	}
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.pairs {
		if p.owner == owner {
			p.peer, p.udp = peer, net.UDPAddrFromAddrPort(peer)
		}
	}
	r.publish()
}

// Retire removes the SA pair whose inbound SPI is spiIn (its Child SA was
// deleted). If it was sending, the owner's next newest SA takes over.
func (r *Router) Retire(spiIn uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pairs[spiIn]; !ok {
		return
	}
	delete(r.pairs, spiIn)
	r.publish()
}

// RemoveOwner drops every SA of owner: its IKE SA ended.
func (r *Router) RemoveOwner(owner any) {
	if !comparableKey(owner) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for spi, p := range r.pairs {
		if p.owner == owner {
			delete(r.pairs, spi)
		}
	}
	delete(r.owners, owner)
	r.publish()
}

// SetUnknownSPI installs f, called from the transport's read goroutine for
// each ESP packet whose SPI no installed SA has, with the SPI and the
// packet's source; the gateway answers with INVALID_SPI (RFC 7296 §1.5,
// with a QCD token per RFC 6290 §4.5). f must not block or keep the
// packet; nil removes it.
func (r *Router) SetUnknownSPI(f func(spi uint32, from netip.AddrPort)) {
	if f == nil {
		r.unknown.Store(nil)
		return
	}
	r.unknown.Store(&f)
}

// OwnerTraffic returns owner's packet counters: in counts authenticated
// inbound packets (proof that the client is alive), out the packets sealed
// for it. For ike.Hooks.Traffic. Unknown owners have 0, 0.
func (r *Router) OwnerTraffic(owner any) (in, out uint64) {
	if !comparableKey(owner) {
		return 0, 0
	}
	c := r.tab.Load().owners[owner]
	if c == nil {
		return 0, 0
	}
	return c.in.Load(), c.out.Load()
}

// Stats returns a snapshot of the counters.
func (r *Router) Stats() RouterStats {
	c := &r.c
	return RouterStats{
		PacketsIn: c.packetsIn.Load(), BytesIn: c.bytesIn.Load(),
		PacketsOut: c.packetsOut.Load(), BytesOut: c.bytesOut.Load(),
		DropNoSA: c.dropNoSA.Load(), DropAuth: c.dropAuth.Load(), DropReplay: c.dropReplay.Load(),
		DropMalformed: c.dropMalformed.Load(), DropSelector: c.dropSelector.Load(), DropExpired: c.dropExpired.Load(),
		DropOutNoRoute: c.dropOutNoRoute.Load(), DropOutSelector: c.dropOutSelector.Load(),
		DropOutLimit: c.dropOutLimit.Load(), SendErrors: c.sendErrors.Load(),
	}
}

// publish rebuilds the snapshot from the pairs. Caller holds r.mu.
func (r *Router) publish() {
	t := &table{
		in:     make(map[uint32]*inEntry, len(r.pairs)),
		hosts:  make(map[netip.Addr]*outEntry),
		owners: make(map[any]*ownerCounters, len(r.owners)),
	}
	for k, v := range r.owners {
		t.owners[k] = v
	}
	hostSince := make(map[netip.Addr]uint64)
	for _, p := range r.pairs {
		if p.in != nil {
			t.in[p.spiIn] = &inEntry{in: p.in, tsi: p.tsi, tsr: p.tsr, ctrs: p.ctrs}
		}
		if p.out == nil || !p.sending {
			continue
		}
		e := &outEntry{out: p.out, tsr: p.tsr, peer: p.peer, udp: p.udp, ctrs: p.ctrs}
		for _, pfx := range p.tsi {
			if pfx.IsSingleIP() {
				a := pfx.Addr().Unmap()
				if _, ok := t.hosts[a]; !ok || hostSince[a] < p.since {
					t.hosts[a], hostSince[a] = e, p.since
				}
				continue
			}
			t.nets = append(t.nets, netRoute{pfx: pfx, since: p.since, e: e})
		}
	}
	slices.SortFunc(t.nets, func(a, b netRoute) int {
		if a.pfx.Bits() != b.pfx.Bits() {
			return b.pfx.Bits() - a.pfx.Bits()
		}
		return cmp.Compare(b.since, a.since)
	})
	r.tab.Store(t)
}

// route returns the outbound SA for dst: longest prefix, then newest.
func (t *table) route(dst netip.Addr) *outEntry {
	if e := t.hosts[dst]; e != nil {
		return e
	}
	for i := range t.nets {
		if t.nets[i].pfx.Contains(dst) {
			return t.nets[i].e
		}
	}
	return nil
}

// Close stops Run and inbound delivery and drops every SA; once it returns
// no more packets are written to the device. It does not close the device.
func (r *Router) Close() {
	r.closeOnce.Do(func() {
		// Take the write lock while Run still reads: a netstack write can
		// wait for its answer to be read.
		r.writeMu.Lock()
		r.closed = true
		r.writeMu.Unlock()
		r.mu.Lock()
		close(r.done)
		clear(r.pairs)
		r.publish()
		r.mu.Unlock()
	})
}

// Run reads the TUN device in batches and sends each packet, sealed, to the
// client owning its destination, until ctx ends or Close is called, and the
// device is closed or fails. After ctx ends or Close, Run drops what it
// reads until the read fails: a netstack device blocks writers of answers
// until they are read, and panics when closed under a blocked writer. A
// read blocks until a packet arrives or the device is closed, so callers
// close the device after Close to end Run. Call Run once.
func (r *Router) Run(ctx context.Context) error {
	batch := max(r.dev.BatchSize(), 1)
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, dataplane.ReadOffset+maxPacket+dataplane.Tailroom)
	}
	sizes := make([]int, batch)
	scratch := make([]ipv4.Message, batch)
	type group struct {
		e    *outEntry
		pkts [][]byte
	}
	groups := make([]group, 0, batch)
	crew := dataplane.NewCrew(-1)
	r.crew.Store(crew)
	defer func() {
		r.crew.Store(nil)
		crew.Stop()
	}()
	// The packets that passed the checks, with their SA and sequence
	// number, reserved in read order; sealed on the crew.
	var (
		idx    = make([]int, batch)
		es     = make([]*outEntry, batch)
		nhs    = make([]byte, batch)
		seqs   = make([]uint64, batch)
		sealed = make([][]byte, batch)
		wg     sync.WaitGroup
	)
	seal := func(lo, hi int) {
		for k := lo; k < hi; k++ {
			i := idx[k]
			p, err := es[k].out.SealSeq(bufs[i], dataplane.ReadOffset, sizes[i], nhs[k], seqs[k])
			if err != nil {
				r.c.dropOutLimit.Add(1)
			}
			sealed[k] = p
		}
	}
	for {
		n, err := r.dev.Read(bufs, sizes, dataplane.ReadOffset)
		if ctx.Err() != nil || r.isClosed() {
			return r.drain(ctx, bufs, sizes, err)
		}
		if err != nil {
			if errors.Is(err, wgtun.ErrTooManySegments) {
				continue
			}
			return fmt.Errorf("gateway: reading TUN: %w", err)
		}
		t := r.tab.Load()
		k := 0
		for i := 0; i < n; i++ {
			if sizes[i] <= 0 || sizes[i] > maxPacket {
				continue
			}
			pkt := bufs[i][dataplane.ReadOffset : dataplane.ReadOffset+sizes[i]]
			nh, src, dst, ok := ippkt.Header(pkt)
			var e *outEntry
			if ok {
				e = t.route(dst)
			}
			if e == nil {
				r.c.dropOutNoRoute.Add(1)
				continue
			}
			if !ippkt.Contains(e.tsr, src) {
				r.c.dropOutSelector.Add(1)
				continue
			}
			seq, err := e.out.Reserve()
			if err != nil {
				r.c.dropOutLimit.Add(1)
				continue
			}
			idx[k], es[k], nhs[k], seqs[k] = i, e, nh, seq
			k++
		}
		crew.Do(k, &wg, seal)
		for i := range groups {
			groups[i].pkts = groups[i].pkts[:0]
		}
		groups = groups[:0]
		var packets, bytes uint64
		for j := 0; j < k; j++ {
			e := es[j]
			es[j] = nil
			if sealed[j] == nil {
				continue
			}
			e.ctrs.out.Add(1)
			packets++
			bytes += uint64(sizes[idx[j]])
			// One batch per peer; a batch rarely holds more than a few.
			g := -1
			for gi := range groups {
				if groups[gi].e.peer == e.peer {
					g = gi
					break
				}
			}
			if g < 0 {
				groups = groups[:len(groups)+1]
				g = len(groups) - 1
				groups[g].e = e
				groups[g].pkts = groups[g].pkts[:0]
			}
			groups[g].pkts = append(groups[g].pkts, sealed[j])
			sealed[j] = nil
		}
		r.c.packetsOut.Add(packets)
		r.c.bytesOut.Add(bytes)
		for j := range groups {
			if err := r.send.SendESPBatch(groups[j].pkts, groups[j].e.udp, scratch); err != nil {
				r.c.sendErrors.Add(1)
				r.log.Debug("sending ESP", "peer", groups[j].e.peer, "err", err)
			}
		}
	}
}

func (r *Router) isClosed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// drain reads and drops packets until the device fails (see Run).
func (r *Router) drain(ctx context.Context, bufs [][]byte, sizes []int, err error) error {
	for err == nil || errors.Is(err, wgtun.ErrTooManySegments) {
		_, err = r.dev.Read(bufs, sizes, dataplane.ReadOffset)
	}
	return ctx.Err()
}

// HandleESP opens a batch of received ESP packets in place and writes the
// inner packets to the TUN device in one batch. It is the transport's
// ike.ESPHandler and runs on its single read goroutine.
func (r *Router) HandleESP(pkts []ike.ESPPacket) {
	r.writeMu.RLock()
	defer r.writeMu.RUnlock()
	if r.closed {
		return
	}
	t := r.tab.Load()
	var unknown func(uint32, netip.AddrPort)
	if f := r.unknown.Load(); f != nil {
		unknown = *f
	}
	b := &r.in
	if b.f == nil {
		b.f = r.openChunk
	}
	b.es, b.pkts = b.es[:0], b.pkts[:0]
	for _, p := range pkts {
		spi, ok := esp.SPIOf(p.Data)
		if !ok {
			r.c.dropMalformed.Add(1)
			continue
		}
		e := t.in[spi]
		if e == nil {
			r.c.dropNoSA.Add(1)
			if unknown != nil {
				unknown(spi, p.From)
			}
			continue
		}
		b.es = append(b.es, e)
		b.pkts = append(b.pkts, p.Data)
	}
	n := len(b.pkts)
	b.res = dataplane.Results(b.res, n)
	r.crew.Load().Do(n, &b.wg, b.f)
	w, bytes := dataplane.Gather(b.res, r.inBufs[:0])
	clear(b.es)
	clear(b.pkts) // no references to the transport's buffers kept
	r.inBufs = w[:0]
	if len(w) == 0 {
		return
	}
	r.c.packetsIn.Add(uint64(len(w)))
	r.c.bytesIn.Add(bytes)
	if _, err := r.dev.Write(w, dataplane.WriteOffset); err != nil {
		r.log.Debug("writing TUN", "err", err)
	}
}

// openChunk opens packets [lo, hi) of the inbound batch in place and sets
// what to write for each (nil: dropped, counted). It runs on the crew.
func (r *Router) openChunk(lo, hi int) {
	b := &r.in
	for k := lo; k < hi; k++ {
		b.res[k] = nil
		e, data := b.es[k], b.pkts[k]
		inner, _, err := e.in.Open(data)
		if err != nil {
			switch {
			case errors.Is(err, esp.ErrDummy):
				e.ctrs.in.Add(1) // authenticated: the client is alive
			case errors.Is(err, esp.ErrAuth):
				r.c.dropAuth.Add(1)
			case errors.Is(err, esp.ErrReplay):
				r.c.dropReplay.Add(1)
			case errors.Is(err, esp.ErrLifetime):
				r.c.dropExpired.Add(1)
			default:
				r.c.dropMalformed.Add(1)
			}
			continue
		}
		e.ctrs.in.Add(1)
		_, src, dst, ok := ippkt.Header(inner)
		if !ok || !ippkt.Contains(e.tsi, src) || !ippkt.Contains(e.tsr, dst) {
			r.c.dropSelector.Add(1)
			continue
		}
		start := e.in.PayloadOffset()
		if start < dataplane.WriteOffset || start+len(inner) > len(data) {
			r.c.dropMalformed.Add(1)
			continue
		}
		b.res[k] = data[start-dataplane.WriteOffset : start+len(inner)]
	}
}

// comparableKey reports whether k can be a map key without panicking.
func comparableKey(k any) bool {
	return k != nil && reflect.ValueOf(k).Comparable()
}
