package eap

import (
	"bytes"
	"strings"
	"testing"
)

// zeros is a deterministic random source: identifier 0, all-zero
// challenge, so seeds can answer the server's requests.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// FuzzMSCHAPv2Server feeds two EAP responses, as a client would send them in
// IKE_AUTH, to a fresh EAP-MSCHAPv2 server: no panic, one-line errors that
// never contain the password, and success only with the MSK set.
func FuzzMSCHAPv2Server(f *testing.F) {
	const password = "fuzz-secret-password"
	users := func(id string) (string, bool) { return password, id == "alice" }
	ident := packet(CodeResponse, 0, TypeIdentity, []byte("alice"))
	// A correct MSCHAPv2 Response to the all-zero challenge.
	peerChallenge := bytes.Repeat([]byte{7}, 16)
	nt := GenerateNTResponse(make([]byte, 16), peerChallenge, "alice", password)
	val := append(append(append([]byte{}, peerChallenge...), make([]byte, 8)...), nt...)
	val = append(val, 0) // flags
	data := append([]byte{2 /* Response */, 0, 0, 0, byte(len(val))}, val...)
	data = append(data, "alice"...)
	resp := packet(CodeResponse, 1, TypeMSCHAPv2, data)
	f.Add(ident, resp)
	f.Add(ident, packet(CodeResponse, 1, TypeNak, []byte{26}))
	f.Add([]byte{2, 0, 0, 4}, []byte{})
	f.Add(ident, []byte{2, 1, 0xff, 0xff, 26})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		s := NewServer(users, zeros{}, "gw.example")
		if _, err := s.Start(); err != nil {
			t.Fatal(err)
		}
		for _, in := range [][]byte{a, b} {
			_, st, err := s.Handle(in)
			if err != nil {
				if msg := err.Error(); strings.Contains(msg, "\n") || strings.Contains(msg, password) {
					t.Fatalf("bad error %q", msg)
				}
			}
			if st == Succeeded && s.MSK() == nil {
				t.Fatal("success without an MSK")
			}
		}
	})
}
