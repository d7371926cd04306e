package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Errors returned by SKCipher.Open. Authentication failures are reported
// with one generic error so that nothing about the cause leaks.
var (
	ErrAuthFailed = errors.New("crypto: SK payload authentication failed")
	ErrTooShort   = errors.New("crypto: SK payload too short")
)

const (
	aeadIVLen = 8 // RFC 5282 §3.1, RFC 7634 §3
	saltLen   = 4 // RFC 5282 §7.1, RFC 7634 §2
	cbcIVLen  = aes.BlockSize
)

// IsAEAD reports whether encrID is a combined-mode (AEAD) cipher, which
// must be negotiated without an integrity algorithm (RFC 5282 §8). AES-CCM
// is recognised here although this package does not implement it.
func IsAEAD(encrID uint16) bool {
	switch encrID {
	case EncrAESGCM8, EncrAESGCM12, EncrAESGCM16, EncrChaCha20Poly1305,
		14, 15, 16: // ENCR_AES_CCM_8/12/16
		return true
	}
	return false
}

// EncrKeyLen is the number of key-material bytes taken from prf+ for one
// direction of the cipher encrID with key length keyBits (the transform's
// Key Length attribute): AES-CBC 16/24/32; AES-GCM keyBits/8 plus a 4-byte
// salt (RFC 5282 §7.1); ChaCha20-Poly1305 32 plus a 4-byte salt (RFC 7634
// §2), where keyBits must be 0 (no attribute) or 256.
func EncrKeyLen(encrID uint16, keyBits int) (int, error) {
	switch encrID {
	case EncrAESCBC, EncrAESGCM8, EncrAESGCM12, EncrAESGCM16:
		if keyBits != 128 && keyBits != 192 && keyBits != 256 {
			return 0, fmt.Errorf("crypto: %s key length %d bits is not supported (want 128, 192 or 256)",
				AlgorithmName(TransformEncr, encrID, 0), keyBits)
		}
		if encrID == EncrAESCBC {
			return keyBits / 8, nil
		}
		return keyBits/8 + saltLen, nil
	case EncrChaCha20Poly1305:
		if keyBits != 0 && keyBits != 256 {
			return 0, fmt.Errorf("crypto: CHACHA20_POLY1305 key length %d bits is not supported (want 256 or none)", keyBits)
		}
		return chacha20poly1305.KeySize + saltLen, nil
	}
	return 0, fmt.Errorf("crypto: unsupported encryption algorithm %s", AlgorithmName(TransformEncr, encrID, 0))
}

// SKCipher protects the body of an IKE SK or SKF payload (RFC 7296 §3.14,
// RFC 7383 §2.5): IV | ciphertext | ICV, where the ciphertext encrypts
// payloads | padding | pad length. It is either an AEAD (AES-GCM per
// RFC 5282, ChaCha20-Poly1305 per RFC 7634) or AES-CBC with an HMAC.
// An SKCipher serves one direction of an IKE SA (SK_ei/SK_ai or
// SK_er/SK_ar) and is safe for concurrent use.
type SKCipher struct {
	encr    uint16
	keyBits int

	// AEAD ciphers.
	aead cipher.AEAD
	salt [saltLen]byte

	// AES-CBC + HMAC.
	block    cipher.Block
	integ    *Integrity
	integKey []byte
}

// NewSKCipher builds an SKCipher. encrKey must be EncrKeyLen(encrID,
// keyBits) bytes. For AEAD ciphers integID must be IntegNone and integKey
// empty; for AES-CBC integID names the HMAC and integKey is its key.
// The keys are copied.
func NewSKCipher(encrID uint16, keyBits int, integID uint16, encrKey, integKey []byte) (*SKCipher, error) {
	kl, err := EncrKeyLen(encrID, keyBits)
	if err != nil {
		return nil, err
	}
	if len(encrKey) != kl {
		return nil, fmt.Errorf("crypto: %s key is %d bytes, want %d",
			AlgorithmName(TransformEncr, encrID, keyBits), len(encrKey), kl)
	}
	c := &SKCipher{encr: encrID, keyBits: keyBits}
	if IsAEAD(encrID) {
		if integID != IntegNone || len(integKey) != 0 {
			return nil, fmt.Errorf("crypto: AEAD cipher %s must not have an integrity algorithm",
				AlgorithmName(TransformEncr, encrID, keyBits))
		}
		key := encrKey[:kl-saltLen]
		copy(c.salt[:], encrKey[kl-saltLen:])
		if c.aead, err = newAEAD(encrID, key); err != nil {
			return nil, err
		}
		return c, nil
	}
	if integID == IntegNone {
		return nil, fmt.Errorf("crypto: %s needs an integrity algorithm", AlgorithmName(TransformEncr, encrID, keyBits))
	}
	if c.integ, err = NewIntegrity(integID); err != nil {
		return nil, err
	}
	if len(integKey) != c.integ.KeyLen() {
		return nil, fmt.Errorf("crypto: %s key is %d bytes, want %d",
			AlgorithmName(TransformInteg, integID, 0), len(integKey), c.integ.KeyLen())
	}
	c.integKey = append([]byte(nil), integKey...)
	if c.block, err = aes.NewCipher(encrKey); err != nil {
		return nil, fmt.Errorf("crypto: AES key: %w", err)
	}
	return c, nil
}

