package ike

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// NATTPort is the UDP port for NAT traversal (RFC 3948): IKE behind a
// four-byte non-ESP marker, and UDP-encapsulated ESP.
const NATTPort = 4500

// nonESPMarker prefixes IKE messages sent on the NAT-T port.
var nonESPMarker = [4]byte{}

// Datagram is one inbound IKE message with the address it came from.
type Datagram struct {
	Data  []byte
	From  netip.AddrPort
	Encap bool // arrived behind a non-ESP marker
}

// ESPHandler receives UDP-encapsulated ESP packets. It must not retain pkt.
type ESPHandler func(pkt []byte, from netip.AddrPort)

// UnknownHandler receives IKE messages that name no IKE SA of this transport
// (e.g. an unprotected INVALID_IKE_SPI from a restarted gateway). It must not
// retain the data.
type UnknownHandler func(d Datagram)

// Transport owns one UDP socket shared by all IKE SAs of a client. It adds
// and strips the non-ESP marker, sends ESP to the data plane and hands IKE
// messages to the IKE SA named by the initiator SPI.
type Transport struct {
	conn *net.UDPConn
	log  *slog.Logger

	mu      sync.Mutex
	sas     map[uint64]chan Datagram
	encap   map[netip.AddrPort]bool
	esp     ESPHandler
	unknown UnknownHandler

	done chan struct{}
	wg   sync.WaitGroup
}

// NewTransport wraps conn and starts reading from it. Close stops it.
func NewTransport(conn *net.UDPConn, log *slog.Logger) *Transport {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Transport{
		conn:  conn,
		log:   log,
		sas:   make(map[uint64]chan Datagram),
		encap: make(map[netip.AddrPort]bool),
		done:  make(chan struct{}),
	}
	t.wg.Add(1)
	go t.readLoop()
	return t
}

// Listen opens a UDP socket on laddr (":0" for an ephemeral port) and
// returns a Transport over it.
func Listen(laddr string, log *slog.Logger) (*Transport, error) {
	ua, err := net.ResolveUDPAddr("udp", laddr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	return NewTransport(c, log), nil
}

// Conn returns the underlying socket (for platform hooks such as Android's
// VpnService.protect).
func (t *Transport) Conn() *net.UDPConn { return t.conn }

// LocalPort returns the local UDP port.
func (t *Transport) LocalPort() uint16 {
	return uint16(t.conn.LocalAddr().(*net.UDPAddr).Port)
}

// SetESPHandler installs the receiver for encapsulated ESP.
func (t *Transport) SetESPHandler(h ESPHandler) {
	t.mu.Lock()
	t.esp = h
	t.mu.Unlock()
}

// SetUnknownHandler installs the receiver for IKE messages naming no SA.
func (t *Transport) SetUnknownHandler(h UnknownHandler) {
	t.mu.Lock()
	t.unknown = h
	t.mu.Unlock()
}

// register routes messages whose initiator SPI is spi to a new channel.
func (t *Transport) register(spi uint64) chan Datagram {
	ch := make(chan Datagram, 16)
	t.mu.Lock()
	t.sas[spi] = ch
	t.mu.Unlock()
	return ch
}

func (t *Transport) unregister(spi uint64) {
	t.mu.Lock()
	delete(t.sas, spi)
	t.mu.Unlock()
}

// Send writes an IKE message to the peer; with encap it goes behind a
// non-ESP marker and the peer is remembered as speaking NAT-T.
func (t *Transport) Send(msg []byte, to netip.AddrPort, encap bool) error {
	if encap {
		t.mu.Lock()
		t.encap[to] = true
		t.mu.Unlock()
		b := make([]byte, 0, len(msg)+4)
		b = append(b, nonESPMarker[:]...)
		b = append(b, msg...)
		_, err := t.conn.WriteToUDPAddrPort(b, to)
		return err
	}
	_, err := t.conn.WriteToUDPAddrPort(msg, to)
	return err
}

// SendESP writes an encapsulated ESP packet (it must start with a non-zero SPI).
func (t *Transport) SendESP(pkt []byte, to netip.AddrPort) error {
	_, err := t.conn.WriteToUDPAddrPort(pkt, to)
	return err
}

// SendKeepalive writes a NAT-T keepalive (a single 0xFF byte, RFC 3948 §2.3).
func (t *Transport) SendKeepalive(to netip.AddrPort) error {
	_, err := t.conn.WriteToUDPAddrPort([]byte{0xff}, to)
	return err
}

// Close stops reading and closes the socket.
func (t *Transport) Close() error {
	select {
	case <-t.done:
		return nil
	default:
	}
	close(t.done)
	err := t.conn.Close()
	t.wg.Wait()
	return err
}

func (t *Transport) readLoop() {
	defer t.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := t.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-t.done:
				return
			default:
			}
			t.log.Debug("udp read", "err", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		t.dispatch(buf[:n], from)
	}
}

func (t *Transport) dispatch(b []byte, from netip.AddrPort) {
	t.mu.Lock()
	encap := t.encap[from] || from.Port() == NATTPort
	esp := t.esp
	t.mu.Unlock()
	if encap {
		switch {
		case len(b) == 1 && b[0] == 0xff:
			return // NAT-T keepalive
		case len(b) >= 4 && binary.BigEndian.Uint32(b) == 0:
			b = b[4:]
		default:
			if esp != nil && len(b) >= 8 {
				esp(b, from)
			}
			return
		}
	}
	if len(b) < wire.HeaderLen {
		return
	}
	d := Datagram{Data: append([]byte(nil), b...), From: from, Encap: encap}
	spi := binary.BigEndian.Uint64(b)
	t.mu.Lock()
	ch, ok := t.sas[spi]
	unknown := t.unknown
	t.mu.Unlock()
	if !ok {
		if unknown != nil {
			unknown(d)
		}
		return
	}
	select {
	case ch <- d:
	default:
		t.log.Debug("ike inbound queue full, dropped", "from", from)
	}
}

// recv waits for the next datagram for an SA.
func recv(ctx context.Context, ch <-chan Datagram) (Datagram, error) {
	select {
	case d := <-ch:
		return d, nil
	case <-ctx.Done():
		return Datagram{}, ctx.Err()
	}
}
