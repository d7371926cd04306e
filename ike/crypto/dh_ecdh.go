package crypto

import (
	"crypto/ecdh"
	"crypto/subtle"
	"fmt"
	"io"
)

// ecdhKE implements Curve25519 (RFC 8031) and the ECP groups (RFC 5903)
// with crypto/ecdh, which is constant time.
type ecdhKE struct {
	group uint16
	priv  *ecdh.PrivateKey
	pub   []byte // KE payload encoding
}

// ecdhCurve maps a group to its curve and private scalar length.
func ecdhCurve(group uint16) (ecdh.Curve, int) {
	switch group {
	case GroupCurve25519:
		return ecdh.X25519(), 32
	case GroupECP256:
		return ecdh.P256(), 32
	case GroupECP384:
		return ecdh.P384(), 48
	}
	return nil, 0
}

// generateECDH draws the private scalar from rand itself (rather than
// ecdh.Curve.GenerateKey, which ignores its reader) so that callers can
// make exchanges reproducible in tests. Scalars out of range for the NIST
// curves are rejected and redrawn; that happens with probability < 2^-32.
func generateECDH(group uint16, rand io.Reader) (*ecdhKE, error) {
	_, n := ecdhCurve(group)
	buf := make([]byte, n)
	for range 16 {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("crypto: reading %s private key: %w", AlgorithmName(TransformKE, group, 0), err)
		}
		if k, err := newECDH(group, buf); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("crypto: random source gave no valid %s private key", AlgorithmName(TransformKE, group, 0))
}

// newECDH builds a key exchange from a fixed private key (tests use the
// RFC 5903 and RFC 7748 vectors through it).
func newECDH(group uint16, priv []byte) (*ecdhKE, error) {
	curve, _ := ecdhCurve(group)
	if curve == nil {
		return nil, fmt.Errorf("crypto: %s is not an elliptic curve group", AlgorithmName(TransformKE, group, 0))
	}
	k, err := curve.NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("crypto: %s private key: %w", AlgorithmName(TransformKE, group, 0), err)
	}
	pub := k.PublicKey().Bytes()
	if group != GroupCurve25519 {
		pub = pub[1:] // RFC 5903 §7: x | y, without the 0x04 point format octet
	}
	return &ecdhKE{group: group, priv: k, pub: pub}, nil
}

// Group implements KeyExchange.
func (k *ecdhKE) Group() uint16 { return k.group }

// PublicKey implements KeyExchange.
func (k *ecdhKE) PublicKey() []byte { return append([]byte(nil), k.pub...) }

// SharedSecret implements KeyExchange. For the ECP groups the peer point
// must be on the curve (crypto/ecdh checks; the point at infinity has no
// x | y encoding) and the secret is its x coordinate (RFC 5903 §7). For
// Curve25519 any 32 bytes are accepted as RFC 8031 §3.2 requires (the top
// bit is masked, non-canonical values are allowed), and an all-zero secret,
// which low-order points produce, is rejected (RFC 7748 §6.1).
func (k *ecdhKE) SharedSecret(peer []byte) ([]byte, error) {
	if err := checkPeerLen(k.group, peer); err != nil {
		return nil, err
	}
	name := AlgorithmName(TransformKE, k.group, 0)
	enc := peer
	if k.group != GroupCurve25519 {
		enc = make([]byte, 1+len(peer))
		enc[0] = 4 // uncompressed point
		copy(enc[1:], peer)
	}
	pub, err := k.priv.Curve().NewPublicKey(enc)
	if err != nil {
		return nil, fmt.Errorf("crypto: %s public value is not a valid point on the curve", name)
	}
	s, err := k.priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("crypto: %s shared secret rejected (low-order or invalid peer point)", name)
	}
	if subtle.ConstantTimeCompare(s, make([]byte, len(s))) == 1 {
		return nil, fmt.Errorf("crypto: %s shared secret is all zero (low-order peer point)", name)
	}
	return s, nil
}
