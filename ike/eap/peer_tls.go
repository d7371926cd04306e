package eap

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// TypeTLS is EAP-TLS (RFC 5216).
const TypeTLS = 13

// EAP-TLS flags (RFC 5216 §3.1).
const (
	tlsFlagLength = 0x80
	tlsFlagMore   = 0x40
	tlsFlagStart  = 0x20
)

const (
	// tlsFragment is the most TLS data we put in one EAP-TLS response;
	// strongSwan's own default fragment size is 1024.
	tlsFragment = 1024
	// maxTLSMessage bounds a reassembled server flight.
	maxTLSMessage = 64 << 10
	// tlsStepTimeout bounds how long the TLS stack may take on one flight.
	tlsStepTimeout = 10 * time.Second
)

// TLSPeer is the peer side of EAP-TLS (RFC 5216): Go's crypto/tls runs
// the handshake over an in-memory connection whose records travel in
// EAP-TLS fragments. TLS 1.2 keys the MSK with the TLS PRF of RFC 5216
// §2.3; TLS 1.3 with the exporter of RFC 9190 §2.3.
type TLSPeer struct {
	tlsEndpoint
}

// tlsEndpoint is crypto/tls in EAP-TLS framing, for either side.
type tlsEndpoint struct {
	cfg    *tls.Config
	server bool

	conn  *memConn
	tc    *tls.Conn
	hsErr chan error    // the handshake's result
	done  chan struct{} // closed when the TLS goroutine has exited
	hsOK  bool

	in     []byte // server fragments being reassembled
	inLen  int    // total from the L flag, 0 when none
	out    []byte // our flight not yet sent
	outLen int    // its total length (first fragment's L field)

	clientRandom, masterSecret []byte // TLS 1.2, from the key log
	serverRandom               []byte
	msk                        []byte
	closed                     bool
}

// NewTLSPeer prepares EAP-TLS with cfg (client certificate, and a
// verification of the gateway's certificate). cfg is cloned; its
// KeyLogWriter is used internally for the TLS 1.2 key derivation and must
// be nil.
func NewTLSPeer(cfg *tls.Config) (*TLSPeer, error) {
	if cfg.KeyLogWriter != nil {
		return nil, errors.New("eap: EAP-TLS sets KeyLogWriter itself")
	}
	p := &TLSPeer{tlsEndpoint{cfg: cfg.Clone()}}
	// RFC 5216 keys the MSK from the master secret; Go exports it only
	// through the key log (ExportKeyingMaterial in TLS 1.2 needs the
	// extended master secret, which strongSwan does not negotiate).
	p.cfg.KeyLogWriter = keyLog{&p.tlsEndpoint}
	p.cfg.SessionTicketsDisabled = true
	if p.cfg.MinVersion == 0 {
		p.cfg.MinVersion = tls.VersionTLS12
	}
	return p, nil
}

// Type is TypeTLS.
func (p *TLSPeer) Type() uint8 { return TypeTLS }

// Name is "EAP-TLS".
func (p *TLSPeer) Name() string { return "EAP-TLS" }

// MSK is set once the TLS handshake completed.
func (p *tlsEndpoint) MSK() []byte { return p.msk }

// Close stops the TLS stack and forgets the keys.
func (p *tlsEndpoint) Close() {
	if p.closed {
		return
	}
	p.closed = true
	if p.conn != nil {
		p.conn.Close()
		<-p.done
	}
	clear(p.masterSecret)
	clear(p.msk)
	p.msk = nil
}

// Process handles one EAP-TLS request: Start, a fragment of the server's
// flight, or the acknowledgement of one of ours.
func (p *TLSPeer) Process(d []byte) ([]byte, error) {
	if p.closed {
		return nil, errors.New("eap: EAP-TLS closed")
	}
	if len(d) < 1 {
		return nil, errors.New("eap: EAP-TLS request without flags")
	}
	flags, d := d[0], d[1:]
	if flags&tlsFlagLength != 0 {
		if len(d) < 4 {
			return nil, errors.New("eap: EAP-TLS length flag without a length")
		}
		n := int(binary.BigEndian.Uint32(d))
		d = d[4:]
		if n > maxTLSMessage || n < len(d) {
			return nil, fmt.Errorf("eap: EAP-TLS message length %d", n)
		}
		if p.in == nil {
			p.inLen = n
		}
	}
	switch {
	case flags&tlsFlagStart != 0:
		if p.conn != nil {
			return nil, errors.New("eap: second EAP-TLS start")
		}
		return p.start()
	case p.conn == nil:
		return nil, errors.New("eap: EAP-TLS data before start")
	case len(p.out) > 0:
		// The gateway acknowledged a fragment of ours: send the next.
		if len(d) != 0 || flags&tlsFlagMore != 0 {
			return nil, errors.New("eap: EAP-TLS data while our message was being fragmented")
		}
		return p.nextFragment(), nil
	}
	if len(p.in)+len(d) > maxTLSMessage {
		return nil, errors.New("eap: EAP-TLS message too long")
	}
	p.in = append(p.in, d...)
	if flags&tlsFlagMore != 0 {
		return []byte{0}, nil // acknowledge, wait for more
	}
	msg, want := p.in, p.inLen
	p.in, p.inLen = nil, 0
	if want != 0 && len(msg) != want {
		return nil, fmt.Errorf("eap: EAP-TLS message of %d octets, its length field said %d", len(msg), want)
	}
	if len(msg) == 0 {
		if p.hsOK {
			return nil, errors.New("eap: EAP-TLS request after the handshake")
		}
		return nil, errors.New("eap: empty EAP-TLS request")
	}
	if p.hsOK {
		// TLS 1.3: the gateway's protected success indication or a
		// ticket; read in the background by the TLS stack, nothing to
		// send but an acknowledgement.
		return p.feedAfterHandshake(msg)
	}
	if err := p.step(msg); err != nil {
		if len(p.out) > 0 {
			// Send the TLS alert; the gateway ends with EAP-Failure.
			return p.nextFragment(), err
		}
		return nil, err
	}
	if len(p.out) == 0 {
		return []byte{0}, nil
	}
	return p.nextFragment(), nil
}

