package crypto

import (
	"crypto/mlkem"
	crand "crypto/rand"
	"fmt"
	"io"
)

// ML-KEM key exchange method transform IDs (IANA "Transform Type 4",
// draft-ietf-ipsecme-ikev2-mlkem). ML-KEM-512 has an ID but Go's
// crypto/mlkem implements only ML-KEM-768 and ML-KEM-1024, so it is not
// supported.
const (
	GroupMLKEM512  uint16 = 35
	GroupMLKEM768  uint16 = 36
	GroupMLKEM1024 uint16 = 37
)

// IsKEM reports whether group is a key encapsulation method: the
// initiator sends an encapsulation key, the responder answers with a
// ciphertext, and only the initiator holds a private key.
func IsKEM(group uint16) bool {
	return group == GroupMLKEM512 || group == GroupMLKEM768 || group == GroupMLKEM1024
}

// mlkemCiphertextLen is the length of the responder's KE data for a KEM.
func mlkemCiphertextLen(group uint16) int {
	switch group {
	case GroupMLKEM768:
		return mlkem.CiphertextSize768
	case GroupMLKEM1024:
		return mlkem.CiphertextSize1024
	}
	return 0
}

// mlkemKE is the initiator's side of ML-KEM (FIPS 203): PublicKey is the
// encapsulation key, SharedSecret decapsulates the responder's ciphertext.
type mlkemKE struct {
	group uint16
	dk768 *mlkem.DecapsulationKey768
	dk1k  *mlkem.DecapsulationKey1024
	pub   []byte
}

// generateMLKEM derives the decapsulation key from a 64-byte seed read
// from rand, so that tests can make exchanges reproducible.
func generateMLKEM(group uint16, rand io.Reader) (*mlkemKE, error) {
	seed := make([]byte, mlkem.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("crypto: reading %s seed: %w", AlgorithmName(TransformKE, group, 0), err)
	}
	k := &mlkemKE{group: group}
	var err error
	switch group {
	case GroupMLKEM768:
		if k.dk768, err = mlkem.NewDecapsulationKey768(seed); err == nil {
			k.pub = k.dk768.EncapsulationKey().Bytes()
		}
	case GroupMLKEM1024:
		if k.dk1k, err = mlkem.NewDecapsulationKey1024(seed); err == nil {
			k.pub = k.dk1k.EncapsulationKey().Bytes()
		}
	default:
		return nil, fmt.Errorf("crypto: unsupported key exchange method %s (Go's crypto/mlkem has ML-KEM-768 and ML-KEM-1024)", AlgorithmName(TransformKE, group, 0))
	}
	if err != nil {
		return nil, fmt.Errorf("crypto: %s key: %w", AlgorithmName(TransformKE, group, 0), err)
	}
	return k, nil
}

func (k *mlkemKE) Group() uint16 { return k.group }

func (k *mlkemKE) PublicKey() []byte { return append([]byte(nil), k.pub...) }

// SharedSecret decapsulates the responder's ciphertext. A ciphertext of
// the right length never fails: ML-KEM's implicit rejection turns a
// forged one into a secret the responder does not share, so the next
// protected message fails its integrity check.
func (k *mlkemKE) SharedSecret(ct []byte) ([]byte, error) {
	if want := mlkemCiphertextLen(k.group); len(ct) != want {
		return nil, fmt.Errorf("crypto: %s ciphertext is %d bytes, want %d", AlgorithmName(TransformKE, k.group, 0), len(ct), want)
	}
	if k.dk768 != nil {
		return k.dk768.Decapsulate(ct)
	}
	return k.dk1k.Decapsulate(ct)
}

// RespondKeyExchange is the responder's half of any key exchange method:
// for a Diffie-Hellman group it makes a fresh key pair from rand and
// combines it with the peer's public value; for a KEM it encapsulates to
// the peer's encapsulation key (with crypto/rand: crypto/mlkem takes no
// reader). It returns the KE data to send back and the shared secret.
func RespondKeyExchange(group uint16, peer []byte, rand io.Reader) (public, secret []byte, err error) {
	if rand == nil {
		rand = crand.Reader
	}
	name := AlgorithmName(TransformKE, group, 0)
	switch group {
	case GroupMLKEM768:
		if len(peer) != mlkem.EncapsulationKeySize768 {
			return nil, nil, fmt.Errorf("crypto: %s encapsulation key is %d bytes, want %d", name, len(peer), mlkem.EncapsulationKeySize768)
		}
		ek, err := mlkem.NewEncapsulationKey768(peer)
		if err != nil {
			return nil, nil, fmt.Errorf("crypto: %s encapsulation key: %w", name, err)
		}
		secret, ct := ek.Encapsulate()
		return ct, secret, nil
	case GroupMLKEM1024:
		if len(peer) != mlkem.EncapsulationKeySize1024 {
			return nil, nil, fmt.Errorf("crypto: %s encapsulation key is %d bytes, want %d", name, len(peer), mlkem.EncapsulationKeySize1024)
		}
		ek, err := mlkem.NewEncapsulationKey1024(peer)
		if err != nil {
			return nil, nil, fmt.Errorf("crypto: %s encapsulation key: %w", name, err)
		}
		secret, ct := ek.Encapsulate()
		return ct, secret, nil
	}
	ke, err := NewKeyExchange(group, rand)
	if err != nil {
		return nil, nil, err
	}
	if secret, err = ke.SharedSecret(peer); err != nil {
		return nil, nil, err
	}
	return ke.PublicKey(), secret, nil
}

// IntermediateSKEYSEED computes SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni |
// Nr) after the n-th additional key exchange of an initial IKE SA (RFC
// 9370 §2.2.2); DeriveIKEKeys then follows with the IKE_SA_INIT nonces
// and SPIs. It is the RFC 7296 rekey formula with SK(n) for g^ir.
func IntermediateSKEYSEED(prf *PRF, skd, sk, ni, nr []byte) []byte {
	return prf.sum(skd, sk, ni, nr)
}
