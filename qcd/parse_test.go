package qcd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"
)

// within reports whether sub lies inside buf's memory.
func within(buf, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	b0 := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	s0 := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return s0 >= b0 && s0+uintptr(len(sub)) <= b0+uintptr(len(buf))
}

func TestParseTokens(t *testing.T) {
	for _, n := range []int{1, 4, 8} {
		var toks [][]byte
		for i := range n {
			toks = append(toks, tok(16+i*8, byte(i+1)))
		}
		b := unprotected(0xaaaa, 0xbbbb, toks...)
		var m Message
		if err := Parse(b, &m); err != nil {
			t.Fatalf("%d tokens: %v", n, err)
		}
		if m.Kind != KindInvalidIKESPI || m.SPIi != 0xaaaa || m.SPIr != 0xbbbb || m.MessageID != 7 ||
			m.Exchange != 37 || !m.Response || m.NTokens != n || m.DroppedTokens != 0 || m.BadTokens != 0 {
			t.Fatalf("%d tokens: %+v", n, m)
		}
		for i := range n {
			if !bytes.Equal(m.Tokens[i], toks[i]) || !within(b, m.Tokens[i]) {
				t.Errorf("token %d = %x", i, m.Tokens[i])
			}
		}
	}
}

func TestParseTooManyTokens(t *testing.T) {
	var toks [][]byte
	for i := range 10 {
		toks = append(toks, tok(32, byte(i)))
	}
	var m Message
	if err := Parse(unprotected(1, 2, toks...), &m); err != nil {
		t.Fatal(err)
	}
	if m.NTokens != 8 || m.DroppedTokens != 2 {
		t.Fatalf("NTokens %d Dropped %d", m.NTokens, m.DroppedTokens)
	}
	for i := range 8 {
		if m.Tokens[i][0] != byte(i) {
			t.Errorf("token %d out of order", i)
		}
	}
}

