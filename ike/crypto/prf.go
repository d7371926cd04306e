package crypto

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// PRF is an IKEv2 pseudorandom function (an HMAC, RFC 2104 / RFC 4868).
type PRF struct {
	id   uint16
	hash func() hash.Hash
	size int
}

// NewPRF returns the PRF with IANA transform ID id.
func NewPRF(id uint16) (*PRF, error) {
	h, size := prfHash(id)
	if h == nil {
		return nil, fmt.Errorf("crypto: unsupported PRF %s", AlgorithmName(TransformPRF, id, 0))
	}
	return &PRF{id: id, hash: h, size: size}, nil
}

// prfHash maps a PRF ID to its hash and output size; nil if unsupported.
func prfHash(id uint16) (func() hash.Hash, int) {
	switch id {
	case PRFHMACSHA1:
		return sha1.New, sha1.Size
	case PRFHMACSHA2_256:
		return sha256.New, sha256.Size
	case PRFHMACSHA2_384:
		return sha512.New384, sha512.Size384
	case PRFHMACSHA2_512:
		return sha512.New, sha512.Size
	}
	return nil, 0
}

// ID is the PRF's IANA transform ID.
func (p *PRF) ID() uint16 { return p.id }

// Size is the PRF output length in bytes. It is also the preferred key
// length, so it is the length of SK_d, SK_pi and SK_pr (RFC 7296 §2.14).
func (p *PRF) Size() int { return p.size }

// Sum returns prf(key, data). HMAC accepts keys of any length.
func (p *PRF) Sum(key, data []byte) []byte {
	return p.sum(key, data)
}

// sum is prf(key, parts[0] | parts[1] | ...), without building the
// concatenation.
func (p *PRF) sum(key []byte, parts ...[]byte) []byte {
	return hmacSum(p.hash, key, make([]byte, 0, p.size), parts...)
}

// Plus returns the first n bytes of prf+(key, seed) (RFC 7296 §2.13):
//
//	T1 = prf(K, S | 0x01), Tk = prf(K, Tk-1 | S | k), prf+ = T1 | T2 | ...
//
// The counter is one byte, so at most 255*Size() bytes exist; Plus returns
// nil when n is larger than that or negative. No supported combination of
// algorithms asks for that much.
func (p *PRF) Plus(key, seed []byte, n int) []byte {
	if n < 0 || n > 255*p.size {
		return nil
	}
	out := make([]byte, 0, n+p.size)
	var t []byte
	for i := 1; len(out) < n; i++ {
		t = p.sum(key, t, seed, []byte{byte(i)})
		out = append(out, t...)
	}
	return out[:n:n]
}
