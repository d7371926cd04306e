package eap

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// TypeNotification is the EAP Notification type (RFC 3748 §5.2).
const TypeNotification = 2

// ErrRejected is wrapped by every Peer error that means the authenticator
// refused our credentials (EAP-Failure, an MSCHAPv2 Failure request), as
// opposed to a malformed or unexpected packet.
var ErrRejected = errors.New("eap: the gateway rejected our credentials")

// Method is one authentication method on the peer side, driven by Peer.
type Method interface {
	// Type is the method's EAP type (TypeMSCHAPv2, TypeTLS).
	Type() uint8
	// Name is the method's name for messages, e.g. "EAP-MSCHAPv2".
	Name() string
	// Process answers the type data of a request (the octets after the
	// Type) with the type data of the response. An error with a non-nil
	// response still sends the response (e.g. acknowledging a failure)
	// but the exchange is then expected to end in EAP-Failure.
	Process(data []byte) ([]byte, error)
	// MSK is the master session key once the method has completed
	// successfully on our side, else nil. A method without keys returns
	// an empty non-nil slice when complete.
	MSK() []byte
	// Close releases the method's resources (goroutines, key material).
	Close()
}

// Peer is the peer (supplicant) side of one EAP conversation (RFC 3748):
// it answers Identity and Notification requests itself and hands the
// method's requests to its Method. It is not safe for concurrent use.
// Errors never contain a password.
type Peer struct {
	identity string
	m        Method

	started   bool  // a request of the method was processed
	methodErr error // the method's last error (sent with a response)
	done      bool
	lastID    int // identifier of the last request answered, -1 before
	lastResp  []byte
}

// NewPeer starts a conversation in which we are identity (sent in
// Response/Identity) and authenticate with m.
func NewPeer(identity string, m Method) *Peer {
	return &Peer{identity: identity, m: m, lastID: -1}
}

// MSK is the method's master session key once EAP-Success was received;
// nil otherwise. It is empty (not nil) for methods without keys.
func (p *Peer) MSK() []byte {
	if !p.done || p.methodErr != nil {
		return nil
	}
	return p.m.MSK()
}

// Close releases the method.
func (p *Peer) Close() { p.m.Close() }

// Handle takes one EAP packet from the authenticator and returns the
// response to send (Continue), or the end of the conversation: Succeeded
// after EAP-Success (MSK is set), Failed after EAP-Failure or an error
// that ends the exchange. The returned error says why; errors.Is(err,
// ErrRejected) when the gateway refused us.
func (p *Peer) Handle(pkt []byte) ([]byte, Status, error) {
	if p.done {
		return nil, Failed, errors.New("eap: conversation already over")
	}
	code, id, typ, data, err := parsePacket(pkt)
	if err != nil {
		return nil, Failed, err
	}
	switch code {
	case CodeSuccess:
		p.done = true
		if p.methodErr != nil {
			return nil, Failed, p.methodErr
		}
		if !p.started || p.m.MSK() == nil {
			// RFC 3748 §4.2: a Success before the method finished is
			// no proof that the gateway knows our credentials.
			return nil, Failed, fmt.Errorf("eap: EAP-Success before %s completed", p.m.Name())
		}
		return nil, Succeeded, nil
	case CodeFailure:
		p.done = true
		if p.methodErr != nil {
			return nil, Failed, p.methodErr
		}
		return nil, Failed, fmt.Errorf("%w: EAP-Failure", ErrRejected)
	case CodeRequest:
	default:
		return nil, Failed, fmt.Errorf("eap: unexpected code %d from the authenticator", code)
	}
	if int(id) == p.lastID && p.lastResp != nil {
		// A retransmitted request gets the same answer (RFC 3748 §4.1).
		return p.lastResp, Continue, nil
	}
	var resp []byte
	switch {
	case typ == TypeIdentity:
		resp = packet(CodeResponse, id, TypeIdentity, []byte(p.identity))
	case typ == TypeNotification:
		resp = packet(CodeResponse, id, TypeNotification, nil)
	case typ == p.m.Type():
		p.started = true
		out, err := p.m.Process(data)
		if err != nil {
			if out == nil {
				p.done = true
				return nil, Failed, err
			}
			p.methodErr = err
		}
		resp = packet(CodeResponse, id, typ, out)
	case typ == TypeNak:
		return nil, Failed, fmt.Errorf("eap: unexpected request type %d", typ)
	case !p.started:
		// RFC 3748 §5.3.1: refuse the method and name the one we have.
		resp = packet(CodeResponse, id, TypeNak, []byte{p.m.Type()})
	default:
		return nil, Failed, fmt.Errorf("eap: gateway switched to EAP type %d in the middle of %s", typ, p.m.Name())
	}
	p.lastID, p.lastResp = int(id), resp
	return resp, Continue, nil
}

// parsePacket splits an EAP packet (RFC 3748 §4); type and data are only
// set for requests and responses. Octets beyond the Length field are
// padding and ignored.
func parsePacket(pkt []byte) (code, id, typ uint8, data []byte, err error) {
	if len(pkt) < 4 {
		return 0, 0, 0, nil, errors.New("eap: packet shorter than 4 octets")
	}
	n := int(binary.BigEndian.Uint16(pkt[2:]))
	if n < 4 || n > len(pkt) {
		return 0, 0, 0, nil, fmt.Errorf("eap: length field %d, packet %d octets", n, len(pkt))
	}
	pkt = pkt[:n]
	code, id = pkt[0], pkt[1]
	if code == CodeRequest || code == CodeResponse {
		if n < 5 {
			return 0, 0, 0, nil, errors.New("eap: request without a type")
		}
		typ, data = pkt[4], pkt[5:]
		if typ == 254 {
			return 0, 0, 0, nil, errors.New("eap: expanded types are not supported")
		}
	}
	return code, id, typ, data, nil
}
