package ike

import (
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// MOBIKE (RFC 4555) on both roles: the client tells the gateway of its
// new address with UPDATE_SA_ADDRESSES, NAT detection for the new path
// and a COOKIE2 (return routability); the gateway answers from the
// address the request came from and moves the IKE and ESP peer there.
// SPIs and keys stay as they are.

// ErrRoamFailed ends a session whose address update did not go through:
// no answer on the new path, the gateway refused the addresses, or the
// answer's COOKIE2 was not ours. The layers above reconnect.
var ErrRoamFailed = errors.New("MOBIKE address update failed")

// ErrRoamSuperseded answers an UpdateAddresses call that a newer one
// replaced before its answer came (RFC 4555 §3.5: only the newest
// update counts).
var ErrRoamSuperseded = errors.New("MOBIKE address update superseded by a newer one")

// ErrNoMOBIKE: the session cannot move (the gateway did not offer
// MOBIKE, or this is the gateway's side).
var ErrNoMOBIKE = errors.New("MOBIKE was not negotiated for this IKE SA")

// cookie2Len is the size of our COOKIE2 (RFC 4555 §4.2.5: 8 to 64).
const cookie2Len = 16

// MOBIKE reports whether both sides negotiated RFC 4555 mobility.
func (s *Session) MOBIKE() bool { return s.mobike }

// LocalAddr is our address as the peer last learned it (IKE_AUTH, or
// the last successful UpdateAddresses); the zero value on a gateway
// that does not know which of its addresses a client used.
func (s *Session) LocalAddr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local
}

func (s *Session) setLocal(a netip.AddrPort) {
	s.mu.Lock()
	s.local = a
	s.mu.Unlock()
}

// setRemote moves the session to a new peer address; loop only.
func (s *Session) setRemote(a netip.AddrPort) {
	s.mu.Lock()
	s.remote = a
	s.mu.Unlock()
}

// floatForMOBIKE: RFC 4555 §3.3, a MOBIKE initiator moves to port 4500
// after IKE_SA_INIT when the responder speaks NAT-T, NAT or not, so no
// port change is needed when a later path has a NAT (strongSwan does the
// same).
func (st *initState) floatForMOBIKE() bool { return st.cfg.MOBIKE && st.peerNATT }

// mobikeNotifies are what IKE_AUTH says about MOBIKE.
func (st *initState) mobikeNotifies() []wire.Payload {
	if !st.cfg.MOBIKE {
		return nil
	}
	return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyMOBIKESupported}}
}

// natDetection is the pair of NAT detection notifies for a path from
// local to remote of the IKE SA spii/spir (RFC 7296 §2.23); with fake,
// the source hash is random, so the peer sees a NAT and keeps UDP
// encapsulation (we cannot receive raw ESP).
func natDetection(spii, spir uint64, local, remote netip.AddrPort, fake []byte) []wire.Payload {
	src := natHash(spii, spir, local)
	if fake != nil {
		src = fake
	}
	return []wire.Payload{
		&wire.Notify{NotifyType: wire.NotifyNATDetectionSourceIP, Data: src},
		&wire.Notify{NotifyType: wire.NotifyNATDetectionDestinationIP, Data: natHash(spii, spir, remote)},
	}
}

// natResult reads the peer's NAT detection notifies of the path local →
// remote: natLocal when the address we sent from was translated,
// natRemote when the peer's was; present is false without them.
func natResult(spii, spir uint64, local, remote netip.AddrPort, ps []wire.Payload) (natLocal, natRemote, present bool) {
	for _, p := range ps {
		n, ok := p.(*wire.Notify)
		if !ok {
			continue
		}
		switch n.NotifyType {
		case wire.NotifyNATDetectionSourceIP:
			present = true
			natRemote = natRemote || !hashIs(n.Data, spii, spir, remote)
		case wire.NotifyNATDetectionDestinationIP:
			present = true
			natLocal = natLocal || !hashIs(n.Data, spii, spir, local)
		}
	}
	return natLocal, natRemote, present
}

func hashIs(b []byte, spii, spir uint64, ap netip.AddrPort) bool {
	return len(b) == sha1.Size && subtle.ConstantTimeCompare(b, natHash(spii, spir, ap)) == 1
}