func TestParseBadTokens(t *testing.T) {
	var m Message
	b := unprotected(1, 2, tok(15, 1), tok(16, 2), tok(128, 3), tok(129, 4), nil)
	if err := Parse(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.NTokens != 2 || m.BadTokens != 3 || m.DroppedTokens != 0 {
		t.Fatalf("NTokens %d Bad %d", m.NTokens, m.BadTokens)
	}
	if len(m.Tokens[0]) != 16 || len(m.Tokens[1]) != 128 {
		t.Fatal("wrong tokens kept")
	}
	// Only bad tokens: still a valid notification, just no token.
	if err := Parse(unprotected(1, 2, tok(15, 1)), &m); err != nil || m.NTokens != 0 || m.BadTokens != 1 {
		t.Fatalf("err %v %+v", err, m)
	}
}

func TestParseInvalidSPI(t *testing.T) {
	spi := []byte{0xc0, 0xff, 0xee, 0x01}
	cases := map[string]struct {
		n    payload
		want uint32
		has  bool
	}{
		"spi field":  {notify(3, 11, spi, nil), 0xc0ffee01, true},
		"data":       {notify(3, 11, nil, spi), 0xc0ffee01, true},
		"spi wins":   {notify(3, 11, spi, []byte{1, 2, 3, 4}), 0xc0ffee01, true},
		"no spi":     {notify(3, 11, nil, nil), 0, false},
		"long data":  {notify(3, 11, nil, []byte{1, 2, 3, 4, 5}), 0, false},
		"8-byte spi": {notify(1, 11, make([]byte, 8), nil), 0, false},
	}
	for name, c := range cases {
		b := buildMsg(3, 4, 37, 0, 0, c.n, nQCD(tok(32, 9)))
		var m Message
		if err := Parse(b, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Kind != KindInvalidSPI || m.HasChildSPI != c.has || m.ChildSPI != c.want || m.NTokens != 1 || m.Response {
			t.Errorf("%s: %+v", name, m)
		}
	}
}

func TestParseSkipsOtherPayloads(t *testing.T) {
	b := buildMsg(1, 2, 37, 0x20, 0,
		payload{typ: 43, body: []byte("vendor id")},
		notify(1, 16390, nil, []byte{1}),                  // some status notify
		payload{typ: 200, body: []byte{1, 2}},             // unknown, not critical
		payload{typ: 33, critical: true, body: []byte{0}}, // known: C ignored
		nInvalidIKESPI(), nInvalidIKESPI(), notify(3, 11, []byte{1, 2, 3, 4}, nil),
		nQCD(tok(20, 1)))
	var m Message
	if err := Parse(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Kind != KindInvalidIKESPI || m.HasChildSPI || m.NTokens != 1 {
		t.Fatalf("%+v", m)
	}
}

func TestParseErrors(t *testing.T) {
	good := unprotected(1, 2, tok(32, 1))
	mod := func(f func(b []byte) []byte) []byte {
		return f(bytes.Clone(good))
	}
	setLen := func(b []byte) []byte { binary.BigEndian.PutUint32(b[24:], uint32(len(b))); return b }
	// Offsets in good: header 28, INVALID_IKE_SPI notify 28..36, QCD 36..
	cases := map[string]struct {
		b    []byte
		want error
	}{
		"empty":        {nil, ErrShort},
		"short header": {good[:27], ErrShort},
		"version 1":    {mod(func(b []byte) []byte { b[17] = 0x10; return b }), ErrVersion},
		"length short": {good[:len(good)-1], ErrLength},
		"length long":  {append(bytes.Clone(good), 0), ErrLength},
		"trailing":     {setLen(append(bytes.Clone(good), 0, 0, 0, 0)), ErrTrailing},
		"header only":  {setLen(mod(func(b []byte) []byte { b[16] = 0; return b[:28] })), ErrNoNotify},
		"next no room": {setLen(mod(func(b []byte) []byte { b[16] = 41; return b[:28] })), ErrTruncated},
		"payload past end": {mod(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[38:], uint16(len(b)-36+1))
			return b
		}), ErrTruncated},
		"zero payload length": {mod(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[30:], 0)
			return b
		}), ErrPayloadLength},
		// A payload of length 0 whose next payload is itself would loop
		// forever in a parser that did not check the length.
		"loop": {mod(func(b []byte) []byte {
			b[28] = 41
			binary.BigEndian.PutUint16(b[30:], 0)
			return b
		}), ErrPayloadLength},
		"next after last":  {mod(func(b []byte) []byte { b[36] = 41; return b }), ErrTruncated},
		"notify too short": {buildMsg(1, 2, 37, 0, 0, payload{typ: 41, body: []byte{1, 0, 0}}), ErrNotifyLength},
		"spi past notify":  {buildMsg(1, 2, 37, 0, 0, payload{typ: 41, body: []byte{1, 9, 0, 4, 1}}), ErrNotifyLength},
		"SK": {buildMsg(1, 2, 37, 0x20, 0, nInvalidIKESPI(),
			payload{typ: 46, body: make([]byte, 32)}), ErrEncrypted},
		"SK first": {buildMsg(1, 2, 37, 0x20, 0, payload{typ: 46, body: make([]byte, 32)}), ErrEncrypted},
		"SKF":      {buildMsg(1, 2, 37, 0x20, 0, payload{typ: 53, body: make([]byte, 8)}), ErrEncrypted},
		"critical unknown": {buildMsg(1, 2, 37, 0x20, 0, nInvalidIKESPI(),
			payload{typ: 99, critical: true}), ErrCritical},
		"no notify": {buildMsg(1, 2, 37, 0x20, 0, nQCD(tok(32, 1))), ErrNoNotify},
	}
	for name, c := range cases {
		m := Message{NTokens: 3, Kind: KindInvalidSPI}
		err := Parse(c.b, &m)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
		if !isZero(&m) {
			t.Errorf("%s: Message not zeroed on error", name)
		}
	}
	if err := Parse(good, nil); !errors.Is(err, ErrNilMessage) {
		t.Errorf("nil Message: %v", err)
	}
}

func isZero(m *Message) bool {
	for _, t := range m.Tokens {
		if t != nil {
			return false
		}
	}
	z := *m
	z.Tokens = [MaxTokens][]byte{}
	return z.SPIi == 0 && z.SPIr == 0 && z.MessageID == 0 && z.Exchange == 0 && !z.Response &&
		z.Kind == KindNone && z.ChildSPI == 0 && !z.HasChildSPI && z.NTokens == 0 &&
		z.DroppedTokens == 0 && z.BadTokens == 0
}

func TestParseAllocs(t *testing.T) {
	good := unprotected(1, 2, tok(32, 1), tok(32, 2), tok(32, 3), tok(32, 4))
	bad := buildMsg(1, 2, 37, 0x20, 0, payload{typ: 46, body: make([]byte, 32)})
	var m Message
	for name, b := range map[string][]byte{"ok": good, "error": bad} {
		if a := testing.AllocsPerRun(100, func() { Parse(b, &m) }); a != 0 {
			t.Errorf("%s: %v allocs", name, a)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, s := range map[Kind]string{KindNone: "none", KindInvalidIKESPI: "INVALID_IKE_SPI", KindInvalidSPI: "INVALID_SPI", 9: "Kind(?)"} {
		if k.String() != s {
			t.Errorf("%d: %q", k, k.String())
		}
	}
}
