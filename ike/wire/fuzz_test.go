package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// fuzzSeeds returns valid and nearly valid messages for the corpora.
func fuzzSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{unhex(t, ikeSAInitRequest), unhex(t, ikeAuthFragment), datagram(PayloadNone, nil)}
	var all []Payload
	for _, p := range samplePayloads() {
		all = append(all, p)
		m := &Message{Header: Header{SPIi: 9, Exchange: ExchangeIKEAuth}, Payloads: []Payload{p}}
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	m := &Message{Payloads: append(all, &Encrypted{InnerNext: PayloadIDi, Body: []byte("ciphertext")})}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return append(seeds, b)
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		if got := h.Append(nil); !bytes.Equal(got, b[:HeaderLen]) {
			t.Fatalf("Append(ParseHeader(b)) = %x, want %x", got, b[:HeaderLen])
		}
		if int(h.Length) != len(b) || h.Version>>4 != 2 {
			t.Fatalf("accepted header %+v for %d bytes", h, len(b))
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode of a parsed message failed: %v\n%v", err, m)
		}
		if len(enc) != len(b) {
			t.Fatalf("re-encoded %d bytes, parsed %d", len(enc), len(b))
		}
		m2, err := Parse(enc)
		if err != nil {
			t.Fatalf("Parse of re-encoded message failed: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("Parse→Encode→Parse differs:\n%#v\n%#v", m, m2)
		}
		enc2, err := m2.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %v", err)
		}
	})
}

func FuzzParsePayloads(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if len(s) > HeaderLen {
			f.Add(s[16], s[HeaderLen:])
		}
	}
	f.Add(uint8(PayloadIDi), unhex(f, `27 00 0016  02 000000  636c69656e742e6578616d706c65  00 00 0010  02 000000  0102030405060708`))
	f.Fuzz(func(t *testing.T, first uint8, b []byte) {
		ps, err := ParsePayloads(PayloadType(first), b)
		if err != nil {
			return
		}
		for _, p := range ps {
			if t := p.Type(); t == PayloadSK || t == PayloadSKF {
				panic("SK payload accepted inside SK")
			}
		}
		got, enc, err := AppendPayloads(nil, ps)
		if err != nil {
			t.Fatalf("AppendPayloads of parsed payloads failed: %v", err)
		}
		if len(ps) > 0 && got != PayloadType(first) || len(enc) != len(b) {
			t.Fatalf("first %v (want %d), %d bytes (want %d)", got, first, len(enc), len(b))
		}
		ps2, err := ParsePayloads(got, enc)
		if err != nil {
			t.Fatalf("ParsePayloads of re-encoded chain failed: %v", err)
		}
		if !reflect.DeepEqual(ps, ps2) {
			t.Fatalf("round trip differs:\n%#v\n%#v", ps, ps2)
		}
	})
}

// FuzzHASyncNotifies: the RFC 6311 notify data parsers never panic, accept
// only their exact lengths and round-trip.
func FuzzHASyncNotifies(f *testing.F) {
	f.Add(MessageIDSync{Nonce: 1, ExpectedSend: 2, ExpectedRecv: 3}.Encode())
	f.Add(EncodeReplayCounterSync(1<<20, false))
	f.Add(EncodeReplayCounterSync(1<<40, true))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseMessageIDSync(b); err == nil {
			if len(b) != MessageIDSyncLen || string(m.Encode()) != string(b) {
				t.Fatalf("message ID sync %x does not round-trip", b)
			}
		} else if len(b) == MessageIDSyncLen {
			t.Fatalf("12 octets refused: %v", err)
		}
		for _, esn := range []bool{false, true} {
			d, err := ParseReplayCounterSync(b, esn)
			if err != nil {
				continue
			}
			if string(EncodeReplayCounterSync(d, esn)) != string(b) {
				t.Fatalf("replay counter sync %x (esn %v) does not round-trip", b, esn)
			}
		}
	})
}
