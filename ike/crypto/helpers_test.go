package crypto

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// h decodes hex, ignoring white space, so vectors can be typed as the RFCs
// print them.
func h(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test vector: %v", err)
	}
	return b
}

// rep is n copies of byte b.
func rep(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// seq is the bytes from, from+1, ..., to.
func seq(from, to int) []byte {
	var out []byte
	for i := from; i <= to; i++ {
		out = append(out, byte(i))
	}
	return out
}
