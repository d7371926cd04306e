package esp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"strings"
	"testing"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// RFC 7634 Appendix A: tunnel-mode ESP with ChaCha20-Poly1305.
const (
	rfc7634Keymat = `80 81 82 83 84 85 86 87 88 89 8a 8b 8c 8d 8e 8f
		90 91 92 93 94 95 96 97 98 99 9a 9b 9c 9d 9e 9f a0 a1 a2 a3`
	rfc7634Source = `45 00 00 54 a6 f2 00 00 40 01 e7 78 c6 33 64 05
		c0 00 02 05 08 00 5b 7a 3a 08 00 00 55 3b ec 10
		00 07 36 27 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13
		14 15 16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23
		24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33
		34 35 36 37`
	// The "ESP packet" of the RFC after its 20-byte outer IPv4 header.
	rfc7634ESP = `01 02 03 04 00 00 00 05 10 11 12 13
		14 15 16 17 24 03 94 28 b9 7f 41 7e 3c 13 75 3a
		4f 05 08 7b 67 c3 52 e6 a7 fa b1 b9 82 d4 66 ef
		40 7a e5 c6 14 ee 80 99 d5 28 44 eb 61 aa 95 df
		ab 4c 02 f7 2a a7 1e 7c 4c 4f 64 c9 be fe 2f ac
		c6 38 e8 f3 cb ec 16 3f ac 46 9b 50 27 73 f6 fb
		94 e6 64 da 91 65 b8 28 29 f6 41 e0 76 aa a8 26
		6b 7f b0 f7 b1 1b 36 99 07 e1 ad 43`
)

