package ike

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/eap"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// ResponderConfig is what a gateway answers with.
type ResponderConfig struct {
	// LocalID is the gateway's identity (IDr). An initiator naming another
	// IDr is refused.
	LocalID auth.Identity
	// PSK returns the pre-shared key of a peer identity; nil or empty means
	// the peer is unknown. A nil PSK refuses PSK authentication.
	PSK func(peer auth.Identity) []byte
	// Signer and CertChain (DER, leaf first) authenticate the gateway when
	// the peer authenticates with a certificate.
	Signer    crypto.Signer
	CertChain [][]byte
	// CAs verify client certificates; without them certificate clients
	// are refused.
	CAs []*x509.Certificate
	// EAPUsers, when set, lets initiators that send IKE_AUTH without an
	// AUTH payload authenticate with EAP-Identity and EAP-MSCHAPv2 (RFC
	// 7296 §2.16): it returns the password of an EAP identity. The
	// gateway then authenticates with Signer and CertChain (RFC 7296
	// requires it to use a public-key method towards EAP clients), and
	// both AUTH payloads of the last IKE_AUTH are keyed with the MSK.
	EAPUsers eap.Users
	// EAPTLS also lets EAP initiators in with EAP-TLS (RFC 5216, TLS 1.2):
	// the gateway's TLS certificate is Signer and CertChain, the client's
	// must chain to CAs and name its EAP identity. Without EAPUsers it is
	// the method offered; with them, clients Nak MSCHAPv2 for it.
	EAPTLS bool

	// IKEProposals and ESPProposals in order of preference: like
	// strongSwan, the first of ours that the peer offers wins.
	IKEProposals, ESPProposals []ikecrypto.Proposal

	// Pool4 and Pool6 are the virtual address pools for CP requests (the
	// zero Prefix: none of that family). DNS servers go into the CP reply.
	Pool4, Pool6 netip.Prefix
	DNS          []netip.Addr
	// DNSDomains are the split-DNS domains (RFC 8598) that DNS resolves,
	// sent to initiators that ask for INTERNAL_DNS_DOMAIN.
	DNSDomains []string
	// LocalTS is what the gateway protects: the initiator's TSr is narrowed
	// to it (empty: everything).
	LocalTS []netip.Prefix

	// CookieThreshold is the number of half-open IKE SAs from which on
	// IKE_SA_INIT requests must carry a valid COOKIE (0: never).
	CookieThreshold int
	// HalfOpenTimeout is how long an IKE SA may wait for IKE_AUTH (default 30 s).
	HalfOpenTimeout time.Duration

	// Retransmit is the schedule of the sessions' own requests (default
	// DefaultRetransmit).
	Retransmit Retransmit
	// Timers and the Hooks built for each session start every established
	// session before it is delivered on Sessions. Hooks may be nil.
	Timers Timers
	Hooks  func(s *Session) Hooks

	// AuthResponseNotifies adds status notifies (QCD_TOKEN,
	// TICKET_LT_OPAQUE, …) to a successful IKE_AUTH response. s is the
	// session about to be established (SPIs, PeerID, Suite and Child set;
	// s.AuthNotifies holds the notifies of the request). It runs on a
	// handshake worker.
	AuthResponseNotifies func(s *Session) []*wire.Notify
	// UnknownSA receives messages naming no IKE SA of the responder other
	// than IKE_SA_INIT requests (e.g. to answer with INVALID_IKE_SPI and a
	// QCD token, or IKE_SESSION_RESUME). It runs on a handshake worker;
	// d.Data is its own.
	UnknownSA func(d Datagram)

	// RedirectInit and RedirectAuth send a client elsewhere (RFC 5685)
	// in the IKE_SA_INIT response or, after checking its AUTH, in the
	// IKE_AUTH response; only clients that said they support redirects.
	RedirectInit func(from netip.AddrPort) (RedirectTarget, bool)
	RedirectAuth func(peer auth.Identity, from netip.AddrPort) (RedirectTarget, bool)

	// MOBIKE answers N(MOBIKE_SUPPORTED) in IKE_AUTH (RFC 4555): such
	// clients may move their address with UPDATE_SA_ADDRESSES, and the
	// session follows them (Hooks.PeerMoved).
	MOBIKE bool

	// Tickets opens RFC 5723 tickets presented in IKE_SESSION_RESUME; nil
	// answers every ticket with TICKET_NACK.
	Tickets TicketAuthority
	// OnTicketNack is told why a ticket was refused (events, tests).
	OnTicketNack func(from netip.AddrPort, why string)

	// HASync answers a client's RFC 6311 sync-supported notifies in
	// IKE_AUTH with ours (hot-standby takeover, Import and StartHASync).
	HASync bool

	// Workers is the number of goroutines running handshakes (default
	// GOMAXPROCS, at most 8).
	Workers int

	Rand   io.Reader
	Logger *slog.Logger
	// Now is the clock for certificate validity and cookie secret rotation.
	Now func() time.Time
}

