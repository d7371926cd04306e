package ike

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/qcdvpn/qcdvpn/ike/wire"
	"github.com/qcdvpn/qcdvpn/udpbatch"
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

// ESPPacket is one received UDP-encapsulated ESP packet.
type ESPPacket struct {
	Data []byte
	From netip.AddrPort
}

// ESPHandler receives the ESP packets of one batch read. The buffers are
// reused once it returns, so it must finish with them (or copy) first.
type ESPHandler func(pkts []ESPPacket)

// batchSize is how many datagrams one recvmmsg may return.
const batchSize = 64

// maxDatagram bounds one received datagram.
const maxDatagram = 65535

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
	unprot  UnknownHandler

	batch batchConn
	// natt: every peer frames IKE behind the non-ESP marker (a socket
	// that serves only NAT-T, as a gateway's port 4500 does).
	natt bool
	// gro: the socket returns coalesced reads (UDP_GRO); gso: sends may
	// carry UDP_SEGMENT, until the route proves unable to segment.
	gro bool
	gso atomic.Bool

	done chan struct{}
	wg   sync.WaitGroup

	queueFull atomic.Uint64 // IKE datagrams dropped: their SA's queue was full
}

// batchConn is recvmmsg/sendmmsg on Linux (x/net falls back to one message
// per call elsewhere).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
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
	if la, ok := conn.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		t.batch = ipv4.NewPacketConn(conn)
	} else {
		t.batch = ipv6.NewPacketConn(conn)
	}
	gro, gso := udpbatch.Tune(conn)
	t.gro = gro
	t.gso.Store(gso)
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

// SetNATT makes the transport treat every datagram as RFC 3948 framed
// (IKE behind the non-ESP marker, else ESP), whatever the peer's port: a
// gateway's NAT-T socket needs this to tell a restarted client's ESP from
// IKE before it has ever sent to that client.
func (t *Transport) SetNATT(on bool) {
	t.mu.Lock()
	t.natt = on
	t.mu.Unlock()
}