func TestRFC7634Seal(t *testing.T) {
	s := Suite{Encr: EncrChaCha20Poly1305}
	o, err := NewOutbound(0x01020304, s, unhex(t, rfc7634Keymat), nil, Limits{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	o.SetSeq(5) // "The next sequence number is 5"
	o.ivHook = func(seq uint64, iv []byte) {
		if seq != 5 {
			t.Errorf("ivHook seq %d, want 5", seq)
		}
		copy(iv, unhex(t, "10 11 12 13 14 15 16 17"))
	}
	src := unhex(t, rfc7634Source)
	buf := make([]byte, o.Headroom()+len(src)+o.Tailroom())
	copy(buf[o.Headroom():], src)
	pkt, err := o.Seal(buf, o.Headroom(), len(src), NextHeaderIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, rfc7634ESP); !bytes.Equal(pkt, want) {
		t.Fatalf("Seal:\n got %x\nwant %x", pkt, want)
	}
}

func TestRFC7634Open(t *testing.T) {
	s := Suite{Encr: EncrChaCha20Poly1305}
	in, err := NewInbound(0x01020304, s, unhex(t, rfc7634Keymat), nil, Limits{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	inner, nh, err := in.Open(unhex(t, rfc7634ESP))
	if err != nil {
		t.Fatal(err)
	}
	if nh != NextHeaderIPv4 || !bytes.Equal(inner, unhex(t, rfc7634Source)) {
		t.Fatalf("Open: nh %d, inner %x", nh, inner)
	}
	if in.HighestSeq() != 5 {
		t.Fatalf("window top %d, want 5", in.HighestSeq())
	}
}

// refTrailer appends RFC 4303 default padding, pad length and next header.
func refTrailer(inner []byte, align int, nh byte) []byte {
	pt := append([]byte(nil), inner...)
	pad := 0
	for (len(pt)+pad+2)%align != 0 {
		pad++
	}
	for i := 1; i <= pad; i++ {
		pt = append(pt, byte(i))
	}
	return append(pt, byte(pad), nh)
}

// TestAESGCMIndependent recomputes AES-GCM ESP packets with crypto/cipher
// directly, from the RFC 4106 layout, and compares them byte for byte.
func TestAESGCMIndependent(t *testing.T) {
	for _, kb := range []int{128, 256} {
		for _, esn := range []bool{false, true} {
			s := Suite{Encr: EncrAESGCM16, KeyBits: kb, ESN: esn}
			t.Run(s.String(), func(t *testing.T) {
				o, in := newPair(t, s, Limits{})
				enc, _ := testKeys(t, s)
				blk, _ := aes.NewCipher(enc[:kb/8])
				gcm, _ := cipher.NewGCM(blk)
				salt := enc[kb/8:]
				seqs := []uint64{1, 2, 0xfffffffe, 0xffffffff, 0x100000000, 0x1_0000_0005}
				if !esn {
					seqs = seqs[:4]
				}
				for _, seq := range seqs {
					o.SetSeq(seq)
					inner := payload(77, byte(seq))
					pkt := seal(t, o, inner, NextHeaderIPv6)

					iv := binary.BigEndian.AppendUint64(nil, seq)
					nonce := append(append([]byte(nil), salt...), iv...)
					hdr := binary.BigEndian.AppendUint32(nil, testSPI)
					hdr = binary.BigEndian.AppendUint32(hdr, uint32(seq))
					aad := hdr
					if esn {
						aad = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, testSPI), uint32(seq>>32))
						aad = binary.BigEndian.AppendUint32(aad, uint32(seq))
					}
					want := append(append([]byte(nil), hdr...), iv...)
					want = gcm.Seal(want, nonce, refTrailer(inner, 4, NextHeaderIPv6), aad)
					if !bytes.Equal(pkt, want) {
						t.Fatalf("seq %#x:\n got %x\nwant %x", seq, pkt, want)
					}
					got, nh, err := in.Open(want)
					if err != nil || nh != NextHeaderIPv6 || !bytes.Equal(got, inner) {
						t.Fatalf("seq %#x: Open of the independent packet: %v", seq, err)
					}
				}
			})
		}
	}
}

// TestCBCIndependent checks AES-CBC/HMAC packets against crypto/cipher and
// crypto/hmac used directly: the ICV over SPI|Seq|IV|ct (|Seq-high with ESN,
// not transmitted), then the decryption with the transmitted IV.
func TestCBCIndependent(t *testing.T) {
	hashes := map[uint16]func() hash.Hash{
		IntegHMACSHA256_128: sha256.New, IntegHMACSHA384_192: sha512.New384, IntegHMACSHA512_256: sha512.New,
	}
	for _, s := range allSuites() {
		if s.Encr != EncrAESCBC {
			continue
		}
		t.Run(s.String(), func(t *testing.T) {
			o, _ := newPair(t, s, Limits{})
			enc, integ := testKeys(t, s)
			blk, _ := aes.NewCipher(enc)
			icvLen := map[uint16]int{12: 16, 13: 24, 14: 32}[s.Integ]
			seen := map[string]bool{}
			for _, seq := range []uint64{1, 2, 0x1_0000_0003} {
				if seq > 0xffffffff && !s.ESN {
					continue
				}
				o.SetSeq(seq)
				inner := payload(61, byte(seq))
				pkt := seal(t, o, inner, NextHeaderIPv4)
				if got := binary.BigEndian.Uint32(pkt[4:]); got != uint32(seq) {
					t.Fatalf("seq field %#x, want %#x", got, uint32(seq))
				}
				iv := pkt[8:24]
				if seen[string(iv)] {
					t.Fatal("IV repeated")
				}
				seen[string(iv)] = true
				end := len(pkt) - icvLen
				mac := hmac.New(hashes[s.Integ], integ)
				mac.Write(pkt[:end])
				if s.ESN {
					mac.Write(binary.BigEndian.AppendUint32(nil, uint32(seq>>32)))
				}
				if want := mac.Sum(nil)[:icvLen]; !bytes.Equal(pkt[end:], want) {
					t.Fatalf("ICV %x, want %x", pkt[end:], want)
				}
				pt := make([]byte, end-24)
				cipher.NewCBCDecrypter(blk, iv).CryptBlocks(pt, pkt[24:end])
				if want := refTrailer(inner, 16, NextHeaderIPv4); !bytes.Equal(pt, want) {
					t.Fatalf("plaintext %x, want %x", pt, want)
				}
			}
		})
	}
}
