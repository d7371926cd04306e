package qcd

import (
	"encoding/binary"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add(unprotected(1, 2, tok(32, 1)))
	f.Add(unprotected(1, 2, tok(15, 1), tok(129, 2), tok(16, 3), tok(128, 4)))
	f.Add(buildMsg(3, 4, 37, 0, 0, notify(3, 11, []byte{1, 2, 3, 4}, nil), nQCD(tok(32, 9))))
	f.Add(buildMsg(3, 4, 37, 0, 0, notify(3, 11, nil, []byte{1, 2, 3, 4}), nQCD(tok(32, 9))))
	f.Add(buildMsg(1, 2, 37, 0x20, 0, nInvalidIKESPI(), payload{typ: 46, body: make([]byte, 32)}))
	f.Add(buildMsg(1, 2, 37, 0x20, 0, payload{typ: 43, body: []byte("v")}, payload{typ: 99, critical: true}))
	var many [][]byte
	for i := range 10 {
		many = append(many, tok(16, byte(i)))
	}
	f.Add(unprotected(1, 2, many...))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		err := Parse(b, &m)
		if err != nil {
			if !isZero(&m) {
				t.Fatal("Message not zeroed on error")
			}
			return
		}
		if m.Kind != KindInvalidIKESPI && m.Kind != KindInvalidSPI {
			t.Fatalf("success with kind %v", m.Kind)
		}
		if m.NTokens < 0 || m.NTokens > MaxTokens || (m.DroppedTokens > 0 && m.NTokens != MaxTokens) {
			t.Fatalf("NTokens %d Dropped %d", m.NTokens, m.DroppedTokens)
		}
		for i, tk := range m.Tokens[:m.NTokens] {
			if len(tk) < MinTokenLen || len(tk) > MaxTokenLen || !within(b, tk) {
				t.Fatalf("token %d: len %d, within input %v", i, len(tk), within(b, tk))
			}
			if cap(tk) != len(tk) {
				t.Fatalf("token %d exposes the rest of the buffer", i)
			}
		}
		for i := m.NTokens; i < MaxTokens; i++ {
			if m.Tokens[i] != nil {
				t.Fatalf("token %d set beyond NTokens", i)
			}
		}
		if binary.BigEndian.Uint32(b[24:28]) != uint32(len(b)) || m.SPIi != binary.BigEndian.Uint64(b) {
			t.Fatal("header fields do not match the input")
		}
		// Whatever parsed must be safe to verify.
		v := NewVerifier(NewStore(nil), Limits{Table: 1}, nil)
		v.Check(gw, &m)
	})
}