// SetUnprotectedHandler installs the receiver for messages that name one
// of our IKE SAs but carry no SK payload and are no handshake response
// (RFC 6290 §4.5: INVALID_IKE_SPI / INVALID_SPI with QCD tokens). It runs
// on the read goroutine, so a flood of them is judged (and rate-limited)
// there and never crowds the SA's own queue of real messages; it must not
// block or retain the data. Without it they go to the SA.
func (t *Transport) SetUnprotectedHandler(h UnknownHandler) {
	t.mu.Lock()
	t.unprot = h
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

// registerCh routes messages naming spi (as either SPI) to an existing
// channel; a rekeyed IKE SA keeps its session's channel.
func (t *Transport) registerCh(spi uint64, ch chan Datagram) {
	t.mu.Lock()
	t.sas[spi] = ch
	t.mu.Unlock()
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

// SendESPBatch writes several encapsulated ESP packets to one peer with as
// few system calls as the OS allows: sendmmsg on Linux, and there runs of
// equal-sized packets go out as one UDP_SEGMENT message each, which the
// kernel splits into ordinary datagrams. scratch holds the caller's
// reusable message headers, so sending allocates nothing once they have
// grown to size.
func (t *Transport) SendESPBatch(pkts [][]byte, to *net.UDPAddr, scratch []ipv4.Message) error {
	if len(scratch) == 0 {
		return errors.New("ike: SendESPBatch without message headers")
	}
	for len(pkts) > 0 {
		gso := t.gso.Load()
		n, used := 0, 0
		for n < len(scratch) && used < len(pkts) {
			m := &scratch[n]
			k := 1
			if gso {
				k = segmentRun(pkts[used:])
			}
			if cap(m.Buffers) < k {
				m.Buffers = make([][]byte, k, udpbatch.MaxSegments)
			}
			m.Buffers = append(m.Buffers[:0], pkts[used:used+k]...)
			m.Addr = to
			m.OOB = m.OOB[:0]
			if k > 1 {
				if cap(m.OOB) < udpbatch.ControlSpace {
					m.OOB = make([]byte, 0, udpbatch.ControlSpace)
				}
				m.OOB, _ = udpbatch.PutSegment(m.OOB, uint16(len(pkts[used])))
			}
			used += k
			n++
		}
		sent, err := t.batch.WriteBatch(scratch[:n], 0)
		if err != nil {
			if gso && udpbatch.DisableGSO(err) {
				t.log.Debug("udp: segmentation offload refused, sending datagrams one by one", "err", err)
				t.gso.Store(false)
				continue // resend this batch without UDP_SEGMENT
			}
			return err
		}
		for _, m := range scratch[:sent] {
			pkts = pkts[len(m.Buffers):]
		}
		if sent == 0 {
			return errors.New("ike: sendmmsg sent nothing")
		}
	}
	return nil
}

// segmentRun returns how many packets from the start of pkts one
// UDP_SEGMENT send may carry: all of the first one's size, the last
// possibly shorter, within the kernel's limits.
func segmentRun(pkts [][]byte) int {
	seg := len(pkts[0])
	total, k := seg, 1
	for k < len(pkts) && k < udpbatch.MaxSegments {
		l := len(pkts[k])
		if l > seg || total+l > udpbatch.MaxGSOBytes {
			break
		}
		total += l
		k++
		if l < seg {
			break // a shorter segment ends the run
		}
	}
	return k
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

// groReads is how many coalesced datagrams one recvmmsg takes with
// UDP_GRO on: each may hold up to udpbatch.MaxSegments packets, which are
// split into buffers of their own.
const groReads = 4

func (t *Transport) readLoop() {
	defer t.wg.Done()
	br := t.batch
	reads := batchSize
	if t.gro {
		reads = groReads
	}
	msgs := make([]ipv4.Message, reads)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, maxDatagram)}
		if t.gro {
			msgs[i].OOB = make([]byte, udpbatch.ControlSpace)
		}
	}
	// spare holds the segments of coalesced reads after the first, each in
	// a buffer of its own with room behind it: the TUN's GRO coalesces
	// packets by appending to the first one's buffer. Allocated on first
	// use, then kept.
	var spare [][]byte
	if t.gro {
		spare = make([][]byte, groReads*(udpbatch.MaxSegments-1))
	}
	espBatch := make([]ESPPacket, 0, max(batchSize, len(spare)+groReads))
	for {
		for i := range msgs {
			msgs[i].OOB = msgs[i].OOB[:cap(msgs[i].OOB)]
		}
		n, err := br.ReadBatch(msgs, 0)
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
		t.mu.Lock()
		esp := t.esp
		t.mu.Unlock()
		espBatch = espBatch[:0]
		used := 0
		for i := 0; i < n; i++ {
			m := &msgs[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			from := ua.AddrPort()
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			b := m.Buffers[0][:m.N]
			seg := 0
			if t.gro {
				seg = udpbatch.SegmentSize(m.OOB[:m.NN])
			}
			if seg <= 0 || seg >= len(b) {
				if pkt, isESP := t.dispatch(b, from); isESP && esp != nil {
					espBatch = append(espBatch, ESPPacket{Data: pkt, From: from})
				}
				continue
			}
			// The first segment stays in place; the others are copied
			// out (before the handler opens anything in place), so the
			// first one's buffer has room behind it.
			if pkt, isESP := t.dispatch(b[:seg], from); isESP && esp != nil {
				espBatch = append(espBatch, ESPPacket{Data: pkt, From: from})
			}
			for off := seg; off < len(b) && used < len(spare); off += seg {
				d := b[off:min(off+seg, len(b))]
				if spare[used] == nil {
					spare[used] = make([]byte, maxDatagram)
				}
				c := spare[used][:len(d)]
				used++
				copy(c, d)
				if pkt, isESP := t.dispatch(c, from); isESP && esp != nil {
					espBatch = append(espBatch, ESPPacket{Data: pkt, From: from})
				}
			}
		}
		if len(espBatch) > 0 {
			esp(espBatch)
		}
	}
}

// dispatch routes one datagram: IKE to its SA, ESP back to the caller.
func (t *Transport) dispatch(b []byte, from netip.AddrPort) (esp []byte, isESP bool) {
	t.mu.Lock()
	encap := t.natt || t.encap[from] || from.Port() == NATTPort
	t.mu.Unlock()
	if encap {
		switch {
		case len(b) == 1 && b[0] == 0xff:
			return nil, false // NAT-T keepalive
		case len(b) >= 4 && binary.BigEndian.Uint32(b) == 0:
			b = b[4:]
		default:
			return b, len(b) >= 8
		}
	}
	if !encap && len(b) >= 4+wire.HeaderLen && binary.BigEndian.Uint32(b) == 0 {
		// Framed IKE from a source we never talked to (an HA peer
		// answering for the gateway): the header's length field tells
		// a marker from an SPI that starts with zeros.
		if _, err := wire.ParseHeader(b); err != nil {
			if _, err := wire.ParseHeader(b[4:]); err == nil {
				b, encap = b[4:], true
			}
		}
	}
	if len(b) < wire.HeaderLen {
		return nil, false
	}
	// Our SPI is SPIi of SAs we initiated and SPIr of those the gateway
	// initiated (a gateway-started IKE rekey).
	t.mu.Lock()
	ch, ok := t.sas[binary.BigEndian.Uint64(b)]
	if !ok {
		ch, ok = t.sas[binary.BigEndian.Uint64(b[8:])]
	}
	unknown, unprot := t.unknown, t.unprot
	t.mu.Unlock()
	if ok && unprot != nil && isUnprotectedNotice(b) {
		unprot(Datagram{Data: b, From: from, Encap: encap})
		return nil, false
	}
	d := Datagram{Data: append([]byte(nil), b...), From: from, Encap: encap}
	if !ok {
		if unknown != nil {
			unknown(d)
		}
		return nil, false
	}
	select {
	case ch <- d:
	default:
		t.queueFull.Add(1)
		t.log.Debug("ike inbound queue full, dropped", "from", from)
	}
	return nil, false
}

// isUnprotectedNotice reports whether an IKE message has no SK/SKF
// payload and is not a response of the initial exchanges (those are
// unprotected by design and belong to a handshake).
func isUnprotectedNotice(b []byte) bool {
	next, exch := wire.PayloadType(b[16]), wire.ExchangeType(b[18])
	return next != wire.PayloadSK && next != wire.PayloadSKF &&
		exch != wire.ExchangeIKESAInit && exch != wire.ExchangeIKESessionResume
}
