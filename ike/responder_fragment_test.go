package ike

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
)

// mtuRelay forwards UDP between one client and a gateway, dropping every
// datagram larger than mtu (a path that loses IP fragments).
type mtuRelay struct {
	conn                        *net.UDPConn
	gw                          netip.AddrPort
	client                      atomic.Pointer[netip.AddrPort]
	dropped, fromClient, fromGW atomic.Int64
	mtu                         int
}

func newMTURelay(t *testing.T, gw netip.AddrPort, mtu int) *mtuRelay {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &mtuRelay{conn: c, gw: gw, mtu: mtu}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n > r.mtu {
				r.dropped.Add(1)
				continue
			}
			to := r.gw
			if from == r.gw {
				r.fromGW.Add(1)
				p := r.client.Load()
				if p == nil {
					continue
				}
				to = *p
			} else {
				r.fromClient.Add(1)
				r.client.Store(&from)
			}
			_, _ = c.WriteToUDPAddrPort(buf[:n], to)
		}
	}()
	return r
}

func (r *mtuRelay) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(r.conn.LocalAddr().(*net.UDPAddr).Port))
}

// TestResponderFragments: with certificate chains far over the path MTU
// and a path that drops anything larger, IKE_AUTH completes only because
// both ends fragment (RFC 7383) — the responder reassembles the request
// and fragments its answer.
func TestResponderFragments(t *testing.T) {
	leakCheck(t)
	pki := newPKI(t, true)
	cc := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
	var relay *mtuRelay
	g := startGateway(t, func(rc *ResponderConfig) {
		pki.useCerts(rc, cc)
		rc.PSK = nil
		// Pad both chains with copies of the CA: about 2.5 kB each.
		for range 4 {
			rc.CertChain = append(rc.CertChain, pki.ca.Raw)
		}
	})
	for range 4 {
		cc.CertChain = append(cc.CertChain, pki.ca.Raw)
	}
	relay = newMTURelay(t, g.addr, 1400)
	c, err := gwDial(t, relay.addr(), cc)
	if err != nil {
		t.Fatalf("IKE_AUTH through a 1400-byte path: %v (dropped %d datagrams)", err, relay.dropped.Load())
	}
	s := <-g.r.Sessions()
	defer s.Abandon(ErrClosed)
	checkSessionMirror(t, c, s)
	if relay.dropped.Load() != 0 {
		t.Errorf("%d datagrams over the MTU were sent", relay.dropped.Load())
	}
	// IKE_SA_INIT, then IKE_AUTH in at least two fragments each way.
	if relay.fromClient.Load() < 3 || relay.fromGW.Load() < 3 {
		t.Errorf("datagrams client→gw %d, gw→client %d: IKE_AUTH was not fragmented both ways", relay.fromClient.Load(), relay.fromGW.Load())
	}
}
