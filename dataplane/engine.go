// Package dataplane moves packets between a TUN device and ESP SAs: TUN
// reads are sealed in place and sent in batches over the IKE transport's
// UDP socket; ESP received there is opened in place and written to the TUN
// in batches. The current SAs are swapped atomically, so the hot path takes
// no lock.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	tun "golang.zx2c4.com/wireguard/tun"

	"github.com/qcdvpn/qcdvpn/esp"
	"github.com/qcdvpn/qcdvpn/ike"
	"github.com/qcdvpn/qcdvpn/internal/ippkt"
)

// ReadOffset is where TUN reads put the IP packet: room for the ESP header
// and the largest IV, sealed in place in front of it.
const ReadOffset = 32

// WriteOffset is the headroom TUN writes get in front of the inner packet;
// Linux TUN with offloads needs room for its virtio header there. ESP
// always has at least 16 bytes (header and IV) in front of the payload.
const WriteOffset = 16

// Tailroom covers ESP padding, trailer and ICV.
const Tailroom = 64

// Sender sends sealed ESP packets to the peer (ike.Transport implements it).
type Sender interface {
	SendESPBatch(pkts [][]byte, to *net.UDPAddr, scratch []ipv4.Message) error
}

// Stats are the data plane's counters.
type Stats struct {
	PacketsOut, BytesOut uint64
	PacketsIn, BytesIn   uint64
	// Dropped inbound: failed authentication, replayed, malformed, outside
	// the traffic selectors, unknown SPI.
	DropAuth, DropReplay, DropMalformed, DropSelector, DropNoSA uint64
	// Dropped outbound: outside the selectors, no SA, SA exhausted.
	DropOutSelector, DropOutNoSA, DropOutLimit uint64
	SendErrors                                 uint64
}

type counters struct {
	packetsOut, bytesOut, packetsIn, bytesIn                    atomic.Uint64
	dropAuth, dropReplay, dropMalformed, dropSelector, dropNoSA atomic.Uint64
	dropOutSelector, dropOutNoSA, dropOutLimit, sendErrors      atomic.Uint64
}

// sas is the installed SAs: one outbound, and the inbound SAs in use —
// a rekey keeps the replaced one until it is deleted (make before break).
type sas struct {
	out    *esp.Outbound
	ins    []*esp.Inbound // newest first
	local  []netip.Prefix // TSi: our side
	remote []netip.Prefix // TSr: the gateway's side
	peer   *net.UDPAddr
	// next is a rekeyed outbound SA waiting for Commit.
	next *esp.Outbound
}

// maxInbound bounds the inbound SAs kept at once.
const maxInbound = 3

// Engine is the data plane of one tunnel.
type Engine struct {
	dev  tun.Device
	send Sender
	log  *slog.Logger

	cur atomic.Pointer[sas]
	c   counters

	// Inbound scratch, used only from the transport's read goroutine.
	inBufs [][]byte
	// writeMu keeps TUN writes out of Close: some devices (netstack)
	// panic when written after closing. Taken once per batch.
	writeMu sync.RWMutex
	closed  bool

	closeOnce sync.Once
	done      chan struct{}
	// kick, when armed, is called once on the next outbound packet.
	kick atomic.Pointer[func()]

	// crew seals and opens batches on several cores; Run starts it and
	// stops it when it returns (HandleESP runs alone before and after).
	crew    atomic.Pointer[Crew]
	workers int // for NewCrew: -1 is as many as pay
	in      inBatch
}

// inBatch is HandleESP's per-batch state, reused (one read goroutine).
type inBatch struct {
	st   *sas
	sas  []*esp.Inbound
	pkts [][]byte
	res  [][]byte // what to write to the TUN, nil if dropped
	wg   sync.WaitGroup
	f    func(lo, hi int)
}

// Arm makes the engine call f once, on the next packet it sends.
func (e *Engine) Arm(f func()) { e.kick.Store(&f) }

// New builds an engine over dev that sends through send.
func New(dev tun.Device, send Sender, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{dev: dev, send: send, log: log, done: make(chan struct{}), workers: -1}
}

