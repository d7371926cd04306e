package qcd

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// SecretLen is the length in octets of one QCD_SECRET (RFC 6290 §5.1).
const SecretLen = 32

// MaxGenerations is how many QCD_SECRET generations Secrets keeps: the
// current one and up to 3 earlier ones (RFC 6290 §5.1), matching the 4
// tokens every taker must accept in one message (§4.5).
const MaxGenerations = 4

// TokenLen is the length of a token made by Secrets (a SHA-256 digest).
const TokenLen = sha256.Size

// Errors about secrets and the secret file. Errors returned by LoadOrCreate
// wrap them together with the file's path.
var (
	// ErrSecretFile reports a secret file that exists but is malformed.
	ErrSecretFile = errors.New("qcd: malformed secret file")
	// ErrSecretPerm reports a secret file readable or writable by group or others.
	ErrSecretPerm = errors.New("qcd: secret file is accessible by group or others")
	// ErrGenerations reports a wrong number or length of secret generations.
	ErrGenerations = errors.New("qcd: need 1 to 4 secrets of 32 octets each")
)

// maxSecretFile bounds how much of a secret file is read: 4 lines of 64
// hex digits plus newline, and a little slack so an overlong file is
// reported as such rather than read without limit.
const maxSecretFile = MaxGenerations*(2*SecretLen+1) + 2

// Secrets holds the current QCD_SECRET and up to 3 earlier generations
// (RFC 6290 §5.1). It is safe for concurrent use.
//
// The secret file written by LoadOrCreate and Rollover is text: one secret
// per line as 64 lowercase hexadecimal digits, each line ended by "\n",
// the current secret first and at most 4 lines. On Unix-like systems it
// must not be accessible by group or others (mode 0600 or stricter).
type Secrets struct {
	mu   sync.RWMutex
	gens [MaxGenerations][SecretLen]byte
	n    int // generations in use, 1..MaxGenerations
}

// NewSecrets builds Secrets from raw generations, current first: 1 to 4 of
// SecretLen octets each. It is meant for tests and in-memory use; the
// octets are copied.
func NewSecrets(gens ...[]byte) (*Secrets, error) {
	if len(gens) < 1 || len(gens) > MaxGenerations {
		return nil, fmt.Errorf("%w: got %d generations", ErrGenerations, len(gens))
	}
	s := &Secrets{n: len(gens)}
	for i, g := range gens {
		if len(g) != SecretLen {
			return nil, fmt.Errorf("%w: generation %d has %d octets", ErrGenerations, i, len(g))
		}
		copy(s.gens[i][:], g)
	}
	return s, nil
}

// LoadOrCreate reads the secret file at path (format: see Secrets). When
// the file does not exist it is created, mode 0600, with one fresh secret
// read from rand (crypto/rand when rand is nil); missing parent
// directories are created with mode 0700.
//
// A file that exists but is malformed, is not a regular file, or is
// accessible by group or others is an error naming the path and the
// problem; it is never replaced. (Windows has no such permission bits, so
// the mode check is skipped there; protect the file with ACLs.)
//
// The file is written crash-safely: to a temporary file in the same
// directory, synced, then published under path. On creation the temporary
// file is hard-linked into place so that a concurrent creator's secret is
// never overwritten (the loser loads the winner's file); only where hard
// links are not available does it fall back to rename.
func LoadOrCreate(path string, rand io.Reader) (*Secrets, error) {
	s, err := loadFile(path)
	if !errors.Is(err, os.ErrNotExist) {
		return s, err
	}
	s = &Secrets{n: 1}
	if err := readSecret(rand, &s.gens[0]); err != nil {
		return nil, err
	}
	created, err := writeFile(path, s.encode(), true)
	if err != nil {
		return nil, err
	}
	if !created {
		// Someone else created the file between our open and our link.
		return loadFile(path)
	}
	return s, nil
}

// Rollover makes a new current secret from rand (crypto/rand when nil),
// keeps at most 3 earlier generations and, if path is not empty, rewrites
// the secret file at path. If writing fails the in-memory secrets are left
// unchanged, so memory and disk never disagree.
func (s *Secrets) Rollover(path string, rand io.Reader) error {
	var fresh [SecretLen]byte
	if err := readSecret(rand, &fresh); err != nil {
		return err
	}
	// Holding the write lock across the file write keeps concurrent
	// rollovers ordered the same way in memory and on disk.
	s.mu.Lock()
	defer s.mu.Unlock()
	next := Secrets{n: min(s.n+1, MaxGenerations)}
	next.gens[0] = fresh
	copy(next.gens[1:], s.gens[:next.n-1])
	if path != "" {
		if _, err := writeFile(path, next.encode(), false); err != nil {
			return err
		}
	}
	s.gens, s.n = next.gens, next.n
	return nil
}

