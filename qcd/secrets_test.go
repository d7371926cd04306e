package qcd

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func seq32(start byte) []byte {
	b := make([]byte, SecretLen)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestTokenVector(t *testing.T) {
	secret := seq32(0)
	s, err := NewSecrets(secret)
	if err != nil {
		t.Fatal(err)
	}
	const spii, spir = 0x0102030405060708, 0x1112131415161718
	got := s.Token(spii, spir)

	// Fixed vector, computed outside Go.
	want, _ := hex.DecodeString("efb0315ebf756c1726210b0a705ea19bcd6ddbe0681d1d7d69fa73adfbad5aff")
	if !bytes.Equal(got, want) {
		t.Fatalf("Token = %x, want %x", got, want)
	}
	// And independently: SHA-256(secret || SPIi BE || SPIr BE).
	h := sha256.New()
	h.Write(secret)
	binary.Write(h, binary.BigEndian, uint64(spii))
	binary.Write(h, binary.BigEndian, uint64(spir))
	if !bytes.Equal(got, h.Sum(nil)) {
		t.Fatalf("Token = %x, want %x", got, h.Sum(nil))
	}
	// SPI order matters.
	if bytes.Equal(s.Token(spir, spii), got) {
		t.Fatal("token does not depend on SPI order")
	}
}

func TestNewSecretsErrors(t *testing.T) {
	for name, gens := range map[string][][]byte{
		"none":  nil,
		"five":  {seq32(0), seq32(1), seq32(2), seq32(3), seq32(4)},
		"short": {make([]byte, 31)},
		"long":  {seq32(0), make([]byte, 33)},
	} {
		if _, err := NewSecrets(gens...); !errors.Is(err, ErrGenerations) {
			t.Errorf("%s: err = %v, want ErrGenerations", name, err)
		}
	}
	// The input is copied.
	g := seq32(0)
	s, _ := NewSecrets(g)
	before := s.Token(1, 2)
	g[0] ^= 0xff
	if !bytes.Equal(before, s.Token(1, 2)) {
		t.Fatal("NewSecrets aliases its input")
	}
}

func TestTokensGenerations(t *testing.T) {
	s, _ := NewSecrets(seq32(0), seq32(1), seq32(2))
	toks := s.Tokens(5, 6)
	if len(toks) != 3 {
		t.Fatalf("len = %d", len(toks))
	}
	for i, g := range [][]byte{seq32(0), seq32(1), seq32(2)} {
		one, _ := NewSecrets(g)
		if !bytes.Equal(toks[i], one.Token(5, 6)) {
			t.Errorf("token %d is not generation %d's", i, i)
		}
	}
	// Independent slices: appending to one must not clobber the next.
	_ = append(toks[0], 0xee)
	if toks[1][0] == 0xee {
		t.Fatal("Tokens slices share capacity")
	}
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "qcd", "secret")
	s1, err := LoadOrCreate(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("file mode %04o, want 0600", fi.Mode().Perm())
		}
		di, _ := os.Stat(filepath.Dir(path))
		if di.Mode().Perm() != 0o700 {
			t.Errorf("dir mode %04o, want 0700", di.Mode().Perm())
		}
	}
	data, _ := os.ReadFile(path)
	if len(data) != 65 || data[64] != '\n' {
		t.Fatalf("file = %q", data)
	}
	s2, err := LoadOrCreate(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1.Token(1, 2), s2.Token(1, 2)) {
		t.Fatal("second load gives a different token")
	}
	// No temporary files left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("dir has %d entries", len(ents))
	}
}

func TestLoadOrCreateRandError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	if _, err := LoadOrCreate(path, strings.NewReader("short")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("file created despite rand failure")
	}
}

func TestLoadMalformed(t *testing.T) {
	good := hex.EncodeToString(seq32(0))
	cases := map[string]string{
		"empty":      "",
		"no newline": good,
		"bad hex":    strings.Repeat("zz", 32) + "\n",
		"uppercase":  strings.ToUpper(good) + "\n",
		"short":      good[:62] + "\n",
		"blank line": good + "\n\n",
		"crlf":       good + "\r\n",
		"five lines": strings.Repeat(good+"\n", 5),
		"huge":       strings.Repeat("a", 10000),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(path, nil)
			if !errors.Is(err, ErrSecretFile) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want ErrSecretFile naming %s", err, path)
			}
			after, _ := os.ReadFile(path)
			if string(after) != content {
				t.Fatal("malformed file was replaced")
			}
		})
	}
}

func TestLoadPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
		path := filepath.Join(t.TempDir(), "secret")
		content := hex.EncodeToString(seq32(0)) + "\n"
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode)
		_, err := LoadOrCreate(path, nil)
		if !errors.Is(err, ErrSecretPerm) || !strings.Contains(err.Error(), path) {
			t.Fatalf("mode %04o: err = %v, want ErrSecretPerm naming the path", mode, err)
		}
		if after, _ := os.ReadFile(path); string(after) != content {
			t.Fatal("file was replaced")
		}
	}
	// A directory in the way is not a secret file.
	dir := filepath.Join(t.TempDir(), "secret")
	os.Mkdir(dir, 0o700)
	if _, err := LoadOrCreate(dir, nil); !errors.Is(err, ErrSecretFile) {
		t.Fatalf("directory: err = %v", err)
	}
}

func TestRollover(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	s, err := LoadOrCreate(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var history [][]byte // current tokens, oldest first
	history = append(history, s.Token(9, 10))
	for i := range 6 {
		if err := s.Rollover(path, nil); err != nil {
			t.Fatal(err)
		}
		history = append(history, s.Token(9, 10))
		if want := min(i+2, 4); s.Generations() != want {
			t.Fatalf("after %d rollovers: %d generations, want %d", i+1, s.Generations(), want)
		}
	}
	toks := s.Tokens(9, 10)
	if len(toks) != 4 {
		t.Fatalf("%d tokens", len(toks))
	}
	for i := range toks {
		if !bytes.Equal(toks[i], history[len(history)-1-i]) {
			t.Errorf("Tokens[%d] is not the %d-th latest secret's token", i, i)
		}
	}
	// Restart: loading the file gives the same generations.
	s2, err := LoadOrCreate(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	toks2 := s2.Tokens(9, 10)
	if len(toks2) != 4 {
		t.Fatalf("reloaded %d tokens", len(toks2))
	}
	for i := range toks {
		if !bytes.Equal(toks[i], toks2[i]) {
			t.Errorf("reloaded Tokens[%d] differs", i)
		}
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(path)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode after rollover %04o", fi.Mode().Perm())
		}
	}
}

func TestRolloverFailureKeepsState(t *testing.T) {
	s, _ := NewSecrets(seq32(0))
	before := s.Token(1, 2)
	if err := s.Rollover("", strings.NewReader("x")); err == nil {
		t.Fatal("no error from short rand")
	}
	// A path whose parent is a file cannot be written.
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if err := s.Rollover(filepath.Join(f, "secret"), nil); err == nil {
		t.Fatal("no error writing below a file")
	}
	if !bytes.Equal(before, s.Token(1, 2)) || s.Generations() != 1 {
		t.Fatal("failed rollover changed the secrets")
	}
}

func TestSecretsConcurrent(t *testing.T) {
	s, _ := NewSecrets(seq32(0))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if len(s.Token(1, 2)) != TokenLen {
					t.Error("bad token length")
				}
				if n := len(s.Tokens(1, 2)); n < 1 || n > 4 {
					t.Error("bad generation count")
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if err := s.Rollover("", nil); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}