// newAEAD builds the AEAD for encrID from its key (salt removed).
func newAEAD(encrID uint16, key []byte) (cipher.AEAD, error) {
	if encrID == EncrChaCha20Poly1305 {
		a, err := chacha20poly1305.New(key)
		if err != nil {
			return nil, fmt.Errorf("crypto: ChaCha20-Poly1305 key: %w", err)
		}
		return a, nil
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("crypto: AES key: %w", err)
	}
	var a cipher.AEAD
	switch encrID {
	case EncrAESGCM16:
		a, err = cipher.NewGCM(block)
	case EncrAESGCM12:
		a, err = cipher.NewGCMWithTagSize(block, 12)
	case EncrAESGCM8:
		// crypto/cipher refuses tags shorter than 12 bytes.
		a, err = newShortTagGCM(block, 8)
	default:
		return nil, fmt.Errorf("crypto: unsupported encryption algorithm %s", AlgorithmName(TransformEncr, encrID, 0))
	}
	if err != nil {
		return nil, fmt.Errorf("crypto: AES-GCM: %w", err)
	}
	return a, nil
}

// Encr is the cipher's IANA transform ID.
func (c *SKCipher) Encr() uint16 { return c.encr }

// IVLen is the length of the IV at the start of the body: 8 for AEAD
// ciphers, 16 for AES-CBC.
func (c *SKCipher) IVLen() int {
	if c.aead != nil {
		return aeadIVLen
	}
	return cbcIVLen
}

// ICVLen is the length of the ICV (AEAD tag or truncated HMAC) at the end
// of the body.
func (c *SKCipher) ICVLen() int {
	if c.aead != nil {
		return c.aead.Overhead()
	}
	return c.integ.ICVLen()
}

// BodyLen is the length of the SK payload body that Seal produces for
// plainLen bytes of inner payloads: IV + encrypted(plaintext | padding |
// pad length) + ICV. AEAD ciphers use no padding (RFC 7634 §3 asks for
// none; GCM needs no alignment); AES-CBC pads to the block size with the
// least padding possible. A negative plainLen counts as 0.
func (c *SKCipher) BodyLen(plainLen int) int {
	if plainLen < 0 {
		plainLen = 0
	}
	if c.aead != nil {
		return aeadIVLen + plainLen + 1 + c.aead.Overhead()
	}
	return cbcIVLen + cbcPadded(plainLen) + c.integ.ICVLen()
}

