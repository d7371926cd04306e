package eap

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MSCHAPv2Peer is the peer side of EAP-MSCHAPv2 (RFC 2759 inside
// draft-kamath-pppext-eap-mschapv2): it answers the Challenge, checks the
// authenticator's "S=" response (mutual authentication) and derives the
// MSK of RFC 3079 as strongSwan and Windows do. It keeps the password's
// NT hash, not the password.
type MSCHAPv2Peer struct {
	user  string // MSCHAPv2 Name: the user name as configured
	hash  []byte // NtPasswordHash
	rand  io.Reader
	state int // 0 wait challenge, 1 wait success/failure, 2 done

	authChal, peerChal []byte
	nt                 []byte
	msk                []byte
}

// NewMSCHAPv2Peer prepares EAP-MSCHAPv2 for user with password; rand
// supplies the peer challenge.
func NewMSCHAPv2Peer(user, password string, rand io.Reader) *MSCHAPv2Peer {
	return &MSCHAPv2Peer{user: user, hash: NtPasswordHash(password), rand: rand}
}

// Type is TypeMSCHAPv2.
func (m *MSCHAPv2Peer) Type() uint8 { return TypeMSCHAPv2 }

// Name is "EAP-MSCHAPv2".
func (m *MSCHAPv2Peer) Name() string { return "EAP-MSCHAPv2" }

// MSK is set after the authenticator's Success request verified.
func (m *MSCHAPv2Peer) MSK() []byte { return m.msk }

// Close forgets the password hash and keys.
func (m *MSCHAPv2Peer) Close() {
	clear(m.hash)
	clear(m.msk)
	m.msk = nil
}

// Process answers Challenge, Success and Failure requests.
func (m *MSCHAPv2Peer) Process(d []byte) ([]byte, error) {
	// OpCode | MS-CHAPv2-ID | MS-Length | ...
	if len(d) < 1 {
		return nil, errors.New("eap: empty MSCHAPv2 request")
	}
	op := d[0]
	if op != opChallenge && op != opSuccess && op != opFailure {
		return nil, fmt.Errorf("eap: MSCHAPv2 op code %d", op)
	}
	if len(d) < 4 {
		return nil, errors.New("eap: MSCHAPv2 request shorter than its header")
	}
	if n := int(binary.BigEndian.Uint16(d[2:])); n > len(d) || n < 4 {
		return nil, fmt.Errorf("eap: MSCHAPv2 length field %d, have %d octets", n, len(d))
	} else {
		d = d[:n]
	}
	switch {
	case op == opChallenge && m.state == 0:
		return m.challenge(d)
	case op == opSuccess && m.state == 1:
		return m.success(d)
	case op == opFailure && m.state == 1:
		m.state = 2
		// Acknowledge; the gateway then sends EAP-Failure.
		return []byte{opFailure}, fmt.Errorf("%w: MSCHAPv2 failure %s", ErrRejected, failureText(d[4:]))
	}
	return nil, fmt.Errorf("eap: MSCHAPv2 op code %d out of order", op)
}

func (m *MSCHAPv2Peer) challenge(d []byte) ([]byte, error) {
	// ... | Value-Size (16) | Challenge | Name
	if len(d) < 5+16 || d[4] != 16 {
		return nil, errors.New("eap: malformed MSCHAPv2 challenge")
	}
	m.authChal = append([]byte(nil), d[5:21]...)
	m.peerChal = make([]byte, 16)
	if _, err := io.ReadFull(m.rand, m.peerChal); err != nil {
		return nil, fmt.Errorf("eap: random: %w", err)
	}
	m.nt = ChallengeResponse(ChallengeHash(m.peerChal, m.authChal, stripDomain(m.user)), m.hash)
	// OpCode | MS-CHAPv2-ID | MS-Length | Value-Size (49) | Peer-Challenge
	// | Reserved (8) | NT-Response (24) | Flags | Name
	out := make([]byte, 0, 54+len(m.user))
	out = append(out, opResponse, d[1], 0, 0, 49)
	out = append(out, m.peerChal...)
	out = append(out, make([]byte, 8)...)
	out = append(out, m.nt...)
	out = append(out, 0)
	out = append(out, m.user...)
	binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
	m.state = 1
	return out, nil
}

func (m *MSCHAPv2Peer) success(d []byte) ([]byte, error) {
	m.state = 2
	msg := string(d[4:])
	want := GenerateAuthenticatorResponse(m.hash, m.nt, m.peerChal, m.authChal, stripDomain(m.user))
	// "S=<40 hex digits>" then optionally " M=<message>".
	if len(msg) < len(want) || subtle.ConstantTimeCompare([]byte(strings.ToUpper(msg[:len(want)])), []byte(want)) != 1 {
		return nil, errors.New("eap: the gateway's MSCHAPv2 authenticator response is wrong (it does not know the password)")
	}
	m.msk = MSK(m.hash, m.nt)
	return []byte{opSuccess}, nil
}

// failureText renders an MSCHAPv2 failure message ("E=691 R=1 C=… V=3
// M=…", RFC 2759 §6) for an error: the error code and the message, never
// the challenge.
func failureText(b []byte) string {
	var code, text string
	s := string(b)
	if i := strings.Index(s, "M="); i >= 0 {
		text = s[i+2:]
		s = s[:i]
	}
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "E=") {
			code = f[2:]
		}
	}
	text = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, text)
	if len(text) > 80 {
		text = text[:80]
	}
	switch code {
	case "691":
		code = "691 authentication failure"
	case "":
		code = "no error code"
	}
	if text != "" {
		return fmt.Sprintf("E=%s: %q", code, text)
	}
	return "E=" + code
}