const (
	defaultHalfOpenTimeout = 30 * time.Second
	// cookieRotation is how often the cookie secret changes; cookies made
	// with the previous secret stay valid for one more period.
	cookieRotation = 2 * time.Minute
	// sessionQueue is how many established sessions may wait for the
	// reader of Sessions.
	sessionQueue = 64
	// inboundQueue bounds the datagrams waiting for a handshake worker.
	inboundQueue = 256
)

// ErrReplaced ends a gateway-side session when the same peer authenticates
// again with INITIAL_CONTACT (RFC 7296 §2.4).
var ErrReplaced = errors.New("ike: replaced by a new IKE SA of the same peer")

func (c *ResponderConfig) check() error {
	if len(c.LocalID.Data) == 0 {
		return errors.New("ike: responder: no LocalID configured")
	}
	if len(c.IKEProposals) == 0 {
		return errors.New("ike: responder: no IKE proposals configured")
	}
	if len(c.ESPProposals) == 0 {
		return errors.New("ike: responder: no ESP proposals configured")
	}
	if c.PSK == nil && c.Signer == nil {
		return errors.New("ike: responder: neither PSK nor Signer configured")
	}
	if c.EAPTLS && len(c.CAs) == 0 {
		return errors.New("ike: responder: EAPTLS without CAs to verify client certificates")
	}
	if (c.EAPUsers != nil || c.EAPTLS) && c.Signer == nil {
		return errors.New("ike: responder: EAPUsers without Signer (the gateway authenticates to EAP clients with a certificate)")
	}
	if c.Signer != nil && len(c.CertChain) == 0 {
		return errors.New("ike: responder: Signer without CertChain")
	}
	if c.Pool4.IsValid() && !c.Pool4.Addr().Is4() {
		return fmt.Errorf("ike: responder: Pool4 %s is not IPv4", c.Pool4)
	}
	if c.Pool6.IsValid() && !c.Pool6.Addr().Is6() {
		return fmt.Errorf("ike: responder: Pool6 %s is not IPv6", c.Pool6)
	}
	if c.CookieThreshold < 0 {
		return errors.New("ike: responder: negative CookieThreshold")
	}
	if rt := c.Retransmit; rt != (Retransmit{}) && (rt.Tries <= 0 || rt.Timeout <= 0 || rt.Base < 1) {
		return errors.New("ike: responder: invalid retransmission schedule")
	}
	return nil
}

func (c *ResponderConfig) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// ResponderStats counts what a Responder did since it started.
type ResponderStats struct {
	HalfOpen    int    // IKE SAs now waiting for IKE_AUTH
	Established uint64 // sessions delivered
	AuthFailed  uint64 // IKE_AUTH requests refused
	CookiesSent uint64 // IKE_SA_INIT requests answered with COOKIE
	InvalidKE   uint64 // IKE_SA_INIT requests answered with INVALID_KE_PAYLOAD
	NoProposal  uint64 // IKE_SA_INIT requests answered with NO_PROPOSAL_CHOSEN
	ChildFailed uint64 // authenticated, but no Child SA could be made
	Resumed     uint64 // sessions established by IKE_SESSION_RESUME
	Redirected  uint64 // clients sent to another gateway
	TicketNack  uint64 // tickets refused
	InitRefused uint64 // IKE_SA_INIT requests refused as malformed (bad key exchange value, ...)
}

