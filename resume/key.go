package resume

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// StoreKeySize is the size of the key a [KeyProvider] returns.
const StoreKeySize = 32

// KeyProvider gives the 32-byte key that seals [Store] records at rest.
// Mobile apps pass a key kept in the Android Keystore or the iOS Keychain;
// [FileKey] is the default elsewhere.
type KeyProvider interface {
	// StoreKey returns the key. The Store does not keep or modify the
	// returned slice beyond OpenStore.
	StoreKey() ([]byte, error)
}

// StaticKey is a KeyProvider over a key the application holds.
type StaticKey []byte

// StoreKey returns a copy of the key, or an error if it is not 32 bytes.
func (k StaticKey) StoreKey() ([]byte, error) {
	if len(k) != StoreKeySize {
		return nil, fmt.Errorf("resume: static store key is %d bytes, want %d", len(k), StoreKeySize)
	}
	return bytes.Clone(k), nil
}

// FileKey is the default KeyProvider: 32 random bytes in a file. On first
// use the file is created with mode 0600 (its directory with 0700). An
// existing key file that grants any permission to group or other, is not a
// regular file, or is not exactly 32 bytes long is an error naming the
// path: the Store is then not opened rather than trusting a key others
// could read or replace. Permissions are not checked on Windows, whose
// mode bits do not express them.
type FileKey struct {
	// Path of the key file.
	Path string
	// Rand is the source of a new key; nil means crypto/rand.
	Rand io.Reader
}

// StoreKey reads the key file, creating it first if it does not exist.
func (k FileKey) StoreKey() ([]byte, error) {
	if k.Path == "" {
		return nil, errors.New("resume: key file path is empty")
	}
	key, err := k.read()
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := k.create(); err != nil {
		return nil, err
	}
	return k.read()
}

// read loads and checks an existing key file.
func (k FileKey) read() ([]byte, error) {
	f, err := os.Open(k.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("resume: key file %s: %w", k.Path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("resume: key file %s: %w", k.Path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("resume: key file %s is not a regular file", k.Path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("resume: key file %s has mode %v, readable or writable by others; want 0600", k.Path, fi.Mode().Perm())
	}
	if fi.Size() != StoreKeySize {
		return nil, fmt.Errorf("resume: key file %s is %d bytes, want %d", k.Path, fi.Size(), StoreKeySize)
	}
	key := make([]byte, StoreKeySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("resume: key file %s: %w", k.Path, err)
	}
	return key, nil
}

// create writes a new random key. The key is written to a temporary file
// and linked into place so that neither a crash nor a concurrent creator
// can leave a short key file behind.
func (k FileKey) create() error {
	src := k.Rand
	if src == nil {
		src = rand.Reader
	}
	key := make([]byte, StoreKeySize)
	defer clear(key)
	if _, err := io.ReadFull(src, key); err != nil {
		return fmt.Errorf("resume: key file %s: random key: %w", k.Path, err)
	}
	dir := filepath.Dir(k.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("resume: key file %s: %w", k.Path, err)
	}
	tmp, err := os.CreateTemp(dir, ".resume-key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("resume: key file %s: %w", k.Path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	_, werr := tmp.Write(key)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("resume: key file %s: %w", k.Path, err)
	}
	if err := os.Link(tmpName, k.Path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // someone else won the race; use their key
		}
		// No hard links (some file systems): rename, unless a key
		// appeared meanwhile.
		if _, serr := os.Lstat(k.Path); serr == nil {
			return nil
		}
		if err := os.Rename(tmpName, k.Path); err != nil {
			return fmt.Errorf("resume: key file %s: %w", k.Path, err)
		}
	}
	syncDir(dir)
	return nil
}

// syncDir makes a new directory entry durable where that is possible.
func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return // directories cannot be opened for syncing there
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