// Install makes c the SA pair in use for traffic to peer, within the
// limits lim. Inbound SAs installed before stay valid until Retire.
func (e *Engine) Install(c *ike.ChildSA, peer netip.AddrPort, lim esp.Limits) error {
	return e.install(c, peer, lim, modeBoth)
}

// Prepare installs c's inbound SA but keeps sending on the current
// outbound one until Commit: the responder of a rekey waits until the
// initiator surely has the new SA (RFC 7296 §2.8).
func (e *Engine) Prepare(c *ike.ChildSA, peer netip.AddrPort, lim esp.Limits) error {
	return e.install(c, peer, lim, modePrepare)
}

// AddInbound accepts traffic on c's inbound SA too, leaving what is sent
// alone (the other SA of a simultaneous rekey).
func (e *Engine) AddInbound(c *ike.ChildSA, peer netip.AddrPort, lim esp.Limits) error {
	return e.install(c, peer, lim, modeInbound)
}

// SendOn sends on c from now on (after Prepare, or AddInbound of c).
func (e *Engine) SendOn(c *ike.ChildSA, peer netip.AddrPort, lim esp.Limits) error {
	return e.install(c, peer, lim, modeOutbound)
}

type installMode int

const (
	modeBoth     installMode = iota // inbound and outbound now
	modePrepare                     // inbound now, outbound on Commit
	modeInbound                     // inbound only
	modeOutbound                    // outbound only
)

func (e *Engine) install(c *ike.ChildSA, peer netip.AddrPort, lim esp.Limits, mode installMode) error {
	suite := esp.Suite{Encr: c.Suite.Encr, KeyBits: c.Suite.KeyBits, Integ: c.Suite.Integ, ESN: c.Suite.ESN}
	now := time.Now()
	var newOut *esp.Outbound
	if mode != modeInbound {
		var err error
		if newOut, err = esp.NewOutbound(c.SPIOut, suite, c.EncrOut, c.IntegOut, lim, now); err != nil {
			return fmt.Errorf("dataplane: outbound SA: %w", err)
		}
		if newOut.Headroom() > ReadOffset {
			return fmt.Errorf("dataplane: ESP header of %d bytes does not fit the read offset", newOut.Headroom())
		}
	}
	var newIn *esp.Inbound
	if mode != modeOutbound {
		var err error
		if newIn, err = esp.NewInbound(c.SPIIn, suite, c.EncrIn, c.IntegIn, lim, now); err != nil {
			return fmt.Errorf("dataplane: inbound SA: %w", err)
		}
	}
	// Compare-and-swap, so Commit, Retire or Remove running at the same
	// time are not undone.
	for {
		old := e.cur.Load()
		if old == nil && mode != modeBoth {
			return errors.New("dataplane: no current SA to keep sending on")
		}
		n := &sas{local: ike.Prefixes(c.TSi), remote: ike.Prefixes(c.TSr), peer: net.UDPAddrFromAddrPort(peer)}
		if old != nil {
			n.out, n.next = old.out, old.next
			n.ins = append(n.ins, old.ins...)
		}
		if newOut != nil {
			// An SA already in use or prepared keeps its sequence numbers.
			out := newOut
			if n.next != nil && n.next.SPI() == c.SPIOut {
				out = n.next
			} else if n.out != nil && n.out.SPI() == c.SPIOut {
				out = n.out
			}
			if mode == modePrepare {
				n.next = out
			} else {
				n.out, n.next = out, nil
			}
		}
		if newIn != nil {
			// An SA already accepted keeps its replay window.
			have := false
			for _, in := range n.ins {
				have = have || in.SPI() == c.SPIIn
			}
			if !have {
				n.ins = append([]*esp.Inbound{newIn}, n.ins...)
				if len(n.ins) > maxInbound {
					n.ins = n.ins[:maxInbound]
				}
			}
		}
		if e.cur.CompareAndSwap(old, n) {
			return nil
		}
	}
}

// Commit starts sending on the SA that Prepare installed.
func (e *Engine) Commit() {
	e.update(func(n *sas) bool {
		if n.next == nil {
			return false
		}
		n.out, n.next = n.next, nil
		return true
	})
}

