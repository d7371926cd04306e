package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// xform is the keyed cipher of one SA direction. Its methods work on a whole
// ESP packet in place and are safe for concurrent use: the ciphers are
// stateless, and everything per call (nonce, AAD, HMAC and CBC state) comes
// from the pool. A stack array would not do: slices passed to the
// cipher.AEAD / hash.Hash interface methods escape, so each call would
// allocate.
type xform struct {
	params
	esn   bool
	aead  cipher.AEAD   // AEAD suites
	salt  [saltLen]byte // AEAD suites
	block cipher.Block  // CBC suites
	pool  sync.Pool     // of *scratch
}

// scratch is per-call state borrowed from xform.pool.
type scratch struct {
	nonce [12]byte
	aad   [12]byte
	sum   [64]byte
	mac   hash.Hash // CBC suites; keyed, Reset before use
	enc   cbcMode
	dec   cbcMode
}

// cbcMode is a CBC BlockMode whose IV can be replaced, which the standard
// library's CBC encrypter and decrypter implement (crypto/tls relies on it).
// It lets one pooled BlockMode serve every packet instead of allocating one
// per IV.
type cbcMode interface {
	cipher.BlockMode
	SetIV([]byte)
}

func newXform(s Suite, encKey, integKey []byte) (*xform, error) {
	p, err := s.params()
	if err != nil {
		return nil, err
	}
	if len(encKey) != p.encKeyLen {
		return nil, fmt.Errorf("esp: suite %v: encryption key is %d bytes, want %d", s, len(encKey), p.encKeyLen)
	}
	if len(integKey) != p.integKeyLen {
		return nil, fmt.Errorf("esp: suite %v: integrity key is %d bytes, want %d", s, len(integKey), p.integKeyLen)
	}
	x := &xform{params: p, esn: s.ESN}
	switch s.Encr {
	case EncrAESGCM16:
		k := len(encKey) - saltLen
		b, err := aes.NewCipher(encKey[:k])
		if err != nil {
			return nil, fmt.Errorf("esp: suite %v: %w", s, err)
		}
		if x.aead, err = cipher.NewGCM(b); err != nil {
			return nil, fmt.Errorf("esp: suite %v: %w", s, err)
		}
		copy(x.salt[:], encKey[k:])
	case EncrChaCha20Poly1305:
		k := len(encKey) - saltLen
		if x.aead, err = chacha20poly1305.New(encKey[:k]); err != nil {
			return nil, fmt.Errorf("esp: suite %v: %w", s, err)
		}
		copy(x.salt[:], encKey[k:])
	case EncrAESCBC:
		if x.block, err = aes.NewCipher(encKey); err != nil {
			return nil, fmt.Errorf("esp: suite %v: %w", s, err)
		}
		var h func() hash.Hash
		switch s.Integ {
		case IntegHMACSHA256_128:
			h = sha256.New
		case IntegHMACSHA384_192:
			h = sha512.New384
		default:
			h = sha512.New
		}
		// hmac.New copies the key; the closure keeps its own copy too so
		// the caller may wipe theirs.
		key := append([]byte(nil), integKey...)
		var zero [16]byte
		if _, ok := cipher.NewCBCEncrypter(x.block, zero[:]).(cbcMode); !ok {
			return nil, fmt.Errorf("esp: suite %v: CBC mode without SetIV", s)
		}
		if _, ok := cipher.NewCBCDecrypter(x.block, zero[:]).(cbcMode); !ok {
			return nil, fmt.Errorf("esp: suite %v: CBC mode without SetIV", s)
		}
		x.pool.New = func() any {
			sc := &scratch{mac: hmac.New(h, key)}
			sc.mac.Reset() // caches the ipad/opad states before first use
			sc.enc = cipher.NewCBCEncrypter(x.block, zero[:]).(cbcMode)
			sc.dec = cipher.NewCBCDecrypter(x.block, zero[:]).(cbcMode)
			return sc
		}
	}
	if x.pool.New == nil {
		x.pool.New = func() any { return new(scratch) }
	}
	return x, nil
}