// updateRequest builds the payloads of an UPDATE_SA_ADDRESSES request
// from local (RFC 4555 §3.5).
func updateRequest(st *ikeState, local, remote netip.AddrPort, cookie, fake []byte) []wire.Payload {
	ps := []wire.Payload{&wire.Notify{NotifyType: wire.NotifyUpdateSAAddresses}}
	ps = append(ps, natDetection(st.spii, st.spir, local, remote, fake)...)
	return append(ps, &wire.Notify{NotifyType: wire.NotifyCookie2, Data: cookie})
}

// checkUpdateResponse judges the answer to our UPDATE_SA_ADDRESSES:
// COOKIE2 must be ours (§3.7: otherwise the SA must be closed) and the
// gateway must not have refused the addresses.
func checkUpdateResponse(ps []wire.Payload, cookie []byte) error {
	n := wire.FindNotify(ps, wire.NotifyCookie2)
	if n == nil || subtle.ConstantTimeCompare(n.Data, cookie) != 1 {
		return fmt.Errorf("%w: the answer does not carry our COOKIE2", ErrRoamFailed)
	}
	for _, t := range []wire.NotifyType{wire.NotifyUnacceptableAddresses, wire.NotifyUnexpectedNATDetected} {
		if wire.FindNotify(ps, t) != nil {
			return fmt.Errorf("%w: the gateway answered %s", ErrRoamFailed, t)
		}
	}
	if err := firstError(wire.ExchangeInformational, ps); err != nil {
		return fmt.Errorf("%w: %v", ErrRoamFailed, err)
	}
	return nil
}

// roamRetransmit is the schedule of an address update: a few seconds
// (0.5 + 0.75 + 1.1 + 1.7 s with the default fast liveness), then the
// new path counts as failed and the client reconnects.
func (s *Session) roamRetransmit() Retransmit {
	return Retransmit{Timeout: max(s.timers.FastLiveness/2, 100*time.Millisecond), Base: 1.5, Tries: 4}
}

// UpdateAddresses tells the gateway that we now send from local (RFC
// 4555 §3.5): an INFORMATIONAL with UPDATE_SA_ADDRESSES, NAT detection
// for the new path and a random COOKIE2 that the answer must echo. The
// IKE and Child SAs stay, with their SPIs and keys. It returns once the
// gateway answered; a failure (ErrRoamFailed) also ends the session, so
// that the caller reconnects. Only the newest of overlapping calls
// counts; older ones return ErrRoamSuperseded. The socket must be bound
// to the wildcard address, so the kernel picks the new source itself.
func (s *Session) UpdateAddresses(ctx context.Context, local netip.AddrPort) error {
	if !s.mobike || !s.initiatorRole {
		return ErrNoMOBIKE
	}
	res := make(chan error, 2) // onResponse may report before the loop's nil
	fail := fmt.Errorf("%w: no answer from the gateway on the new path from %s", ErrRoamFailed, local.Addr())
	if !s.do(func() { s.queueUpdate(local, res, s.roamRetransmit(), fail) }) {
		return s.endedErr()
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		select {
		case err := <-res:
			return err
		default:
		}
		return s.endedErr()
	}
}

func (s *Session) endedErr() error {
	if err := s.Err(); err != nil {
		return err
	}
	return ErrClosed
}

