package eap

import (
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// EAP codes (RFC 3748 §4) and types (§5).
const (
	CodeRequest  = 1
	CodeResponse = 2
	CodeSuccess  = 3
	CodeFailure  = 4

	TypeIdentity = 1
	TypeNak      = 3
	TypeMSCHAPv2 = 26
)

// MSCHAPv2 op codes (draft-kamath-pppext-eap-mschapv2 §2).
const (
	opChallenge = 1
	opResponse  = 2
	opSuccess   = 3
	opFailure   = 4
)

// maxIdentity bounds the EAP identity accepted.
const maxIdentity = 253

// Status is where a Server stands after a response.
type Status int

const (
	// Continue: send the returned request and wait for the next response.
	Continue Status = iota
	// Succeeded: send the returned EAP-Success; MSK and Identity are set.
	Succeeded
	// Failed: send the returned EAP-Failure; the authentication is over.
	Failed
)

// Users returns the password of an EAP identity; ok false means unknown.
type Users func(identity string) (password string, ok bool)

type state int

const (
	stIdentity  state = iota // Request/Identity sent
	stChallenge              // MSCHAPv2 Challenge sent
	stSuccess                // MSCHAPv2 Success request sent
	stTLS                    // EAP-TLS in progress
	stDone
)

// Server runs EAP-Identity and EAP-MSCHAPv2 for one peer. It is not safe
// for concurrent use. Errors never contain a password.
type Server struct {
	users Users
	rand  io.Reader
	name  string

	st        state
	id        uint8 // identifier of the outstanding request
	identity  string
	challenge [16]byte
	msk       []byte
	ok        bool

	tlsCfg *tls.Config  // EnableTLS
	tls    *tlsEndpoint // the EAP-TLS handshake, from startTLS
}

// NewServer starts an exchange; name is the MSCHAPv2 authenticator name
// (e.g. the gateway's identity) sent in the Challenge.
func NewServer(users Users, rand io.Reader, name string) *Server {
	return &Server{users: users, rand: rand, name: name}
}

// Start returns the first request: EAP Request/Identity.
func (s *Server) Start() ([]byte, error) {
	var b [1]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return nil, fmt.Errorf("eap: random: %w", err)
	}
	s.id = b[0]
	s.st = stIdentity
	return packet(CodeRequest, s.id, TypeIdentity, nil), nil
}

// Identity is the peer's EAP identity (set after its Identity response).
func (s *Server) Identity() string { return s.identity }

// MSK is the master session key, nil before success.
func (s *Server) MSK() []byte {
	if !s.ok {
		return nil
	}
	return s.msk
}

// Handle takes the peer's EAP response and returns the next packet to
// send and the status. A response that does not belong to the outstanding
// request (wrong code or identifier, malformed) is an error and changes
// nothing: the caller may drop it.
func (s *Server) Handle(resp []byte) ([]byte, Status, error) {
	if s.st == stDone {
		return nil, Failed, errors.New("eap: exchange already over")
	}
	if len(resp) < 5 {
		return nil, Continue, errors.New("eap: response too short")
	}
	if resp[0] != CodeResponse {
		return nil, Continue, fmt.Errorf("eap: code %d, want Response", resp[0])
	}
	if n := int(binary.BigEndian.Uint16(resp[2:])); n != len(resp) {
		return nil, Continue, fmt.Errorf("eap: length field %d, packet %d", n, len(resp))
	}
	if resp[1] != s.id {
		return nil, Continue, fmt.Errorf("eap: identifier %d, want %d", resp[1], s.id)
	}
	typ, data := resp[4], resp[5:]
	switch {
	case s.st == stIdentity && typ == TypeIdentity:
		return s.onIdentity(data)
	case typ == TypeNak && s.st == stChallenge && s.tlsCfg != nil && bytes.IndexByte(data, TypeTLS) >= 0:
		return s.startTLS()
	case typ == TypeNak:
		return s.fail(fmt.Sprintf("peer refuses our EAP method (Nak %x)", data))
	case s.st == stTLS && typ == TypeTLS:
		return s.onTLS(data)
	case s.st == stChallenge && typ == TypeMSCHAPv2:
		return s.onResponse(data)
	case s.st == stSuccess && typ == TypeMSCHAPv2:
		if len(data) < 1 || data[0] != opSuccess {
			return s.fail("peer did not acknowledge MSCHAPv2 success")
		}
		s.st, s.ok = stDone, true
		return []byte{CodeSuccess, s.id + 1, 0, 4}, Succeeded, nil
	default:
		return s.fail(fmt.Sprintf("unexpected EAP type %d", typ))
	}
}