// Retire stops accepting the inbound SA with spi once it was replaced and
// deleted.
func (e *Engine) Retire(spi uint32) {
	e.update(func(n *sas) bool {
		for i, in := range n.ins {
			if in.SPI() == spi && len(n.ins) > 1 {
				n.ins = append(n.ins[:i:i], n.ins[i+1:]...)
				return true
			}
		}
		return false
	})
}

// update applies f to a copy of the current SAs and swaps it in.
func (e *Engine) update(f func(*sas) bool) {
	for {
		cur := e.cur.Load()
		if cur == nil {
			return
		}
		n := *cur
		n.ins = append([]*esp.Inbound(nil), cur.ins...)
		if !f(&n) || e.cur.CompareAndSwap(cur, &n) {
			return
		}
	}
}

// SetPeer sends to peer from now on, with the same SAs (MOBIKE: the
// gateway's address or port changed).
func (e *Engine) SetPeer(peer netip.AddrPort) {
	e.update(func(n *sas) bool {
		n.peer = net.UDPAddrFromAddrPort(peer)
		return true
	})
}

// Remove stops using any SA: outbound packets are dropped, none leak.
func (e *Engine) Remove() { e.cur.Store(nil) }

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	c := &e.c
	return Stats{
		PacketsOut: c.packetsOut.Load(), BytesOut: c.bytesOut.Load(),
		PacketsIn: c.packetsIn.Load(), BytesIn: c.bytesIn.Load(),
		DropAuth: c.dropAuth.Load(), DropReplay: c.dropReplay.Load(), DropMalformed: c.dropMalformed.Load(),
		DropSelector: c.dropSelector.Load(), DropNoSA: c.dropNoSA.Load(),
		DropOutSelector: c.dropOutSelector.Load(), DropOutNoSA: c.dropOutNoSA.Load(), DropOutLimit: c.dropOutLimit.Load(),
		SendErrors: c.sendErrors.Load(),
	}
}

// Close stops Run and inbound delivery; once it returns no more packets
// are written to the device. It does not close the device.
func (e *Engine) Close() {
	e.closeOnce.Do(func() {
		e.writeMu.Lock()
		e.closed = true
		e.writeMu.Unlock()
		close(e.done)
	})
}

// Run reads the TUN device and sends what it reads until ctx ends, Close
// is called or the device fails. A blocked read returns only when the
// device is closed, so callers close the device after Close.
func (e *Engine) Run(ctx context.Context) error {
	batch := e.dev.BatchSize()
	if batch < 1 {
		batch = 1
	}
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, ReadOffset+65535+Tailroom)
	}
	sizes := make([]int, batch)
	out := make([][]byte, 0, batch)
	scratch := make([]ipv4.Message, batch)
	crew := NewCrew(e.workers)
	e.crew.Store(crew)
	defer func() {
		e.crew.Store(nil)
		crew.Stop()
	}()
	// The packets that passed the checks, with their sequence numbers,
	// reserved in read order; sealed on the crew.
	var (
		st     *sas
		idx    = make([]int, batch)
		nhs    = make([]byte, batch)
		seqs   = make([]uint64, batch)
		sealed = make([][]byte, batch)
		wg     sync.WaitGroup
	)
	seal := func(lo, hi int) {
		for k := lo; k < hi; k++ {
			i := idx[k]
			p, err := st.out.SealSeq(bufs[i], ReadOffset, sizes[i], nhs[k], seqs[k])
			if err != nil {
				e.c.dropOutLimit.Add(1)
			}
			sealed[k] = p
		}
	}
	for {
		n, err := e.dev.Read(bufs, sizes, ReadOffset)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.done:
			return nil
		default:
		}
		if err != nil {
			if errors.Is(err, tun.ErrTooManySegments) {
				continue
			}
			return fmt.Errorf("dataplane: reading TUN: %w", err)
		}
		st = e.cur.Load()
		if st == nil {
			e.c.dropOutNoSA.Add(uint64(n))
			continue
		}
		k := 0
		for i := 0; i < n; i++ {
			pkt := bufs[i][ReadOffset : ReadOffset+sizes[i]]
			nh, src, dst, ok := ippkt.Header(pkt)
			if !ok || !ippkt.Contains(st.local, src) || !ippkt.Contains(st.remote, dst) {
				e.c.dropOutSelector.Add(1)
				continue
			}
			seq, err := st.out.Reserve()
			if err != nil {
				e.c.dropOutLimit.Add(1)
				continue
			}
			idx[k], nhs[k], seqs[k] = i, nh, seq
			k++
		}
		crew.Do(k, &wg, seal)
		out = out[:0]
		var bytes uint64
		for j := 0; j < k; j++ {
			if sealed[j] != nil {
				out = append(out, sealed[j])
				bytes += uint64(sizes[idx[j]])
				sealed[j] = nil
			}
		}
		if len(out) > 0 {
			e.c.packetsOut.Add(uint64(len(out)))
			e.c.bytesOut.Add(bytes)
			if e.kick.Load() != nil {
				if k := e.kick.Swap(nil); k != nil {
					(*k)()
				}
			}
			if err := e.send.SendESPBatch(out, st.peer, scratch); err != nil {
				e.c.sendErrors.Add(1)
				e.log.Debug("sending ESP", "err", err)
			}
		}
	}
}