// queueUpdate puts an UPDATE_SA_ADDRESSES request at the head of the
// queue, replacing one not yet sent; loop only.
func (s *Session) queueUpdate(local netip.AddrPort, res chan error, rt Retransmit, failErr error) {
	cookie, err := randomBytes(s.rand, cookie2Len)
	if err != nil {
		res <- err
		return
	}
	var fake []byte
	if s.cfg != nil && s.cfg.ForceEncap {
		if fake, err = randomBytes(s.rand, sha1.Size); err != nil {
			res <- err
			return
		}
	}
	s.roamGen++
	gen := s.roamGen
	keep := s.queue[:0]
	for _, r := range s.queue {
		if r.roam != nil {
			r.roam <- ErrRoamSuperseded
			continue
		}
		keep = append(keep, r)
	}
	s.queue = keep
	st := s.cur
	remote := s.remote
	r := &request{exch: wire.ExchangeInformational, st: st, rt: rt, roam: res, result: res,
		payloads: updateRequest(st, local, remote, cookie, fake), failErr: failErr}
	r.onResponse = func(ps []wire.Payload) {
		if gen != s.roamGen {
			// A newer update is queued: no MOBIKE processing (§3.5).
			res <- ErrRoamSuperseded
			return
		}
		if err := checkUpdateResponse(ps, cookie); err != nil {
			s.log.Info("address update failed", "local", local, "err", err)
			res <- err
			s.finish(err)
			return
		}
		s.setLocal(local)
		s.noteSeenAs(st, ps)
		natLocal, natRemote, _ := natResult(st.spii, st.spir, local, s.remote, ps)
		if (natLocal || natRemote) && !s.encap {
			// A NAT on the new path: float to NAT-T (RFC 7296 §2.23).
			s.encap = true
			if s.remote.Port() == 500 {
				old := s.remote
				s.setRemote(netip.AddrPortFrom(old.Addr(), NATTPort))
				if s.hooks.PeerMoved != nil {
					s.hooks.PeerMoved(old, s.remote)
				}
			}
		}
		s.log.Info("address updated (MOBIKE)", "local", local, "nat_local", natLocal)
	}
	s.queue = append([]*request{r}, s.queue...)
	s.log.Debug("address update queued", "local", local, "gen", gen, "outstanding", s.out != nil)
	if p := s.out; p != nil {
		// Window size 1: the outstanding request goes out again now,
		// from the new source, so its answer comes without waiting for
		// its retransmission timer and ours can follow.
		for _, m := range p.raw {
			_ = s.t.Send(m, s.remote, s.encap)
		}
	}
}

// mobikeRespond adds RFC 4555 content to our answer to an INFORMATIONAL
// request: on the gateway, an UPDATE_SA_ADDRESSES moves the session to
// the request's source; NAT detection is answered with ours for the
// path it came on; COOKIE2 is echoed as it is (§4.2.5), always.
func (s *Session) mobikeRespond(st *ikeState, ps []wire.Payload) []wire.Payload {
	var out []wire.Payload
	from := s.reqFrom
	if s.mobike && from.IsValid() {
		if n := wire.FindNotify(ps, wire.NotifyNoNATsAllowed); n != nil && !s.noNATsHold(n.Data, from) {
			// §3.9: the addresses were translated on the way; the
			// answer goes where the request came from, nothing moves.
			s.log.Info("NO_NATS_ALLOWED does not match the IP header", "from", from)
			out = append(out, &wire.Notify{NotifyType: wire.NotifyUnexpectedNATDetected})
		} else if wire.FindNotify(ps, wire.NotifyUpdateSAAddresses) != nil && !s.initiatorRole {
			s.peerUpdate(st, from, ps)
		}
		if wire.FindNotify(ps, wire.NotifyNATDetectionSourceIP) != nil {
			out = append(out, natDetection(st.spii, st.spir, s.ourAddr(from), from, nil)...)
		}
	}
	if n := wire.FindNotify(ps, wire.NotifyCookie2); n != nil {
		out = append(out, &wire.Notify{NotifyType: wire.NotifyCookie2, Data: append([]byte(nil), n.Data...)})
	}
	return out
}

// peerUpdate moves a gateway-side session to from (RFC 4555 §3.5: the
// addresses come from the IP header of the request).
func (s *Session) peerUpdate(st *ikeState, from netip.AddrPort, ps []wire.Payload) {
	natLocal, natRemote, present := natResult(st.spii, st.spir, s.ourAddr(from), from, ps)
	if present && (natLocal || natRemote) {
		s.encap = true
	}
	old := s.remote
	if from == old {
		return
	}
	s.setRemote(from)
	s.log.Info("peer moved (MOBIKE)", "from", old, "to", from, "nat", natLocal || natRemote)
	if s.hooks.PeerMoved != nil {
		s.hooks.PeerMoved(old, from)
	}
}