// fail ends the exchange with EAP-Failure; why is for the caller's log.
func (s *Server) fail(why string) ([]byte, Status, error) {
	s.Close()
	s.st = stDone
	s.msk = nil
	return []byte{CodeFailure, s.id + 1, 0, 4}, Failed, errors.New("eap: " + why)
}

func (s *Server) onIdentity(data []byte) ([]byte, Status, error) {
	id := string(data)
	if len(id) == 0 || len(id) > maxIdentity || strings.ContainsAny(id, "\x00") {
		return s.fail("invalid EAP identity")
	}
	s.identity = id
	if s.users == nil && s.tlsCfg != nil {
		return s.startTLS()
	}
	if _, err := io.ReadFull(s.rand, s.challenge[:]); err != nil {
		return nil, Continue, fmt.Errorf("eap: random: %w", err)
	}
	s.id++
	// OpCode | MS-CHAPv2-ID | MS-Length | Value-Size | Challenge | Name
	body := []byte{opChallenge, s.id, 0, 0, 16}
	body = append(body, s.challenge[:]...)
	body = append(body, s.name...)
	binary.BigEndian.PutUint16(body[2:], uint16(len(body)))
	s.st = stChallenge
	return packet(CodeRequest, s.id, TypeMSCHAPv2, body), Continue, nil
}

func (s *Server) onResponse(data []byte) ([]byte, Status, error) {
	// OpCode | MS-CHAPv2-ID | MS-Length | Value-Size(49) | Peer-Challenge(16)
	// | Reserved(8) | NT-Response(24) | Flags(1) | Name
	if len(data) < 4+1+49 || data[0] != opResponse || data[4] != 49 {
		return s.fail("malformed MSCHAPv2 response")
	}
	peerChallenge := data[5:21]
	ntResp := data[29:53]
	name := string(data[54:])
	user := stripDomain(name)
	if stripDomain(s.identity) != user {
		return s.fail(fmt.Sprintf("MSCHAPv2 name %q is not the EAP identity %q", name, s.identity))
	}
	password, known := s.users(s.identity)
	// Unknown users cost the same work as known ones.
	ph := NtPasswordHash(password)
	want := ChallengeResponse(ChallengeHash(peerChallenge, s.challenge[:], user), ph)
	match := subtle.ConstantTimeCompare(want, ntResp) == 1
	if !known {
		return s.fail(fmt.Sprintf("unknown EAP identity %q", s.identity))
	}
	if !match {
		return s.fail(fmt.Sprintf("wrong password for %q", s.identity))
	}
	msg := GenerateAuthenticatorResponse(ph, ntResp, peerChallenge, s.challenge[:], user) + " M=Welcome"
	s.msk = MSK(ph, bytes.Clone(ntResp))
	s.id++
	body := []byte{opSuccess, data[1], 0, 0}
	body = append(body, msg...)
	binary.BigEndian.PutUint16(body[2:], uint16(len(body)))
	s.st = stSuccess
	return packet(CodeRequest, s.id, TypeMSCHAPv2, body), Continue, nil
}

// packet builds Code | Identifier | Length | Type | data.
func packet(code, id, typ uint8, data []byte) []byte {
	b := make([]byte, 5, 5+len(data))
	b[0], b[1], b[4] = code, id, typ
	b = append(b, data...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}