// Responder is the gateway side of the engine: it answers IKE_SA_INIT and
// IKE_AUTH for new IKE SAs arriving on a Transport and delivers each
// established IKE SA as a started Session.
type Responder struct {
	cfg  *ResponderConfig
	scfg *Config // what the sessions' loops read (proposals, schedule)
	t    *Transport
	log  *slog.Logger
	rand io.Reader

	in       chan Datagram
	sessions chan *Session
	done     chan struct{}
	stop     sync.Once
	wg       sync.WaitGroup

	mu      sync.Mutex
	byInit  map[initKey]*halfOpen // by SPIi and address, for retransmits
	bySPI   map[uint64]*halfOpen  // by our SPIr
	cookies cookieSecrets
	pool4   *addrPool
	pool6   *addrPool
	peers   map[string][]*Session // live sessions by peer identity
	stats   ResponderStats
	roots   *x509.CertPool
}

// NewResponder starts answering new IKE SAs on t: messages naming no
// registered IKE SA reach it through t's unknown handler. Each established
// SA's SPI is registered with t for its session. Close stops it.
func NewResponder(cfg *ResponderConfig, t *Transport) (*Responder, error) {
	if cfg == nil || t == nil {
		return nil, errors.New("ike: responder: nil config or transport")
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r := &Responder{
		cfg:      cfg,
		t:        t,
		log:      cfg.Logger,
		rand:     cfg.Rand,
		in:       make(chan Datagram, inboundQueue),
		sessions: make(chan *Session, sessionQueue),
		done:     make(chan struct{}),
		byInit:   make(map[initKey]*halfOpen),
		bySPI:    make(map[uint64]*halfOpen),
		peers:    make(map[string][]*Session),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.rand == nil {
		r.rand = rand.Reader
	}
	rt := cfg.Retransmit
	if rt == (Retransmit{}) {
		rt = DefaultRetransmit()
	}
	r.scfg = &Config{LocalID: cfg.LocalID, IKEProposals: cfg.IKEProposals, ESPProposals: cfg.ESPProposals,
		Retransmit: rt, Rand: r.rand, Logger: r.log, Now: cfg.Now}
	if err := r.cookies.init(r.rand, cfg.now()); err != nil {
		return nil, fmt.Errorf("ike: responder: cookie secret: %w", err)
	}
	if len(cfg.CAs) > 0 {
		r.roots = x509.NewCertPool()
		for _, c := range cfg.CAs {
			r.roots.AddCert(c)
		}
	}
	if cfg.Pool4.IsValid() {
		r.pool4 = newAddrPool(cfg.Pool4)
	}
	if cfg.Pool6.IsValid() {
		r.pool6 = newAddrPool(cfg.Pool6)
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), 8)
	}
	r.wg.Add(workers + 1)
	for range workers {
		go r.worker()
	}
	go r.janitor()
	t.SetUnknownHandler(r.unknown)
	return r, nil
}

// Sessions delivers the established sessions, already started. It is
// closed by Close. A session that finds the queue full is deleted.
func (r *Responder) Sessions() <-chan *Session { return r.sessions }

// Stats returns the counters.
func (r *Responder) Stats() ResponderStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close stops accepting IKE SAs, forgets the half-open ones and closes
// Sessions. Established sessions stay up: they belong to the reader of
// Sessions, who must also take and end any still queued there.
func (r *Responder) Close() error {
	r.stop.Do(func() {
		r.t.SetUnknownHandler(nil)
		close(r.done)
		r.wg.Wait()
		r.mu.Lock()
		r.byInit, r.bySPI = map[initKey]*halfOpen{}, map[uint64]*halfOpen{}
		r.stats.HalfOpen = 0
		r.mu.Unlock()
		close(r.sessions)
	})
	return nil
}

// unknown runs on the transport's read goroutine: it only queues.
func (r *Responder) unknown(d Datagram) {
	// A peer that floated to NAT-T frames its messages before the
	// transport knows it speaks NAT-T; strip the non-ESP marker here.
	if !d.Encap && len(d.Data) >= len(nonESPMarker)+wire.HeaderLen && binary.BigEndian.Uint32(d.Data) == 0 {
		if _, err := wire.ParseHeader(d.Data[len(nonESPMarker):]); err == nil {
			d.Data, d.Encap = d.Data[len(nonESPMarker):], true
		}
	}
	d.Data = append([]byte(nil), d.Data...)
	select {
	case r.in <- d:
	default:
		r.log.Debug("responder queue full, dropped", "from", d.From)
	}
}

func (r *Responder) worker() {
	defer r.wg.Done()
	for {
		select {
		case <-r.done:
			return
		case d := <-r.in:
			r.handle(d)
		}
	}
}

