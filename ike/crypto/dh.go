package crypto

import (
	crand "crypto/rand"
	"fmt"
	"io"
)

// KeyExchange is one side of a Diffie-Hellman exchange: it holds a fresh
// private key and computes the shared secret g^ir from the peer's public
// value as carried in a KE payload.
type KeyExchange interface {
	// Group is the IANA key exchange method ID.
	Group() uint16
	// PublicKey is our public value in KE payload encoding (a copy).
	PublicKey() []byte
	// SharedSecret validates the peer's public value and returns g^ir in
	// the encoding IKEv2 feeds to the PRF. It may be called many times.
	SharedSecret(peer []byte) ([]byte, error)
}

// GroupSupported reports whether NewKeyExchange supports group.
func GroupSupported(group uint16) bool { return KEDataLen(group) != 0 }

// KEDataLen is the length of a public value of group in a KE payload, or 0
// if the group is not supported.
func KEDataLen(group uint16) int {
	switch group {
	case GroupCurve25519:
		return 32
	case GroupECP256:
		return 64
	case GroupECP384:
		return 96
	case GroupMODP2048:
		return 256
	case GroupMODP3072:
		return 384
	case GroupMODP4096:
		return 512
	case GroupMLKEM768:
		return 1184 // the initiator's encapsulation key
	case GroupMLKEM1024:
		return 1568
	}
	return 0
}

// NewKeyExchange generates a private key for group from rand (crypto/rand
// if nil). Supported: Curve25519 (RFC 8031), ECP-256 and ECP-384
// (RFC 5903), MODP 2048/3072/4096 (RFC 3526) and, as the initiator of an
// additional key exchange, ML-KEM-768/1024 (see RespondKeyExchange for the
// responder).
func NewKeyExchange(group uint16, rand io.Reader) (KeyExchange, error) {
	if rand == nil {
		rand = crand.Reader
	}
	switch group {
	case GroupCurve25519, GroupECP256, GroupECP384:
		return generateECDH(group, rand)
	case GroupMODP2048, GroupMODP3072, GroupMODP4096:
		return generateMODP(group, rand)
	case GroupMLKEM768, GroupMLKEM1024:
		return generateMLKEM(group, rand)
	}
	return nil, fmt.Errorf("crypto: unsupported key exchange method %s", AlgorithmName(TransformKE, group, 0))
}

// checkPeerLen rejects a public value of the wrong length for group.
func checkPeerLen(group uint16, peer []byte) error {
	if want := KEDataLen(group); len(peer) != want {
		return fmt.Errorf("crypto: %s public value is %d bytes, want %d",
			AlgorithmName(TransformKE, group, 0), len(peer), want)
	}
	return nil
}
