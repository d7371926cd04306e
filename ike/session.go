package ike

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// Session is an established IKE SA seen from the initiator. One goroutine
// owns its state; callers talk to it through methods.
type Session struct {
	cfg    *Config
	log    *slog.Logger
	t      *Transport
	ch     chan Datagram
	rand   io.Reader
	remote netip.AddrPort
	encap  bool

	SPIi, SPIr uint64
	keys       *saKeys
	// Suite is the IKE SA's negotiated algorithms.
	Suite Suite
	// PeerID is the identity the gateway authenticated as.
	PeerID auth.Identity
	// VirtualIPs and DNS come from the gateway's CP reply.
	VirtualIPs []netip.Prefix
	DNS        []netip.Addr
	// AuthNotifies holds the status notifies of the IKE_AUTH response
	// (QCD token, ticket, …) for the layers above.
	AuthNotifies []*wire.Notify
	// Child is the first Child SA.
	Child *ChildSA
	// Established is when IKE_AUTH completed.
	Established time.Time

	nextID   uint32 // our next request's message ID
	peerNext uint32 // the peer's next expected request ID
	lastResp []byte // cached response to the peer's last request

	reqs      chan localRequest
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	mu        sync.Mutex
	err       error
	lastIn    time.Time
}

type localRequest struct {
	exch     wire.ExchangeType
	payloads []wire.Payload
	result   chan error
}

func newSession(st *initState) *Session {
	return &Session{
		cfg:         st.cfg,
		log:         st.cfg.logger(),
		t:           st.t,
		ch:          st.ch,
		rand:        st.rand,
		remote:      st.remote,
		encap:       st.encap,
		SPIi:        st.spii,
		SPIr:        st.spir,
		keys:        st.keys,
		Suite:       st.suite,
		nextID:      2,
		peerNext:    0,
		reqs:        make(chan localRequest),
		done:        make(chan struct{}),
		Established: time.Now(),
		lastIn:      time.Now(),
	}
}

// Remote is the gateway's address (after any float to the NAT-T port).
func (s *Session) Remote() netip.AddrPort { return s.remote }

// Transport is the socket the session uses.
func (s *Session) Transport() *Transport { return s.t }

func (s *Session) applyCP(cp *wire.CP) {
	for _, a := range cp.Attributes {
		switch a.Type {
		case wire.CPInternalIP4Address:
			if ip, ok := netip.AddrFromSlice(a.Value); ok && len(a.Value) == 4 {
				s.VirtualIPs = append(s.VirtualIPs, netip.PrefixFrom(ip, 32))
			}
		case wire.CPInternalIP6Address:
			if len(a.Value) == 17 {
				ip, _ := netip.AddrFromSlice(a.Value[:16])
				s.VirtualIPs = append(s.VirtualIPs, netip.PrefixFrom(ip, 128))
			}
		case wire.CPInternalIP4DNS, wire.CPInternalIP6DNS:
			if ip, ok := netip.AddrFromSlice(a.Value); ok && (len(a.Value) == 4 || len(a.Value) == 16) {
				s.DNS = append(s.DNS, ip)
			}
		}
	}
}

func (s *Session) start() {
	s.wg.Add(1)
	go s.loop()
}

// Done is closed when the IKE SA has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is the reason the session ended, or nil while it is up.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// LastInbound is when the last authenticated IKE message arrived.
func (s *Session) LastInbound() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastIn
}

// Close deletes the IKE SA at the gateway (waiting for its answer until ctx
// ends) and stops the session.
func (s *Session) Close(ctx context.Context) error {
	r := localRequest{exch: wire.ExchangeInformational, payloads: []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}}, result: make(chan error, 1)}
	var err error
	select {
	case s.reqs <- r:
		select {
		case err = <-r.result:
		case <-ctx.Done():
			err = ctx.Err()
		}
	case <-s.done:
	}
	s.finish(ErrClosed)
	s.wg.Wait()
	return err
}

// close releases a session that never started its loop.
func (s *Session) close() {
	s.finish(ErrClosed)
}

func (s *Session) finish(err error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		s.t.unregister(s.SPIi)
		close(s.done)
	})
}

// pending is our one outstanding request (window size 1).
type pending struct {
	id      uint32
	raw     []byte
	tries   int
	timeout time.Duration
	result  chan error
	deleted bool // the request deletes the IKE SA
}