// ourAddr is our address on the path to peer: the one we know, the
// socket's own, or the one the OS would send from.
func (s *Session) ourAddr(peer netip.AddrPort) netip.AddrPort {
	if l := s.LocalAddr(); l.IsValid() && s.initiatorRole {
		return l
	}
	if ua, ok := s.t.conn.LocalAddr().(*net.UDPAddr); ok {
		if ap := ua.AddrPort(); ap.Addr().IsValid() && !ap.Addr().IsUnspecified() {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	if l, err := localAddrFor(peer, s.t.LocalPort()); err == nil {
		return l
	}
	return netip.AddrPortFrom(netip.IPv4Unspecified(), s.t.LocalPort())
}

// seenAs is the gateway's NAT_DETECTION_DESTINATION_IP of the IKE SA
// spii/spir: the hash of our address and port as it saw them.
type seenAs struct {
	spii, spir uint64
	hash       []byte
}

// noteSeenAs remembers how the gateway saw us in an answer under st.
func (s *Session) noteSeenAs(st *ikeState, ps []wire.Payload) {
	if n := wire.FindNotify(ps, wire.NotifyNATDetectionDestinationIP); n != nil {
		s.seenAs = seenAs{spii: st.spii, spir: st.spir, hash: append([]byte(nil), n.Data...)}
	}
}

// livenessNATCheck is the fast liveness check of a MOBIKE client: an
// INFORMATIONAL with NAT detection (RFC 4555 §3.8). If the gateway now
// sees us at another address or port than before — a NAT lost its
// mapping and made a new one, which we cannot see ourselves — an
// UPDATE_SA_ADDRESSES follows at once, since a MOBIKE gateway moves only
// on that (strongSwan ignores the addresses of other messages). An
// unchanged path costs nothing more: strongSwan with kernel-libipsec
// rekeys every Child SA on each UPDATE_SA_ADDRESSES, so it is not sent
// on every check. Unanswered, either ends the session with
// ErrLivenessFailed as the plain check does; loop only.
func (s *Session) livenessNATCheck(rt Retransmit) {
	for _, r := range s.queue {
		if r.roam != nil || r.natCheck {
			return // one queued already serves as the check
		}
	}
	if p := s.out; p != nil && (p.req.roam != nil || p.req.natCheck) {
		return
	}
	var fake []byte
	if s.cfg != nil && s.cfg.ForceEncap {
		var err error
		if fake, err = randomBytes(s.rand, sha1.Size); err != nil {
			return
		}
	}
	st := s.cur
	local := s.LocalAddr()
	r := &request{exch: wire.ExchangeInformational, st: st, rt: rt, natCheck: true, failErr: ErrLivenessFailed,
		payloads: natDetection(st.spii, st.spir, local, s.remote, fake)}
	r.onResponse = func(ps []wire.Payload) {
		n := wire.FindNotify(ps, wire.NotifyNATDetectionDestinationIP)
		prev := s.seenAs
		if n != nil && prev.spii == st.spii && prev.spir == st.spir && bytesEqual(prev.hash, n.Data) {
			return // the same path as before
		}
		s.log.Info("the gateway sees us at a new address or port: updating (MOBIKE)", "nat_detection", n != nil)
		s.queueUpdate(local, make(chan error, 2), rt, ErrLivenessFailed)
	}
	s.queue = append(s.queue, r)
}

var errBadNoNATs = errors.New("ike: malformed NO_NATS_ALLOWED")

// parseNoNATs reads NO_NATS_ALLOWED data (RFC 4555 §4.2.6): source and
// destination address, then source and destination port; 12 octets for
// IPv4, 36 for IPv6.
func parseNoNATs(b []byte) (src, dst netip.AddrPort, err error) {
	var n int
	switch len(b) {
	case 12:
		n = 4
	case 36:
		n = 16
	default:
		return src, dst, errBadNoNATs
	}
	sa, _ := netip.AddrFromSlice(b[:n])
	da, _ := netip.AddrFromSlice(b[n : 2*n])
	sp := uint16(b[2*n])<<8 | uint16(b[2*n+1])
	dp := uint16(b[2*n+2])<<8 | uint16(b[2*n+3])
	return netip.AddrPortFrom(sa, sp), netip.AddrPortFrom(da, dp), nil
}

// encodeNoNATs is NO_NATS_ALLOWED data for a packet from src to dst.
func encodeNoNATs(src, dst netip.AddrPort) []byte {
	b := append(src.Addr().AsSlice(), dst.Addr().AsSlice()...)
	return append(b, byte(src.Port()>>8), byte(src.Port()), byte(dst.Port()>>8), byte(dst.Port()))
}

// noNATsHold reports whether NO_NATS_ALLOWED data names the addresses
// the request really travelled between.
func (s *Session) noNATsHold(b []byte, from netip.AddrPort) bool {
	src, dst, err := parseNoNATs(b)
	if err != nil {
		return false
	}
	unmap := func(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }
	return unmap(src) == unmap(from) && unmap(dst) == unmap(s.ourAddr(from))
}