// start runs the client until its ClientHello is written.
func (p *TLSPeer) start() ([]byte, error) {
	p.begin(func(c *memConn) *tls.Conn { return tls.Client(c, p.cfg) })
	if err := p.step(nil); err != nil {
		return nil, err
	}
	return p.nextFragment(), nil
}

// begin runs tc's handshake (and then its reads) in a goroutine that
// Close stops.
func (p *tlsEndpoint) begin(mk func(c *memConn) *tls.Conn) {
	p.conn = newMemConn()
	p.hsErr = make(chan error, 1)
	p.done = make(chan struct{})
	p.tc = mk(p.conn)
	go func() {
		defer close(p.done)
		err := p.tc.HandshakeContext(context.Background())
		p.hsErr <- err
		if err == nil {
			// Read what follows the handshake (TLS 1.3 tickets, the
			// success indication) until closed.
			var b [512]byte
			for {
				if _, err := p.tc.Read(b[:]); err != nil {
					break
				}
			}
		}
		p.conn.Close()
	}()
}

// step hands msg to the TLS stack and waits until it wants more input or
// finished the handshake, collecting what it wrote.
func (p *tlsEndpoint) step(msg []byte) error {
	if p.serverRandom == nil && !p.server {
		p.serverRandom = serverHelloRandom(msg)
	}
	p.feed(msg)
	select {
	case <-p.conn.starved:
	case err := <-p.hsErr:
		if err != nil {
			p.out = p.conn.take()
			p.outLen = len(p.out)
			return fmt.Errorf("eap: EAP-TLS handshake: %w", tlsReason(err))
		}
		p.hsOK = true
		<-p.conn.starved // the reader loop is waiting now
		if err := p.deriveMSK(); err != nil {
			return err
		}
	case <-time.After(tlsStepTimeout):
		return errors.New("eap: EAP-TLS: TLS stack did not answer")
	}
	p.out = p.conn.take()
	p.outLen = len(p.out)
	if p.serverRandom == nil && p.server {
		p.serverRandom = serverHelloRandom(p.out)
	}
	if !p.hsOK {
		// The handshake may complete without more input (a flight ends
		// with our Finished); look once more.
		select {
		case err := <-p.hsErr:
			if err != nil {
				return fmt.Errorf("eap: EAP-TLS handshake: %w", tlsReason(err))
			}
			p.hsOK = true
			if err := p.deriveMSK(); err != nil {
				return err
			}
		default:
		}
	}
	return nil
}

// feed hands msg to the TLS stack, which is waiting for input. A
// starvation signal still pending is stale (the reader may signal again
// when woken without data), so it is dropped first: the next one means
// the stack has consumed msg and wants more.
func (p *tlsEndpoint) feed(msg []byte) {
	if len(msg) == 0 {
		return // start: the stack writes its ClientHello unasked
	}
	select {
	case <-p.conn.starved:
	default:
	}
	p.conn.feed(msg)
}

func (p *tlsEndpoint) feedAfterHandshake(msg []byte) ([]byte, error) {
	p.feed(msg)
	select {
	case <-p.conn.starved:
	case <-time.After(tlsStepTimeout):
		return nil, errors.New("eap: EAP-TLS: TLS stack did not answer")
	}
	p.out = p.conn.take()
	p.outLen = len(p.out)
	if len(p.out) == 0 {
		return []byte{0}, nil
	}
	return p.nextFragment(), nil
}

// nextFragment takes up to tlsFragment octets of p.out into a response:
// the first with the L flag and the total length, all but the last with M.
func (p *tlsEndpoint) nextFragment() []byte {
	first := len(p.out) == p.outLen
	n := min(len(p.out), tlsFragment)
	var flags byte
	if n < len(p.out) {
		flags |= tlsFlagMore
	}
	out := []byte{flags}
	if first && flags&tlsFlagMore != 0 {
		out[0] |= tlsFlagLength
		out = binary.BigEndian.AppendUint32(out, uint32(p.outLen))
	}
	out = append(out, p.out[:n]...)
	p.out = p.out[n:]
	return out
}

