package sdk

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/qcdvpn/qcdvpn/ike"
	"github.com/qcdvpn/qcdvpn/tun"
)

// EventRoamed: the device's address changed and the IKE SA moved with it
// (RFC 4555 MOBIKE), keeping its SPIs and keys; From and To are our old
// and new local addresses, Gateway the peer, Elapsed the round trip of
// the address update.
const EventRoamed EventType = "roamed"

// MOBIKEEnabled reports whether the profile offers MOBIKE (default true).
func (p *Profile) MOBIKEEnabled() bool { return p.MOBIKE == nil || *p.MOBIKE }

// roamState follows the device's network for MOBIKE: the OS watch
// (netlink on Linux) and whether the client is closed.
type roamState struct {
	mu     sync.Mutex
	watch  *netWatch
	closed bool
}

// roamTimeout bounds one address update; the IKE session gives up on an
// unanswered one sooner (a few seconds) and then ends, so Wait
// reconnects.
const roamTimeout = 10 * time.Second

// watchDebounce lets a burst of address and route messages (one `ip addr
// del` makes several) settle before the path is checked.
const watchDebounce = 20 * time.Millisecond

// pathChanged checks the path to the gateway after a network change.
// With MOBIKE, an OS report always sends UPDATE_SA_ADDRESSES (a new NAT
// may hide a changed path behind an unchanged local address); the
// client's own watch does so only when the source address the OS picks
// for the gateway changed. Without MOBIKE an OS report starts a fast
// liveness check, as before. It never blocks.
func (c *Client) pathChanged(fromOS bool) {
	select {
	case <-c.closing:
		return
	default:
	}
	go c.roamNow(fromOS)
}

func (c *Client) roamNow(fromOS bool) {
	s := c.Session()
	if s == nil {
		return
	}
	if !s.MOBIKE() || !wildcardSocket(s.Transport()) {
		if fromOS {
			s.Hint()
		}
		return
	}
	old := s.LocalAddr()
	now, err := c.sourceFor(s.Remote(), s.Transport().LocalPort())
	if err != nil {
		// No route to the gateway right now: the next change (or the
		// liveness check) tells.
		c.log.Info("network changed: no route to the gateway", "err", err)
		if fromOS {
			s.Hint()
		}
		return
	}
	if now == old && !fromOS {
		return
	}
	c.log.Info("network changed: updating the IKE SA's addresses (MOBIKE)", "from", old, "to", now)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), roamTimeout)
	err = s.UpdateAddresses(ctx, now)
	cancel()
	switch {
	case err == nil:
		if now != old {
			c.emit(Event{Type: EventRoamed, Gateway: s.Remote().Addr().String(), From: old.Addr().String(),
				To: now.Addr().String(), Elapsed: time.Since(start)})
		}
	case errors.Is(err, ike.ErrRoamSuperseded), errors.Is(err, ike.ErrClosed):
	default:
		// The session ended with ErrRoamFailed: Wait reconnects.
		c.log.Info("MOBIKE address update failed, reconnecting", "err", err)
	}
}

// wildcardSocket: the socket is bound to no particular address, so the
// kernel picks the new source after a change. A socket bound to one
// address (Options.LocalAddr) cannot move; it relies on reconnects.
func wildcardSocket(t *ike.Transport) bool {
	ua, ok := t.Conn().LocalAddr().(*net.UDPAddr)
	return ok && (ua.IP == nil || ua.IP.IsUnspecified())
}

// sourceFor is the address the OS sends from towards remote, asked the
// way the client's socket sends: with the tunnel's bypass mark, so a
// full tunnel does not answer with the TUN's own address. No packet is
// sent.
func (c *Client) sourceFor(remote netip.AddrPort, port uint16) (netip.AddrPort, error) {
	var mark uint32
	c.mu.Lock()
	if c.tn != nil && c.tn.kernel != nil {
		mark = c.tn.kernel.FwMark()
	}
	c.mu.Unlock()
	d := net.Dialer{}
	if mark != 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error { return tun.SetMarkRaw(rc, mark) }
	}
	conn, err := d.Dial("udp", remote.String())
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer conn.Close()
	la := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(la.Addr().Unmap(), port), nil
}

// watchNetwork starts the client's own watch of addresses and routes
// (Linux: rtnetlink), once, so roaming works without the app calling
// NetworkChanged; elsewhere the platform's callbacks are the source.
func (c *Client) watchNetwork() {
	if !c.profile.MOBIKEEnabled() {
		return
	}
	r := &c.roam
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watch != nil || r.closed {
		return
	}
	w, err := startNetWatch(func() { c.pathChanged(false) }, c.log)
	if err != nil {
		c.log.Debug("no network watch; roaming relies on NetworkChanged", "err", err)
		r.closed = true // do not try again
		return
	}
	r.watch = w
}

// stopWatch ends the network watch for good.
func (c *Client) stopWatch() {
	r := &c.roam
	r.mu.Lock()
	w := r.watch
	r.watch, r.closed = nil, true
	r.mu.Unlock()
	if w != nil {
		w.close()
	}
}

// debouncer calls f once things have been quiet for d.
type debouncer struct {
	mu sync.Mutex
	t  *time.Timer
	d  time.Duration
	f  func()
}

func (b *debouncer) kick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.t == nil {
		b.t = time.AfterFunc(b.d, b.f)
		return
	}
	b.t.Reset(b.d)
}

func (b *debouncer) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.t != nil {
		b.t.Stop()
	}
}
