// Package pemfile reads the certificates and private keys that the client
// profile (sdk) and the gateway config (gateway) name: each value is
// either inline PEM (starting with "-----BEGIN") or the path of a PEM file.
//
// Like internal/fieldcheck it returns plain reasons ("no certificate
// found"), without the field; each caller wraps them into its own error
// type.
package pemfile

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/internal/fieldcheck"
)

// Rules are what the callers differ in.
type Rules struct {
	// QuoteLen is the longest path quoted whole in a reason (see fieldcheck.Quote).
	QuoteLen int
	// MaxPathLen bounds the length of a path; 0 means no limit.
	MaxPathLen int
	// MaxSize is the largest file accepted, in bytes.
	MaxSize int
}

// IsInline reports whether s is inline PEM rather than a path.
func IsInline(s string) bool {
	return strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "-----BEGIN")
}

// Rel makes the relative path s relative to dir; "", inline PEM and
// absolute paths stay as they are.
func Rel(dir, s string) string {
	if s == "" || IsInline(s) || filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(dir, s)
}

// Check parses inline PEM (a private key if isKey, else certificates) or
// checks a path's syntax (no I/O). "" is fine.
func (r Rules) Check(s string, isKey bool) error {
	if s == "" {
		return nil
	}
	if !IsInline(s) {
		return fieldcheck.Path(s, r.MaxPathLen)
	}
	if isKey {
		_, err := parseKey([]byte(s))
		return err
	}
	_, err := parseCerts([]byte(s))
	return err
}

// Certs returns the certificates in s (inline PEM or a file), in order.
func (r Rules) Certs(s string) ([]*x509.Certificate, error) {
	data, err := r.read(s)
	if err != nil {
		return nil, err
	}
	return parseCerts(data)
}

// Key returns the unencrypted private key in s (inline PEM or a file).
func (r Rules) Key(s string) (crypto.Signer, error) {
	data, err := r.read(s)
	if err != nil {
		return nil, err
	}
	return parseKey(data)
}

// KeyMatches reports whether key is the private key of cert.
func KeyMatches(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// ReadFile reads at most max+1 bytes of the file at path, so that the
// caller can tell a file that is too large. Errors are those of os.
func ReadFile(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(max)+1))
}

// PathErrReason drops the path from an fs error, which the caller names.
func PathErrReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (r Rules) read(s string) ([]byte, error) {
	if IsInline(s) {
		return []byte(s), nil
	}
	if err := fieldcheck.Path(s, r.MaxPathLen); err != nil {
		return nil, err
	}
	data, err := ReadFile(s, r.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %s", fieldcheck.Quote(s, r.QuoteLen), PathErrReason(err))
	}
	if len(data) > r.MaxSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", fieldcheck.Quote(s, r.QuoteLen), r.MaxSize)
	}
	return data, nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	certs, err := auth.LoadCertificates(data)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "auth: "))
	}
	return certs, nil
}

// parseKey parses a private key as the engine does. The reason is generic
// on purpose: parser messages could echo key bytes one day.
func parseKey(data []byte) (crypto.Signer, error) {
	k, err := auth.LoadSigner(data)
	if err != nil {
		if strings.Contains(err.Error(), "encrypted") {
			return nil, errors.New("encrypted private keys are not supported")
		}
		return nil, errors.New("not a valid private key (want unencrypted PKCS #8, PKCS #1 or SEC 1 PEM)")
	}
	return k, nil
}
