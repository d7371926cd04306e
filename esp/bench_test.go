package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

const benchSize = 1400

func BenchmarkSeal(b *testing.B) {
	for _, s := range benchSuites() {
		b.Run(s.String(), func(b *testing.B) {
			o, _ := newPair(b, s, Limits{})
			o.max = 1<<63 - 1 // b.N may exceed 2^32 sequence numbers in theory
			buf := make([]byte, o.Headroom()+benchSize+o.Tailroom())
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				// Re-sealing the previous ciphertext: same cost as fresh data.
				if _, err := o.Seal(buf, o.Headroom(), benchSize, 4); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen opens pre-sealed packets; each iteration copies one packet
// into the work buffer (Open decrypts in place), which costs well under
// 5% of the crypto, and the window is reset whenever the ring of packets
// starts over.
func BenchmarkOpen(b *testing.B) {
	for _, s := range benchSuites() {
		b.Run(s.String(), func(b *testing.B) {
			o, in := newPair(b, s, Limits{})
			const ring = 256
			pkts := make([][]byte, ring)
			for k := range pkts {
				pkts[k] = seal(b, o, payload(benchSize, byte(k)), 4)
			}
			work := make([]byte, len(pkts[0]))
			b.SetBytes(benchSize)
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				if k == ring {
					k = 0
					in.win = window{}
				}
				copy(work, pkts[k])
				if _, _, err := in.Open(work); err != nil {
					b.Fatal(err)
				}
				k++
			}
		})
	}
}

// BenchmarkRawAEAD is the bare cipher on 1400 bytes, without ESP framing,
// pools or bookkeeping: the floor Seal is compared with. For CBC suites it
// is CBC encryption plus the HMAC, with a reused BlockMode and hash.
func BenchmarkRawAEAD(b *testing.B) {
	for _, s := range benchSuites() {
		b.Run(s.String(), func(b *testing.B) {
			enc, integ := testKeys(b, s)
			buf := make([]byte, benchSize+64)
			pt := buf[:benchSize]
			nonce := make([]byte, 12)
			aad := make([]byte, 8)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			switch s.Encr {
			case EncrAESGCM16, EncrChaCha20Poly1305:
				var a cipher.AEAD
				k := enc[:len(enc)-4]
				if s.Encr == EncrAESGCM16 {
					blk, _ := aes.NewCipher(k)
					a, _ = cipher.NewGCM(blk)
				} else {
					a, _ = chacha20poly1305.New(k)
				}
				for b.Loop() {
					a.Seal(pt[:0], nonce, pt, aad)
				}
			case EncrAESCBC:
				blk, _ := aes.NewCipher(enc)
				iv := make([]byte, 16)
				mode := cipher.NewCBCEncrypter(blk, iv).(cbcMode)
				h := map[uint16]func() hash.Hash{12: sha256.New, 13: sha512.New384, 14: sha512.New}[s.Integ]
				mac := hmac.New(h, integ)
				ct := buf[:(benchSize+2+15)/16*16] // inner + ESP trailer, padded
				sum := make([]byte, 0, 64)
				for b.Loop() {
					mode.SetIV(iv)
					mode.CryptBlocks(ct, ct)
					mac.Reset()
					mac.Write(ct)
					sum = mac.Sum(sum[:0])
				}
			}
		})
	}
}
