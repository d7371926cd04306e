package esp

import (
	"fmt"
	"strconv"
)

// IANA transform IDs understood by this package (IKEv2 "Transform Type 1"
// and "Transform Type 3").
const (
	EncrAESCBC           uint16 = 12
	EncrAESGCM16         uint16 = 20
	EncrChaCha20Poly1305 uint16 = 28

	IntegNone           uint16 = 0
	IntegHMACSHA256_128 uint16 = 12
	IntegHMACSHA384_192 uint16 = 13
	IntegHMACSHA512_256 uint16 = 14
)

// Next header values the caller typically uses (IANA protocol numbers).
const (
	NextHeaderIPv4  byte = 4
	NextHeaderIPv6  byte = 41
	NextHeaderDummy byte = 59 // RFC 4303 §2.6: drop silently
)

// saltLen is the implicit nonce part carried in the key material of the
// AEAD suites (RFC 4106 §8.1, RFC 7634 §2).
const saltLen = 4

// Suite names an ESP transform set as negotiated by IKE.
type Suite struct {
	Encr    uint16 // ENCR_* transform ID
	KeyBits int    // key length attribute; 0 for ChaCha20-Poly1305 means 256
	Integ   uint16 // AUTH_* transform ID; IntegNone for AEAD suites
	ESN     bool   // extended (64-bit) sequence numbers
}

// String returns the suite in strongSwan's proposal syntax, e.g.
// "aes256gcm16", "chacha20poly1305-esn", "aes128-sha256".
func (s Suite) String() string {
	var n string
	switch s.Encr {
	case EncrAESGCM16:
		n = "aes" + strconv.Itoa(s.KeyBits) + "gcm16"
	case EncrChaCha20Poly1305:
		n = "chacha20poly1305"
	case EncrAESCBC:
		n = "aes" + strconv.Itoa(s.KeyBits)
	default:
		n = "encr" + strconv.Itoa(int(s.Encr))
	}
	switch s.Integ {
	case IntegNone:
	case IntegHMACSHA256_128:
		n += "-sha256"
	case IntegHMACSHA384_192:
		n += "-sha384"
	case IntegHMACSHA512_256:
		n += "-sha512"
	default:
		n += "-integ" + strconv.Itoa(int(s.Integ))
	}
	if s.ESN {
		n += "-esn"
	}
	return n
}

// KeyLengths returns how many bytes of encryption and integrity key material
// the suite takes from the Child SA KEYMAT (RFC 7296 §2.17), salt included.
func (s Suite) KeyLengths() (encLen, integLen int, err error) {
	p, err := s.params()
	if err != nil {
		return 0, 0, err
	}
	return p.encKeyLen, p.integKeyLen, nil
}

// params is a validated suite: everything the framing code needs to know.
type params struct {
	isAEAD      bool
	encKeyLen   int // bytes, salt included for AEAD
	integKeyLen int
	ivLen       int
	icvLen      int
	align       int // ciphertext alignment: 4 (RFC 4303 §2.4) or the block size
}

func (s Suite) params() (params, error) {
	switch s.Encr {
	case EncrAESGCM16:
		if s.KeyBits != 128 && s.KeyBits != 192 && s.KeyBits != 256 {
			return params{}, fmt.Errorf("esp: suite %v: AES-GCM key length %d bits is not 128, 192 or 256", s, s.KeyBits)
		}
		if s.Integ != IntegNone {
			return params{}, fmt.Errorf("esp: suite %v: AEAD cipher with integrity transform %d", s, s.Integ)
		}
		return params{isAEAD: true, encKeyLen: s.KeyBits/8 + saltLen, ivLen: 8, icvLen: 16, align: 4}, nil
	case EncrChaCha20Poly1305:
		if s.KeyBits != 0 && s.KeyBits != 256 {
			return params{}, fmt.Errorf("esp: suite %v: ChaCha20-Poly1305 key length %d bits is not 256", s, s.KeyBits)
		}
		if s.Integ != IntegNone {
			return params{}, fmt.Errorf("esp: suite %v: AEAD cipher with integrity transform %d", s, s.Integ)
		}
		return params{isAEAD: true, encKeyLen: 32 + saltLen, ivLen: 8, icvLen: 16, align: 4}, nil
	case EncrAESCBC:
		if s.KeyBits != 128 && s.KeyBits != 192 && s.KeyBits != 256 {
			return params{}, fmt.Errorf("esp: suite %v: AES-CBC key length %d bits is not 128, 192 or 256", s, s.KeyBits)
		}
		p := params{encKeyLen: s.KeyBits / 8, ivLen: 16, align: 16}
		switch s.Integ {
		case IntegHMACSHA256_128:
			p.integKeyLen, p.icvLen = 32, 16
		case IntegHMACSHA384_192:
			p.integKeyLen, p.icvLen = 48, 24
		case IntegHMACSHA512_256:
			p.integKeyLen, p.icvLen = 64, 32
		case IntegNone:
			return params{}, fmt.Errorf("esp: suite %v: AES-CBC needs an integrity transform", s)
		default:
			return params{}, fmt.Errorf("esp: suite %v: unsupported integrity transform %d", s, s.Integ)
		}
		return p, nil
	}
	return params{}, fmt.Errorf("esp: suite %v: unsupported encryption transform %d", s, s.Encr)
}
