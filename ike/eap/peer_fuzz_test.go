package eap

import (
	"bytes"
	"crypto/tls"
	"testing"
)

// FuzzPeer feeds arbitrary authenticator packets to both peer methods:
// never a panic, and never Succeeded without a finished method.
func FuzzPeer(f *testing.F) {
	f.Add([]byte{CodeRequest, 1, 0, 5, TypeIdentity})
	f.Add(append([]byte{CodeRequest, 2, 0, 26, TypeMSCHAPv2, opChallenge, 2, 0, 21, 16}, make([]byte, 16)...))
	f.Add([]byte{CodeRequest, 3, 0, 6, TypeTLS, tlsFlagStart})
	f.Add([]byte{CodeRequest, 4, 0, 14, TypeTLS, tlsFlagLength | tlsFlagMore, 0, 0, 1, 0, 22, 3, 3, 0})
	f.Add([]byte{CodeSuccess, 5, 0, 4})
	f.Add([]byte{CodeFailure, 5, 0, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		tp, err := NewTLSPeer(&tls.Config{ServerName: "gw.example"})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []Method{NewMSCHAPv2Peer("u", "p", bytes.NewReader(make([]byte, 64))), tp} {
			p := NewPeer("u", m)
			// The input is split into packets at each EAP length field.
			rest := data
			for len(rest) >= 4 {
				n := int(rest[2])<<8 | int(rest[3])
				if n < 4 || n > len(rest) {
					n = len(rest)
				}
				_, st, _ := p.Handle(rest[:n])
				if st == Succeeded && m.MSK() == nil {
					t.Fatal("success without an MSK")
				}
				if st != Continue {
					break
				}
				rest = rest[n:]
			}
			p.Close()
		}
	})
}

// FuzzServer feeds arbitrary peer responses to the server with
// EAP-MSCHAPv2 and EAP-TLS enabled: never a panic, never Succeeded
// without an MSK. The response identifier is patched to the outstanding
// request's so that the input reaches the methods.
func FuzzServer(f *testing.F) {
	f.Add([]byte{CodeResponse, 0, 0, 10, TypeIdentity, 'a', 'l', 'i', 'c', 'e', CodeResponse, 0, 0, 6, TypeNak, TypeTLS})
	f.Add([]byte{CodeResponse, 0, 0, 10, TypeIdentity, 'a', 'l', 'i', 'c', 'e', CodeResponse, 0, 0, 10, TypeTLS, 0x80, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewServer(users, bytes.NewReader(make([]byte, 256)), "gw")
		s.EnableTLS(&tls.Config{}, func([][]byte, string) error { return nil })
		defer s.Close()
		req, err := s.Start()
		if err != nil {
			t.Fatal(err)
		}
		rest := data
		for len(rest) >= 4 {
			n := int(rest[2])<<8 | int(rest[3])
			if n < 4 || n > len(rest) {
				n = len(rest)
			}
			pkt := bytes.Clone(rest[:n])
			pkt[1] = req[1]
			next, st, _ := s.Handle(pkt)
			if st == Succeeded && s.MSK() == nil {
				t.Fatal("success without an MSK")
			}
			if st != Continue {
				break
			}
			if next != nil {
				req = next
			}
			rest = rest[n:]
		}
	})
}