// cbcPadded is the length of plaintext | padding | pad length for CBC.
func cbcPadded(plainLen int) int {
	return (plainLen + 1 + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
}

// Overhead is BodyLen(plainLen) - plainLen.
func (c *SKCipher) Overhead(plainLen int) int { return c.BodyLen(plainLen) - max(plainLen, 0) }

// Seal encrypts plaintext into body, which must be exactly
// BodyLen(len(plaintext)) bytes, filling in the IV (read from rand,
// crypto/rand if nil; for AEAD ciphers a fresh random 8-byte IV, which
// needs no counter state), the ciphertext and the ICV.
//
// aad is everything in the message before body: the IKE header through the
// SK generic payload header (for SKF, through the fragment number fields),
// with the length fields already final. For AEAD ciphers it is the
// associated data (RFC 5282 §5.1); for AES-CBC the ICV is the HMAC of
// aad | IV | ciphertext (RFC 7296 §3.14).
//
// plaintext may overlap body (for example sit at body[IVLen():]).
func (c *SKCipher) Seal(aad, body, plaintext []byte, rand io.Reader) error {
	n := len(plaintext)
	if want := c.BodyLen(n); len(body) != want {
		return fmt.Errorf("crypto: SK payload body is %d bytes, want %d for %d bytes of plaintext", len(body), want, n)
	}
	if rand == nil {
		rand = crand.Reader
	}
	// aad must not change while body is written, and crypto/cipher panics
	// if it overlaps the output; a copy of these few bytes rules both out.
	aad = bytes.Clone(aad)
	ivLen := c.IVLen()
	// Copy before writing the IV: copy is a memmove, so any overlap works.
	copy(body[ivLen:], plaintext)
	if c.aead != nil {
		body[ivLen+n] = 0 // pad length; no padding
		iv := body[:ivLen]
		if _, err := io.ReadFull(rand, iv); err != nil {
			return fmt.Errorf("crypto: reading IV: %w", err)
		}
		nonce := c.nonce(iv)
		c.aead.Seal(body[ivLen:ivLen], nonce[:], body[ivLen:ivLen+n+1], aad)
		return nil
	}
	padded := cbcPadded(n)
	ct := body[ivLen : ivLen+padded]
	clear(ct[n : padded-1])
	ct[padded-1] = byte(padded - n - 1)
	iv := body[:ivLen]
	if _, err := io.ReadFull(rand, iv); err != nil {
		return fmt.Errorf("crypto: reading IV: %w", err)
	}
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(ct, ct)
	copy(body[ivLen+padded:], c.integ.sum(c.integKey, aad, body[:ivLen+padded]))
	return nil
}

// Open verifies the ICV (in constant time), decrypts body in place and
// strips the padding, returning the inner payloads; the result aliases
// body, whose contents are undefined after an error. aad is as for Seal.
// Tag or ICV mismatches return ErrAuthFailed; bodies too short to hold
// IV, pad length and ICV return ErrTooShort. Any amount of padding is
// accepted as long as the pad length fits (RFC 5282 §3, RFC 7634 §3).
func (c *SKCipher) Open(aad, body []byte) ([]byte, error) {
	pt, err := c.decrypt(aad, body)
	if err != nil {
		return nil, err
	}
	// Authenticated from here on, so a specific error leaks nothing.
	padLen := int(pt[len(pt)-1])
	if padLen > len(pt)-1 {
		return nil, fmt.Errorf("crypto: SK payload pad length %d exceeds the %d bytes before it", padLen, len(pt)-1)
	}
	return pt[:len(pt)-1-padLen], nil
}

// decrypt authenticates and decrypts body in place, returning the whole
// plaintext: payloads | padding | pad length (at least one byte).
func (c *SKCipher) decrypt(aad, body []byte) ([]byte, error) {
	if c.aead != nil {
		if len(body) < aeadIVLen+1+c.aead.Overhead() {
			return nil, ErrTooShort
		}
		nonce := c.nonce(body[:aeadIVLen])
		// crypto/cipher panics if aad overlaps the output; never trust that
		// a caller's slices are disjoint.
		aad = bytes.Clone(aad)
		pt, err := c.aead.Open(body[aeadIVLen:aeadIVLen], nonce[:], body[aeadIVLen:], aad)
		if err != nil {
			return nil, ErrAuthFailed
		}
		return pt, nil
	}
	icvLen := c.integ.ICVLen()
	if len(body) < cbcIVLen+aes.BlockSize+icvLen {
		return nil, ErrTooShort
	}
	ctEnd := len(body) - icvLen
	if (ctEnd-cbcIVLen)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("crypto: SK payload ciphertext is %d bytes, not a multiple of the %d-byte block",
			ctEnd-cbcIVLen, aes.BlockSize)
	}
	if !hmac.Equal(c.integ.sum(c.integKey, aad, body[:ctEnd]), body[ctEnd:]) {
		return nil, ErrAuthFailed
	}
	pt := body[cbcIVLen:ctEnd]
	cipher.NewCBCDecrypter(c.block, body[:cbcIVLen]).CryptBlocks(pt, pt)
	return pt, nil
}

// nonce is salt | IV (RFC 5282 §4, RFC 7634 §2).
func (c *SKCipher) nonce(iv []byte) [saltLen + aeadIVLen]byte {
	var n [saltLen + aeadIVLen]byte
	copy(n[:], c.salt[:])
	copy(n[saltLen:], iv)
	return n
}
