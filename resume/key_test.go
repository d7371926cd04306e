package resume

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestFileKeyCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "store.key")
	seed := bytes.Repeat([]byte{0xA5}, StoreKeySize)
	k := FileKey{Path: path, Rand: bytes.NewReader(seed)}
	key, err := k.StoreKey()
	if err != nil {
		t.Fatalf("StoreKey: %v", err)
	}
	if !bytes.Equal(key, seed) {
		t.Fatalf("key does not come from Rand")
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
		}
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if di.Mode().Perm() != 0o700 {
			t.Errorf("key dir mode %v, want 0700", di.Mode().Perm())
		}
	}
	// The second call reads the same key (Rand is exhausted now).
	again, err := k.StoreKey()
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("second StoreKey = %x, %v", again, err)
	}
	// No temporary file is left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("dir holds %d entries, want 1", len(ents))
	}
	// Default Rand gives a fresh random key.
	other, err := FileKey{Path: filepath.Join(dir, "other.key")}.StoreKey()
	if err != nil || len(other) != StoreKeySize || bytes.Equal(other, key) {
		t.Fatalf("crypto/rand key: %x, %v", other, err)
	}
}

func TestFileKeyBadPerms(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	path := filepath.Join(t.TempDir(), "store.key")
	if err := os.WriteFile(path, make([]byte, StoreKeySize), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := FileKey{Path: path}.StoreKey()
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("mode %v: err = %v, want an error naming %s", mode, err, path)
		}
	}
}

func TestFileKeyBadSize(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 31, 33} {
		path := filepath.Join(dir, "k"+string(rune('a'+n%26)))
		if err := os.WriteFile(path, make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := FileKey{Path: path}.StoreKey()
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%d bytes: err = %v, want an error naming %s", n, err, path)
		}
	}
	if _, err := (FileKey{Path: dir}).StoreKey(); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("directory as key file: %v", err)
	}
	if _, err := (FileKey{}).StoreKey(); err == nil {
		t.Error("empty path accepted")
	}
}

func TestFileKeyShortRand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.key")
	if _, err := (FileKey{Path: path, Rand: bytes.NewReader(make([]byte, 5))}).StoreKey(); err == nil {
		t.Fatal("short random source accepted")
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a key file was left after failing")
	}
}

func TestStaticKey(t *testing.T) {
	k := StaticKey(bytes.Repeat([]byte{1}, StoreKeySize))
	got, err := k.StoreKey()
	if err != nil || !bytes.Equal(got, k) {
		t.Fatalf("StoreKey = %x, %v", got, err)
	}
	got[0] = 9
	if k[0] != 1 {
		t.Fatal("StoreKey returned the backing array")
	}
	if _, err := StaticKey(make([]byte, 16)).StoreKey(); err == nil {
		t.Fatal("16-byte key accepted")
	}
}
