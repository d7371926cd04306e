package qcd

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzDecodeSecrets: the QCD secret file parser never panics, errors in
// one line, and what it accepts it writes back as it read it.
func FuzzDecodeSecrets(f *testing.F) {
	line := strings.Repeat("ab", 32) + "\n"
	f.Add([]byte(line))
	f.Add([]byte(line + strings.Repeat("01", 32) + "\n"))
	f.Add([]byte(""))
	f.Add([]byte(strings.Repeat("AB", 32) + "\n"))
	f.Add([]byte(line[:63] + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decode(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if got := s.encode(); !bytes.Equal(got, data) {
			t.Fatalf("decode/encode changed the file:\n got %q\nwant %q", got, data)
		}
	})
}