func (s *Session) loop() {
	defer s.wg.Done()
	var out *pending
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-s.done:
			if out != nil {
				out.result <- s.Err()
			}
			return
		case r := <-s.reqs:
			if out != nil {
				r.result <- errors.New("ike: another request is outstanding")
				continue
			}
			h := s.header(r.exch, s.nextID, false)
			raw, err := s.keys.seal(h, r.payloads, s.rand)
			if err != nil {
				r.result <- err
				continue
			}
			out = &pending{id: s.nextID, raw: raw, timeout: s.cfg.Retransmit.Timeout, result: r.result}
			for _, p := range r.payloads {
				if d, ok := p.(*wire.Delete); ok && d.Protocol == wire.ProtoIKE {
					out.deleted = true
				}
			}
			s.nextID++
			_ = s.t.Send(raw, s.remote, s.encap)
			out.tries = 1
			timer.Reset(out.timeout)
		case <-timer.C:
			if out == nil {
				continue
			}
			if out.tries >= s.cfg.Retransmit.Tries {
				out.result <- ErrNoResponse
				out = nil
				s.finish(ErrNoResponse)
				continue
			}
			out.tries++
			out.timeout = time.Duration(float64(out.timeout) * s.cfg.Retransmit.Base)
			_ = s.t.Send(out.raw, s.remote, s.encap)
			timer.Reset(out.timeout)
		case d := <-s.ch:
			h, ps, err := s.keys.open(d.Data)
			if err != nil || h.SPIi != s.SPIi || h.SPIr != s.SPIr {
				// Unprotected or forged: never changes state (RFC 7296 §2.21).
				continue
			}
			s.mu.Lock()
			s.lastIn = time.Now()
			s.mu.Unlock()
			if h.IsResponse() {
				if out != nil && h.MessageID == out.id {
					timer.Stop()
					out.result <- nil
					if out.deleted {
						s.finish(ErrClosed)
					}
					out = nil
				}
				continue
			}
			s.handleRequest(h, ps, d)
		}
	}
}

func (s *Session) header(exch wire.ExchangeType, id uint32, response bool) wire.Header {
	h := wire.Header{SPIi: s.SPIi, SPIr: s.SPIr, Version: 0x20, Exchange: exch, Flags: wire.FlagInitiator, MessageID: id}
	if response {
		h.Flags |= wire.FlagResponse
	}
	return h
}

// handleRequest answers a request from the gateway: retransmissions from
// the cache, INFORMATIONAL (liveness, delete) in full.
func (s *Session) handleRequest(h wire.Header, ps []wire.Payload, d Datagram) {
	switch {
	case h.MessageID+1 == s.peerNext && s.lastResp != nil:
		_ = s.t.Send(s.lastResp, s.remote, s.encap)
		return
	case h.MessageID != s.peerNext:
		return
	}
	var resp []wire.Payload
	peerDeleted := false
	switch h.Exchange {
	case wire.ExchangeInformational:
		for _, p := range ps {
			del, ok := p.(*wire.Delete)
			if !ok {
				continue
			}
			switch del.Protocol {
			case wire.ProtoIKE:
				peerDeleted = true
			case wire.ProtoESP:
				// Deleting our only Child SA: answer with its inbound SPI.
				if s.Child != nil {
					for _, spi := range del.SPIs {
						if len(spi) == 4 && uint32(spi[0])<<24|uint32(spi[1])<<16|uint32(spi[2])<<8|uint32(spi[3]) == s.Child.SPIOut {
							in := s.Child.SPIIn
							resp = append(resp, &wire.Delete{Protocol: wire.ProtoESP, SPISize: 4,
								SPIs: [][]byte{{byte(in >> 24), byte(in >> 16), byte(in >> 8), byte(in)}}})
						}
					}
				}
			}
		}
		if peerDeleted {
			resp = nil
		}
	case wire.ExchangeCreateChildSA:
		resp = []wire.Payload{&wire.Notify{NotifyType: wire.NotifyNoAdditionalSAs}}
	default:
		return
	}
	raw, err := s.keys.seal(s.header(h.Exchange, h.MessageID, true), resp, s.rand)
	if err != nil {
		s.log.Warn("sealing response", "err", err)
		return
	}
	s.peerNext++
	s.lastResp = raw
	_ = s.t.Send(raw, s.remote, s.encap)
	if peerDeleted {
		s.finish(ErrPeerDeleted)
	}
}
