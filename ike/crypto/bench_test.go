package crypto

import (
	"testing"
)

// Seal and Open of a 1400-byte plaintext per cipher suite.
func BenchmarkSKCipher(b *testing.B) {
	aad := make([]byte, 32)
	pt := make([]byte, 1400)
	for _, s := range allSuites() {
		c := newSuiteCipher(b, s, 1)
		body := make([]byte, c.BodyLen(len(pt)))
		b.Run("Seal/"+s.String(), func(b *testing.B) {
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				if err := c.Seal(aad, body, pt, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		sealed := make([]byte, len(body))
		_ = c.Seal(aad, sealed, pt, nil)
		work := make([]byte, len(body))
		b.Run("Open/"+s.String(), func(b *testing.B) {
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				copy(work, sealed)
				if _, err := c.Open(aad, work); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// SharedSecret per group (the peer's public value is fixed).
func BenchmarkSharedSecret(b *testing.B) {
	for _, g := range []uint16{GroupCurve25519, GroupECP256, GroupECP384, GroupMODP2048, GroupMODP3072, GroupMODP4096} {
		a, err := NewKeyExchange(g, nil)
		if err != nil {
			b.Fatal(err)
		}
		peer, _ := NewKeyExchange(g, nil)
		pub := peer.PublicKey()
		b.Run(AlgorithmName(TransformKE, g, 0), func(b *testing.B) {
			for b.Loop() {
				if _, err := a.SharedSecret(pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// NewKeyExchange per group (key generation).
func BenchmarkNewKeyExchange(b *testing.B) {
	for _, g := range []uint16{GroupCurve25519, GroupECP256, GroupECP384, GroupMODP2048, GroupMODP3072, GroupMODP4096} {
		b.Run(AlgorithmName(TransformKE, g, 0), func(b *testing.B) {
			for b.Loop() {
				if _, err := NewKeyExchange(g, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
