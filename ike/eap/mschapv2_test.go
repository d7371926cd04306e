package eap

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRFC2759Vectors checks RFC 2759 §9.2.
func TestRFC2759Vectors(t *testing.T) {
	user, password := "User", "clientPass"
	authChal := unhex(t, "5B5D7C7D7B3F2F3E3C2C602132262628")
	peerChal := unhex(t, "21402324255E262A28295F2B3A337C7E")
	if got, want := ChallengeHash(peerChal, authChal, user), unhex(t, "D02E4386BCE91226"); !bytes.Equal(got, want) {
		t.Errorf("ChallengeHash = %X, want %X", got, want)
	}
	ph := NtPasswordHash(password)
	if want := unhex(t, "44EBBA8D5312B8D611474411F56989AE"); !bytes.Equal(ph, want) {
		t.Errorf("NtPasswordHash = %X, want %X", ph, want)
	}
	nt := GenerateNTResponse(authChal, peerChal, user, password)
	wantNT := unhex(t, "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
	if !bytes.Equal(nt, wantNT) {
		t.Errorf("NT-Response = %X, want %X", nt, wantNT)
	}
	if got, want := HashNtPasswordHash(ph), unhex(t, "41C00C584BD2D91C4017A2A12FA59F3F"); !bytes.Equal(got, want) {
		t.Errorf("PasswordHashHash = %X, want %X", got, want)
	}
	if got, want := GenerateAuthenticatorResponse(ph, nt, peerChal, authChal, user), "S=407A5589115FD0D6209F510FE9C04566932CDA56"; got != want {
		t.Errorf("AuthenticatorResponse = %s, want %s", got, want)
	}
}

// TestRFC3079Vectors checks RFC 3079 §3.5.3 (128-bit keys): the master
// key and the send start key of the sample (the server's send key, the
// client's receive key: octets 16..31 of the MSK). The MSK order itself is
// checked against strongSwan by internal/interop.
func TestRFC3079Vectors(t *testing.T) {
	ph := NtPasswordHash("clientPass")
	nt := unhex(t, "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
	mk := MasterKey(HashNtPasswordHash(ph), nt)
	if want := unhex(t, "FDECE3717A8C838CB388E527AE3CDD31"); !bytes.Equal(mk, want) {
		t.Fatalf("MasterKey = %X, want %X", mk, want)
	}
	serverSend := AsymmetricStartKey(mk, true, true)
	if want := unhex(t, "8B7CDC149B993A1BA118CB153F56DCCB"); !bytes.Equal(serverSend, want) {
		t.Errorf("SendStartKey = %X, want %X", serverSend, want)
	}
	if !bytes.Equal(AsymmetricStartKey(mk, false, false), serverSend) {
		t.Error("client receive key differs from server send key")
	}
	serverRecv := AsymmetricStartKey(mk, false, true)
	if !bytes.Equal(AsymmetricStartKey(mk, true, false), serverRecv) || bytes.Equal(serverRecv, serverSend) {
		t.Error("server receive key is not the client send key")
	}
	msk := MSK(ph, nt)
	if len(msk) != 64 || !bytes.Equal(msk[:16], serverRecv) || !bytes.Equal(msk[16:32], serverSend) || !bytes.Equal(msk[32:], make([]byte, 32)) {
		t.Errorf("MSK = %X", msk)
	}
}

// client plays the peer side against the Server.
type client struct {
	user, password string
	peerChal       [16]byte
	authChal       []byte
	nt             []byte
}

func (c *client) respond(t *testing.T, req []byte) []byte {
	t.Helper()
	if req[0] != CodeRequest {
		t.Fatalf("not a request: %x", req)
	}
	switch req[4] {
	case TypeIdentity:
		return packet(CodeResponse, req[1], TypeIdentity, []byte(c.user))
	case TypeMSCHAPv2:
		d := req[5:]
		if binary.BigEndian.Uint16(d[2:]) != uint16(len(d)) {
			t.Fatalf("MS-Length %d, have %d", binary.BigEndian.Uint16(d[2:]), len(d))
		}
		switch d[0] {
		case opChallenge:
			if d[4] != 16 {
				t.Fatalf("value size %d", d[4])
			}
			c.authChal = d[5:21]
			rand.Read(c.peerChal[:])
			c.nt = GenerateNTResponse(c.authChal, c.peerChal[:], stripDomain(c.user), c.password)
			body := []byte{opResponse, d[1], 0, 0, 49}
			body = append(body, c.peerChal[:]...)
			body = append(body, make([]byte, 8)...)
			body = append(body, c.nt...)
			body = append(body, 0)
			body = append(body, c.user...)
			binary.BigEndian.PutUint16(body[2:], uint16(len(body)))
			return packet(CodeResponse, req[1], TypeMSCHAPv2, body)
		case opSuccess:
			want := GenerateAuthenticatorResponse(NtPasswordHash(c.password), c.nt, c.peerChal[:], c.authChal, stripDomain(c.user))
			if !strings.HasPrefix(string(d[4:]), want) {
				t.Fatalf("success message %q, want %s", d[4:], want)
			}
			return packet(CodeResponse, req[1], TypeMSCHAPv2, []byte{opSuccess})
		}
	}
	t.Fatalf("unexpected request %x", req)
	return nil
}

func users(id string) (string, bool) {
	if id == "alice" {
		return "s3cret pass", true
	}
	return "", false
}

func run(t *testing.T, c *client) (*Server, Status, error) {
	s := NewServer(users, rand.Reader, "gw")
	req, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		next, st, err := s.Handle(c.respond(t, req))
		if st != Continue || err != nil {
			if st == Succeeded && next[0] != CodeSuccess || st == Failed && next[0] != CodeFailure {
				t.Fatalf("status %d with packet %x", st, next)
			}
			return s, st, err
		}
		req = next
	}
	t.Fatal("no end")
	return nil, 0, nil
}

func TestServerSuccess(t *testing.T) {
	c := &client{user: "alice", password: "s3cret pass"}
	s, st, err := run(t, c)
	if st != Succeeded || err != nil {
		t.Fatalf("status %d, err %v", st, err)
	}
	if s.Identity() != "alice" {
		t.Errorf("identity %q", s.Identity())
	}
	if want := MSK(NtPasswordHash(c.password), c.nt); !bytes.Equal(s.MSK(), want) {
		t.Errorf("MSK %X, want %X", s.MSK(), want)
	}
}

func TestServerFailures(t *testing.T) {
	for _, c := range []*client{
		{user: "alice", password: "not-it-42"},
		{user: "bob", password: "s3cret pass"},
	} {
		s, st, err := run(t, c)
		if st != Failed || err == nil {
			t.Fatalf("%s: status %d, err %v", c.user, st, err)
		}
		if strings.Contains(err.Error(), c.password) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error leaks a password: %v", err)
		}
		if s.MSK() != nil {
			t.Error("MSK after failure")
		}
	}
}

func TestServerIgnoresStrayResponses(t *testing.T) {
	s := NewServer(users, rand.Reader, "gw")
	req, _ := s.Start()
	for _, bad := range [][]byte{
		nil,
		{CodeResponse, req[1] + 1, 0, 10, TypeIdentity, 'a', 'l', 'i', 'c', 'e'},
		{CodeRequest, req[1], 0, 10, TypeIdentity, 'a', 'l', 'i', 'c', 'e'},
		{CodeResponse, req[1], 0, 11, TypeIdentity, 'a', 'l', 'i', 'c', 'e'},
	} {
		if _, st, err := s.Handle(bad); st != Continue || err == nil {
			t.Errorf("%x: status %d err %v", bad, st, err)
		}
	}
	c := &client{user: "alice", password: "s3cret pass"}
	if _, st, err := s.Handle(c.respond(t, req)); st != Continue || err != nil {
		t.Fatalf("after stray responses: %d %v", st, err)
	}
}
