package crypto

import (
	"crypto/cipher"
	"crypto/subtle"
	"errors"
)

// shortTagGCM is AES-GCM with a tag shorter than crypto/cipher allows
// (8 bytes, ENCR_AES_GCM_8). A truncated GCM tag is the leading bytes of
// the full tag (NIST SP 800-38D §7.1, MSB_t), so sealing truncates the
// full-tag output. Opening decrypts with CTR from the second counter block
// (J0+1; the 96-bit-nonce case of SP 800-38D §7.2), recomputes the full
// tag over the recovered plaintext and compares its prefix in constant
// time. CTR increments all 128 bits while GCM increments the low 32, which
// only differ after 2^32 blocks, far beyond any IKE message.
type shortTagGCM struct {
	full   cipher.AEAD // same key, 16-byte tag
	block  cipher.Block
	tagLen int
}

// newShortTagGCM wraps block in GCM with a tagLen-byte tag.
func newShortTagGCM(block cipher.Block, tagLen int) (cipher.AEAD, error) {
	full, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &shortTagGCM{full: full, block: block, tagLen: tagLen}, nil
}

// NonceSize implements cipher.AEAD.
func (g *shortTagGCM) NonceSize() int { return g.full.NonceSize() }

// Overhead implements cipher.AEAD: the truncated tag length.
func (g *shortTagGCM) Overhead() int { return g.tagLen }

// Seal implements cipher.AEAD.
func (g *shortTagGCM) Seal(dst, nonce, plaintext, aad []byte) []byte {
	out := g.full.Seal(nil, nonce, plaintext, aad)
	// out is a fresh buffer, so appending over plaintext's storage is safe.
	return append(dst, out[:len(plaintext)+g.tagLen]...)
}

// errShortGCMOpen is the (generic) authentication failure.
var errShortGCMOpen = errors.New("crypto: message authentication failed")

// Open implements cipher.AEAD.
func (g *shortTagGCM) Open(dst, nonce, ciphertext, aad []byte) ([]byte, error) {
	if len(nonce) != g.full.NonceSize() || len(ciphertext) < g.tagLen {
		return nil, errShortGCMOpen
	}
	ct := ciphertext[:len(ciphertext)-g.tagLen]
	tag := ciphertext[len(ciphertext)-g.tagLen:]
	var ctr [16]byte
	copy(ctr[:], nonce)
	ctr[15] = 2
	pt := make([]byte, len(ct))
	cipher.NewCTR(g.block, ctr[:]).XORKeyStream(pt, ct)
	want := g.full.Seal(nil, nonce, pt, aad)[len(ct):]
	if subtle.ConstantTimeCompare(want[:g.tagLen], tag) != 1 {
		clear(pt)
		return nil, errShortGCMOpen
	}
	return append(dst, pt...), nil
}