// handle routes one datagram: IKE_SA_INIT requests, IKE_AUTH (and
// anything else) for half-open SAs, the rest to UnknownSA.
func (r *Responder) handle(d Datagram) {
	h, err := wire.ParseHeader(d.Data)
	if err != nil {
		return
	}
	if (h.Exchange == wire.ExchangeIKESAInit || h.Exchange == wire.ExchangeIKESessionResume) && h.SPIr == 0 {
		if !h.IsResponse() && h.IsInitiator() && h.MessageID == 0 {
			if h.Exchange == wire.ExchangeIKESAInit {
				r.saInit(d, h)
			} else {
				r.resumeInit(d, h)
			}
		}
		return
	}
	r.mu.Lock()
	ho := r.bySPI[h.SPIr]
	r.mu.Unlock()
	if ho != nil && ho.spii == h.SPIi {
		r.authRequest(ho, d, h)
		return
	}
	// Framed before its sender was known to speak NAT-T: the transport
	// could not route it to its session.
	if r.t.route(d) {
		return
	}
	if r.cfg.UnknownSA != nil {
		r.cfg.UnknownSA(d)
	}
}

// janitor forgets half-open SAs whose time is up and sessions that ended.
func (r *Responder) janitor() {
	defer r.wg.Done()
	timeout := r.halfOpenTimeout()
	period := min(max(timeout/4, 10*time.Millisecond), 5*time.Second)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case now := <-tick.C:
			r.expire(now)
		}
	}
}

func (r *Responder) halfOpenTimeout() time.Duration {
	if r.cfg.HalfOpenTimeout > 0 {
		return r.cfg.HalfOpenTimeout
	}
	return defaultHalfOpenTimeout
}

func (r *Responder) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for spi, ho := range r.bySPI {
		if now.Before(ho.deadline) {
			continue
		}
		delete(r.bySPI, spi)
		delete(r.byInit, initKey{ho.spii, ho.from})
		if ho.counted {
			ho.counted = false
			r.stats.HalfOpen--
			r.log.Debug("half-open IKE SA timed out", "from", ho.from)
		}
	}
	for k, ss := range r.peers {
		if ss = liveSessions(ss); len(ss) == 0 {
			delete(r.peers, k)
		} else {
			r.peers[k] = ss
		}
	}
}

// forget removes a half-open SA that got its IKE_AUTH answered; r.mu held.
func (r *Responder) forget(ho *halfOpen, keep bool) {
	if ho.counted {
		ho.counted = false
		r.stats.HalfOpen--
	}
	if !keep {
		delete(r.bySPI, ho.spir)
		delete(r.byInit, initKey{ho.spii, ho.from})
	}
}

// deliver hands an established session to the reader of Sessions.
func (r *Responder) deliver(s *Session) {
	select {
	case r.sessions <- s:
		return
	default:
	}
	r.log.Warn("established session not collected, deleting it", "peer", s.PeerID.String())
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), r.scfg.Retransmit.Budget())
		defer cancel()
		_ = s.Close(ctx)
	}()
}

// newSPI returns an IKE SPI not in use on the transport or by a half-open SA.
func (r *Responder) newSPI() uint64 {
	for {
		spi := randomSPI(r.rand)
		r.mu.Lock()
		_, taken := r.bySPI[spi]
		r.mu.Unlock()
		if !taken && !r.t.hasSA(spi) {
			return spi
		}
	}
}

func isDone(s *Session) bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func liveSessions(ss []*Session) []*Session {
	out := ss[:0]
	for _, s := range ss {
		if !isDone(s) {
			out = append(out, s)
		}
	}
	clear(ss[len(out):])
	return out
}

func peerKey(id auth.Identity) string {
	return string(append([]byte{id.Type}, id.Data...))
}

// hasSA reports whether spi is registered for an IKE SA.
func (t *Transport) hasSA(spi uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.sas[spi]
	return ok
}

// route delivers d to the IKE SA registered for either of its SPIs.
func (t *Transport) route(d Datagram) bool {
	if len(d.Data) < wire.HeaderLen {
		return false
	}
	t.mu.Lock()
	ch, ok := t.sas[binary.BigEndian.Uint64(d.Data)]
	if !ok {
		ch, ok = t.sas[binary.BigEndian.Uint64(d.Data[8:])]
	}
	t.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case ch <- d:
	default:
	}
	return true
}
