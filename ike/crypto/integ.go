package crypto

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// Integrity is a truncated-HMAC integrity transform (RFC 2404, RFC 4868).
type Integrity struct {
	id     uint16
	hash   func() hash.Hash
	keyLen int
	icvLen int
}

// NewIntegrity returns the integrity algorithm with IANA transform ID id.
// IntegNone is not an algorithm and is rejected.
func NewIntegrity(id uint16) (*Integrity, error) {
	i := &Integrity{id: id}
	switch id {
	case IntegHMACSHA1_96:
		i.hash, i.keyLen, i.icvLen = sha1.New, 20, 12
	case IntegHMACSHA2_256_128:
		i.hash, i.keyLen, i.icvLen = sha256.New, 32, 16
	case IntegHMACSHA2_384_192:
		i.hash, i.keyLen, i.icvLen = sha512.New384, 48, 24
	case IntegHMACSHA2_512_256:
		i.hash, i.keyLen, i.icvLen = sha512.New, 64, 32
	default:
		return nil, fmt.Errorf("crypto: unsupported integrity algorithm %s", AlgorithmName(TransformInteg, id, 0))
	}
	return i, nil
}

// ID is the algorithm's IANA transform ID.
func (i *Integrity) ID() uint16 { return i.id }

// KeyLen is the key length in bytes (the length of SK_ai and SK_ar).
func (i *Integrity) KeyLen() int { return i.keyLen }

// ICVLen is the length in bytes of the truncated MAC.
func (i *Integrity) ICVLen() int { return i.icvLen }

// Sum returns the MAC of data under key, truncated to ICVLen bytes.
func (i *Integrity) Sum(key, data []byte) []byte {
	return i.sum(key, data)
}

// sum is the truncated MAC of the concatenation of parts.
func (i *Integrity) sum(key []byte, parts ...[]byte) []byte {
	return hmacSum(i.hash, key, nil, parts...)[:i.icvLen]
}

// hmacSum appends HMAC(key, parts[0] | parts[1] | ...) to dst without
// building the concatenation.
func hmacSum(h func() hash.Hash, key, dst []byte, parts ...[]byte) []byte {
	m := hmac.New(h, key)
	for _, b := range parts {
		m.Write(b)
	}
	return m.Sum(dst)
}