// Token is TOKEN_SECRET_DATA = SHA-256(QCD_SECRET | SPI-I | SPI-R) made
// with the current secret, the SPIs as 8 big-endian octets each (RFC 6290
// §5.1). It returns TokenLen octets.
func (s *Secrets) Token(spii, spir uint64) []byte {
	s.mu.RLock()
	t := token(&s.gens[0], spii, spir)
	s.mu.RUnlock()
	return t[:]
}

// Tokens returns the tokens of every generation, current first (1 to 4 of
// them), to send as that many N(QCD_TOKEN)s in an unprotected reply (§4.5).
func (s *Secrets) Tokens(spii, spir uint64) [][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	buf := make([]byte, s.n*TokenLen)
	out := make([][]byte, s.n)
	for i := range s.n {
		t := token(&s.gens[i], spii, spir)
		out[i] = buf[i*TokenLen : (i+1)*TokenLen : (i+1)*TokenLen]
		copy(out[i], t[:])
	}
	return out
}

// Generations reports how many secret generations are held (1 to 4).
func (s *Secrets) Generations() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n
}

func token(secret *[SecretLen]byte, spii, spir uint64) [TokenLen]byte {
	var in [SecretLen + 16]byte
	copy(in[:], secret[:])
	binary.BigEndian.PutUint64(in[SecretLen:], spii)
	binary.BigEndian.PutUint64(in[SecretLen+8:], spir)
	return sha256.Sum256(in[:])
}

func readSecret(r io.Reader, dst *[SecretLen]byte) error {
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, dst[:]); err != nil {
		return fmt.Errorf("qcd: reading random secret: %w", err)
	}
	return nil
}

// encode renders the file format described on Secrets. The caller must
// hold s.mu or own s exclusively.
func (s *Secrets) encode() []byte {
	out := make([]byte, 0, s.n*(2*SecretLen+1))
	for i := range s.n {
		out = hex.AppendEncode(out, s.gens[i][:])
		out = append(out, '\n')
	}
	return out
}

// decode parses the file format described on Secrets; the error does not
// name the path (the caller adds it).
func decode(data []byte) (*Secrets, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrSecretFile)
	}
	if data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%w: last line does not end in a newline", ErrSecretFile)
	}
	lines := bytes.Split(data[:len(data)-1], []byte{'\n'})
	if len(lines) > MaxGenerations {
		return nil, fmt.Errorf("%w: %d lines, at most %d allowed", ErrSecretFile, len(lines), MaxGenerations)
	}
	s := &Secrets{n: len(lines)}
	for i, l := range lines {
		if len(l) != 2*SecretLen || !isLowerHex(l) {
			return nil, fmt.Errorf("%w: line %d is not %d lowercase hex digits", ErrSecretFile, i+1, 2*SecretLen)
		}
		if _, err := hex.Decode(s.gens[i][:], l); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrSecretFile, i+1, err)
		}
	}
	return s, nil
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// loadFile reads and checks the secret file. A missing file yields an
// error matching os.ErrNotExist and nothing else does.
func loadFile(path string) (*Secrets, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("qcd: secret file %s: %w", path, err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the checks apply to what we read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("qcd: secret file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("qcd: secret file %s: %w: not a regular file (%v)", path, ErrSecretFile, fi.Mode().Type())
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("qcd: secret file %s: %w (mode %04o, want 0600)", path, ErrSecretPerm, fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("qcd: secret file %s: %w", path, err)
	}
	if len(data) > maxSecretFile {
		return nil, fmt.Errorf("qcd: secret file %s: %w: longer than %d octets", path, ErrSecretFile, maxSecretFile)
	}
	s, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("qcd: secret file %s: %w", path, err)
	}
	return s, nil
}

// writeFile writes data to path crash-safely. With exclusive set it does
// not replace an existing file and reports created=false instead.
func writeFile(path string, data []byte, exclusive bool) (created bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("qcd: secret file %s: creating directory: %w", path, err)
	}
	// CreateTemp makes the file with mode 0600.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return false, fmt.Errorf("qcd: secret file %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmpName != "" {
			os.Remove(tmpName)
		}
	}()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("qcd: secret file %s: writing: %w", path, err)
	}
	if exclusive {
		err = os.Link(tmpName, path)
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		if err == nil {
			// The temporary name is removed by the deferred cleanup.
			return true, syncDir(dir, path)
		}
		// Hard links unsupported here (some filesystems, Android app
		// storage): fall back to rename, accepting the creation race.
	}
	if err := os.Rename(tmpName, path); err != nil {
		return false, fmt.Errorf("qcd: secret file %s: %w", path, err)
	}
	tmpName = ""
	return true, syncDir(dir, path)
}

// syncDir makes the new directory entry durable. Windows cannot fsync a
// directory (and NTFS renames are journaled), so it is skipped there.
func syncDir(dir, path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("qcd: secret file %s: syncing directory: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("qcd: secret file %s: syncing directory: %w", path, err)
	}
	return nil
}