// headroom is the ESP header plus IV, tailroom the most the trailer and ICV
// can add after the inner packet.
func (x *xform) headroom() int { return 8 + x.ivLen }
func (x *xform) tailroom() int { return x.align - 1 + 2 + x.icvLen }

// minLen is the shortest packet that can carry the 2-byte trailer.
func (x *xform) minLen() int {
	if x.isAEAD {
		return 8 + x.ivLen + 2 + x.icvLen
	}
	return 8 + x.ivLen + x.align + x.icvLen
}

// aeadAAD returns the AAD for pkt: SPI|Seq straight from the packet, or
// SPI|Seq-high|Seq-low in sc.aad with ESN (RFC 4106 §5, RFC 7634 §2.1).
func (x *xform) aeadAAD(sc *scratch, pkt []byte, seq uint64) []byte {
	if !x.esn {
		return pkt[:8]
	}
	copy(sc.aad[:4], pkt[:4])
	binary.BigEndian.PutUint64(sc.aad[4:], seq)
	return sc.aad[:12]
}

// seal encrypts pkt in place. pkt is header|IV|plaintext (ptLen bytes,
// trailer included)|room for the ICV; header and IV are already written.
func (x *xform) seal(pkt []byte, ptLen int, seq uint64) {
	hdr := 8 + x.ivLen
	sc := x.pool.Get().(*scratch)
	if x.isAEAD {
		copy(sc.nonce[:saltLen], x.salt[:])
		copy(sc.nonce[saltLen:], pkt[8:hdr])
		pt := pkt[hdr : hdr+ptLen]
		x.aead.Seal(pt[:0], sc.nonce[:], pt, x.aeadAAD(sc, pkt, seq))
	} else {
		ct := pkt[hdr : hdr+ptLen]
		sc.enc.SetIV(pkt[8:hdr])
		sc.enc.CryptBlocks(ct, ct)
		copy(pkt[hdr+ptLen:], x.icv(sc, pkt[:hdr+ptLen], seq))
	}
	x.pool.Put(sc)
}

// icv computes the truncated HMAC over SPI|Seq|IV|ciphertext, with ESN
// followed by the high 32 bits of the sequence number, which are not
// transmitted (RFC 4303 §2.2.1, RFC 4868 §2.1). The result lives in sc.
func (x *xform) icv(sc *scratch, authed []byte, seq uint64) []byte {
	sc.mac.Reset()
	sc.mac.Write(authed)
	if x.esn {
		binary.BigEndian.PutUint32(sc.aad[:4], uint32(seq>>32))
		sc.mac.Write(sc.aad[:4])
	}
	return sc.mac.Sum(sc.sum[:0])[:x.icvLen]
}

// open authenticates and decrypts pkt in place and returns the plaintext
// (inner packet and trailer); ok is false if authentication failed. The
// caller has checked the length (and, for CBC, the block alignment).
func (x *xform) open(pkt []byte, seq uint64) (pt []byte, ok bool) {
	hdr := 8 + x.ivLen
	end := len(pkt) - x.icvLen
	sc := x.pool.Get().(*scratch)
	if x.isAEAD {
		copy(sc.nonce[:saltLen], x.salt[:])
		copy(sc.nonce[saltLen:], pkt[8:hdr])
		ct := pkt[hdr:]
		var err error
		pt, err = x.aead.Open(ct[:0], sc.nonce[:], ct, x.aeadAAD(sc, pkt, seq))
		ok = err == nil
	} else if hmac.Equal(x.icv(sc, pkt[:end], seq), pkt[end:]) {
		// Integrity first: nothing unauthenticated reaches the decrypter.
		pt = pkt[hdr:end]
		sc.dec.SetIV(pkt[8:hdr])
		sc.dec.CryptBlocks(pt, pt)
		ok = true
	}
	x.pool.Put(sc)
	return pt, ok
}