// HandleESP opens a batch of received ESP packets and writes the inner
// packets to the TUN device. It is called from the transport's single read
// goroutine.
func (e *Engine) HandleESP(pkts []ike.ESPPacket) {
	e.writeMu.RLock()
	defer e.writeMu.RUnlock()
	if e.closed {
		return
	}
	b := &e.in
	b.st = e.cur.Load()
	if b.st == nil {
		e.c.dropNoSA.Add(uint64(len(pkts)))
		return
	}
	if b.f == nil {
		b.f = e.openChunk
	}
	b.sas, b.pkts = b.sas[:0], b.pkts[:0]
	for _, p := range pkts {
		spi, ok := esp.SPIOf(p.Data)
		if !ok {
			e.c.dropMalformed.Add(1)
			continue
		}
		var in *esp.Inbound
		for _, cand := range b.st.ins {
			if cand.SPI() == spi {
				in = cand
				break
			}
		}
		if in == nil {
			e.c.dropNoSA.Add(1)
			continue
		}
		b.sas = append(b.sas, in)
		b.pkts = append(b.pkts, p.Data)
	}
	n := len(b.pkts)
	b.res = Results(b.res, n)
	e.crew.Load().Do(n, &b.wg, b.f)
	w, bytes := Gather(b.res, e.inBufs[:0])
	b.st = nil
	clear(b.pkts) // no references to the transport's buffers kept
	e.inBufs = w[:0]
	if len(w) == 0 {
		return
	}
	e.c.packetsIn.Add(uint64(len(w)))
	e.c.bytesIn.Add(bytes)
	if _, err := e.dev.Write(w, WriteOffset); err != nil {
		e.log.Debug("writing TUN", "err", err)
	}
}

// openChunk opens packets [lo, hi) of the inbound batch in place and sets
// what to write for each (nil: dropped, counted). It runs on the crew.
func (e *Engine) openChunk(lo, hi int) {
	b := &e.in
	for k := lo; k < hi; k++ {
		b.res[k] = nil
		in, data := b.sas[k], b.pkts[k]
		inner, _, err := in.Open(data)
		if err != nil {
			switch {
			case errors.Is(err, esp.ErrAuth):
				e.c.dropAuth.Add(1)
			case errors.Is(err, esp.ErrReplay):
				e.c.dropReplay.Add(1)
			case errors.Is(err, esp.ErrDummy):
			default:
				e.c.dropMalformed.Add(1)
			}
			continue
		}
		_, src, dst, ok := ippkt.Header(inner)
		if !ok || !ippkt.Contains(b.st.remote, src) || !ippkt.Contains(b.st.local, dst) {
			e.c.dropSelector.Add(1)
			continue
		}
		start := in.PayloadOffset()
		if start < WriteOffset {
			e.c.dropMalformed.Add(1)
			continue
		}
		b.res[k] = data[start-WriteOffset : start+len(inner)]
	}
}