// deriveMSK is RFC 5216 §2.3 for TLS 1.2 (and below): the first 64
// octets of PRF(master secret, "client EAP encryption", client random |
// server random); RFC 9190 §2.3 for TLS 1.3: the first 64 octets of
// TLS-Exporter("EXPORTER_EAP_TLS_Key_Material", 0x0D, 128).
func (p *tlsEndpoint) deriveMSK() error {
	cs := p.tc.ConnectionState()
	if cs.Version >= tls.VersionTLS13 {
		km, err := cs.ExportKeyingMaterial("EXPORTER_EAP_TLS_Key_Material", []byte{TypeTLS}, 128)
		if err != nil {
			return fmt.Errorf("eap: EAP-TLS keys: %w", err)
		}
		p.msk = km[:64]
		return nil
	}
	if len(p.masterSecret) != 48 || len(p.clientRandom) != 32 || len(p.serverRandom) != 32 {
		return errors.New("eap: EAP-TLS: no TLS 1.2 master secret to derive the MSK")
	}
	h := sha256.New
	if strings.HasSuffix(tls.CipherSuiteName(cs.CipherSuite), "_SHA384") {
		h = sha512.New384
	}
	seed := append(append([]byte(nil), p.clientRandom...), p.serverRandom...)
	p.msk = prf12(h, p.masterSecret, []byte("client EAP encryption"), seed, 128)[:64]
	return nil
}

// prf12 is the TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label | seed).
func prf12(h func() hash.Hash, secret, label, seed []byte, n int) []byte {
	ls := append(append([]byte(nil), label...), seed...)
	mac := hmac.New(h, secret)
	mac.Write(ls)
	a := mac.Sum(nil)
	var out []byte
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		mac.Write(ls)
		out = mac.Sum(out)
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(nil)
	}
	return out[:n]
}

// serverHelloRandom finds the ServerHello's random in the first record of
// the server's first flight (TLS 1.2 sends it in the clear), or nil.
func serverHelloRandom(msg []byte) []byte {
	// record: type 22 | version (2) | length (2) | handshake: type 2 |
	// length (3) | version (2) | random (32)
	if len(msg) < 5+4+2+32 || msg[0] != 22 || msg[5] != 2 {
		return nil
	}
	return append([]byte(nil), msg[11:43]...)
}

// keyLog takes the NSS key log line of TLS 1.2 ("CLIENT_RANDOM <random>
// <master secret>") that crypto/tls writes; TLS 1.3 lines are ignored.
type keyLog struct{ p *tlsEndpoint }

func (k keyLog) Write(b []byte) (int, error) {
	f := strings.Fields(string(b))
	if len(f) == 3 && f[0] == "CLIENT_RANDOM" {
		cr, err1 := hex.DecodeString(f[1])
		ms, err2 := hex.DecodeString(f[2])
		if err1 == nil && err2 == nil {
			// Written by the handshake goroutine before its Finished,
			// read by deriveMSK after the handshake returned.
			k.p.clientRandom, k.p.masterSecret = cr, ms
		}
	}
	return len(b), nil
}

// tlsReason shortens crypto/tls errors (which quote no secrets).
func tlsReason(err error) error {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return fmt.Errorf("gateway sent TLS alert %q", ae.Error())
	}
	return err
}

// memConn is the TLS stack's connection: reads come from what Process
// fed, writes are collected; starved signals each time a Read finds
// nothing to return.
type memConn struct {
	idle    *time.Timer // closes an abandoned conversation's conn
	mu      sync.Mutex
	cond    *sync.Cond
	in      bytes.Buffer
	out     bytes.Buffer
	closed  bool
	starved chan struct{}
}

// memIdle ends the TLS goroutine of a conversation nobody continues
// (e.g. a half-open IKE SA that timed out).
const memIdle = 2 * time.Minute

func newMemConn() *memConn {
	c := &memConn{starved: make(chan struct{}, 1)}
	c.cond = sync.NewCond(&c.mu)
	c.idle = time.AfterFunc(memIdle, func() { c.Close() })
	return c
}

func (c *memConn) feed(b []byte) {
	c.idle.Reset(memIdle)
	c.mu.Lock()
	c.in.Write(b)
	c.mu.Unlock()
	c.cond.Broadcast()
}

func (c *memConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := bytes.Clone(c.out.Bytes())
	c.out.Reset()
	return b
}

func (c *memConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.in.Len() == 0 && !c.closed {
		select {
		case c.starved <- struct{}{}:
		default:
		}
		c.cond.Wait()
	}
	if c.in.Len() == 0 {
		return 0, io.EOF
	}
	return c.in.Read(b)
}

func (c *memConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(b)
}

func (c *memConn) Close() error {
	c.idle.Stop()
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cond.Broadcast()
	return nil
}

func (c *memConn) LocalAddr() net.Addr              { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return memAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

type memAddr struct{}

func (memAddr) Network() string { return "eap-tls" }
func (memAddr) String() string  { return "eap-tls" }
