package crypto

import (
	"bytes"
	"errors"
	"testing"
)

// RFC 7634 Appendix B: an INFORMATIONAL request protected with
// ChaCha20-Poly1305 (key 0x80..0x9f, salt a0a1a2a3, IV 1011..17).
func TestChaCha20Poly1305RFC7634IKEv2(t *testing.T) {
	key := append(seq(0x80, 0x9f), 0xa0, 0xa1, 0xa2, 0xa3)
	msg := h(t, `
		c0 c1 c2 c3 c4 c5 c6 c7 d0 d1 d2 d3 d4 d5 d6 d7
		2e 20 25 00 00 00 00 09 00 00 00 45 29 00 00 29
		10 11 12 13 14 15 16 17 61 03 94 70 1f 8d 01 7f
		7c 12 92 48 89 6b 71 bf e2 52 36 ef d7 cd c6 70
		66 90 63 15 b2`)
	notify := h(t, "00 00 00 0c 00 00 40 01 00 00 00 0a")
	c, err := NewSKCipher(EncrChaCha20Poly1305, 0, IntegNone, key, nil)
	if err != nil {
		t.Fatal(err)
	}

	body := append([]byte(nil), msg[32:]...)
	pt, err := c.Open(msg[:32], body)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !bytes.Equal(pt, notify) {
		t.Fatalf("Open = %x, want %x", pt, notify)
	}

	// Seal with the same IV reproduces the message byte for byte.
	out := make([]byte, c.BodyLen(len(notify)))
	if len(out) != len(msg)-32 {
		t.Fatalf("BodyLen = %d, want %d", len(out), len(msg)-32)
	}
	if err := c.Seal(msg[:32], out, notify, bytes.NewReader(seq(0x10, 0x17))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, msg[32:]) {
		t.Fatalf("Seal =\n%x\nwant\n%x", out, msg[32:])
	}
}

// RFC 7634 Appendix A: the ESP example, decrypted with the same AEAD
// construction (AAD = SPI | sequence number).
func TestChaCha20Poly1305RFC7634ESP(t *testing.T) {
	key := append(seq(0x80, 0x9f), 0xa0, 0xa1, 0xa2, 0xa3)
	plain := h(t, `
		45 00 00 54 a6 f2 00 00 40 01 e7 78 c6 33 64 05
		c0 00 02 05 08 00 5b 7a 3a 08 00 00 55 3b ec 10
		00 07 36 27 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13
		14 15 16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23
		24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33
		34 35 36 37 01 02 02 04`)
	ct := h(t, `
		24 03 94 28 b9 7f 41 7e 3c 13 75 3a 4f 05 08 7b
		67 c3 52 e6 a7 fa b1 b9 82 d4 66 ef 40 7a e5 c6
		14 ee 80 99 d5 28 44 eb 61 aa 95 df ab 4c 02 f7
		2a a7 1e 7c 4c 4f 64 c9 be fe 2f ac c6 38 e8 f3
		cb ec 16 3f ac 46 9b 50 27 73 f6 fb 94 e6 64 da
		91 65 b8 28 29 f6 41 e0`)
	tag := h(t, "76 aa a8 26 6b 7f b0 f7 b1 1b 36 99 07 e1 ad 43")
	aad := h(t, "01 02 03 04 00 00 00 05")
	c, err := NewSKCipher(EncrChaCha20Poly1305, 256, IntegNone, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := append(append(seq(0x10, 0x17), ct...), tag...)
	got, err := c.decrypt(aad, body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatalf("decrypt = %x, want %x", got, plain)
	}
}

// AES-GCM test cases 3, 4, 10, 15 and 16 of McGrew & Viega, "The
// Galois/Counter Mode of Operation (GCM)", Appendix B, the vectors that
// RFC 4106 §9 and RFC 5282 §9 point to. The 96-bit IV cafebabefacedbad
// decaf888 is split as salt cafebabe and explicit IV facedbaddecaf888,
// which is exactly the RFC 5282 §4 nonce. GCM-12 and GCM-8 tags are the
// leading bytes of the full tag (NIST SP 800-38D §7.1).
func TestAESGCMKAT(t *testing.T) {
	p64 := `d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
		1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255`
	aad := "feedfacedeadbeeffeedfacedeadbeefabaddad2"
	k128 := "feffe9928665731c6d6a8f9467308308"
	k192 := "feffe9928665731c6d6a8f9467308308feffe9928665731c"
	k256 := "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
	cases := []struct {
		name, key, aad, ct, tag string
		plainLen                int
	}{
		{"TC3", k128, "", `42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
			21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985`,
			"4d5c2af327cd64a62cf35abd2ba6fab4", 64},
		{"TC4", k128, aad, `42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
			21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091`,
			"5bc94fbc3221a5db94fae95ae7121a47", 60},
		{"TC10", k192, aad, `3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c
			7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710`,
			"2519498e80f1478f37ba55bd6d27618c", 60},
		{"TC15", k256, "", `522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
			8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad`,
			"b094dac5d93471bdec1a502270e3cc6c", 64},
		{"TC16", k256, aad, `522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
			8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662`,
			"76fc6ece0f4e1768cddf8853bb2d551b", 60},
	}
	salt, iv := h(t, "cafebabe"), h(t, "facedbaddecaf888")
	for _, tc := range cases {
		key := append(h(t, tc.key), salt...)
		plain := h(t, p64)[:tc.plainLen]
		for _, v := range []struct {
			id     uint16
			tagLen int
		}{{EncrAESGCM16, 16}, {EncrAESGCM12, 12}, {EncrAESGCM8, 8}} {
			name := tc.name + "/" + AlgorithmName(TransformEncr, v.id, (len(key)-4)*8)
			c, err := NewSKCipher(v.id, (len(key)-4)*8, IntegNone, key, nil)
			if err != nil {
				t.Fatal(err)
			}
			body := append(append(append([]byte(nil), iv...), h(t, tc.ct)...), h(t, tc.tag)[:v.tagLen]...)
			tampered := append([]byte(nil), body...)
			got, err := c.decrypt(h(t, tc.aad), body)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !bytes.Equal(got, plain) {
				t.Errorf("%s: plaintext\n%x\nwant\n%x", name, got, plain)
			}
			tampered[len(tampered)-1] ^= 1
			if _, err := c.decrypt(h(t, tc.aad), tampered); !errors.Is(err, ErrAuthFailed) {
				t.Errorf("%s: tampered tag: err = %v", name, err)
			}
			// Seal encrypts plaintext | pad length 0 in counter mode, so its
			// ciphertext starts with the published one.
			out := make([]byte, c.BodyLen(len(plain)))
			if err := c.Seal(h(t, tc.aad), out, plain, bytes.NewReader(iv)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out[:8], iv) || !bytes.Equal(out[8:8+len(plain)], h(t, tc.ct)) {
				t.Errorf("%s: Seal ciphertext differs from the vector", name)
			}
		}
	}
}

// RFC 3602 §4 AES-CBC test cases #1-#4, decrypted through an SK body
// (IV | ciphertext | HMAC-SHA2-256-128 ICV over aad | IV | ciphertext).
func TestAESCBCRFC3602(t *testing.T) {
	cases := []struct{ key, iv, plain, ct string }{
		{"06a9214036b8a15b512e03d534120006", "3dafba429d9eb430b422da802c9fac41",
			"53696e676c6520626c6f636b206d7367", // "Single block msg"
			"e353779c1079aeb82708942dbe77181a"},
		{"c286696d887c9aa0611bbb3e2025a45a", "562e17996d093d28ddb3ba695a2e6f58",
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
			"d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1"},
		{"6c3ea0477630ce21a2ce334aa746c2cd", "c782dc4c098c66cbd9cd27d825682c81",
			"5468697320697320612034382d62797465206d657373616765202865786163746c7920332041455320626c6f636b7329", // "This is a 48-byte message (exactly 3 AES blocks)"
			"d0a02b3836451753d493665d33f0e8862dea54cdb293abc7506939276772f8d5021c19216bad525c8579695d83ba2684"},
		{"56e47a38c5598974bc46903dba290349", "8ce82eefbea0da3c44699ed7db51b7d9",
			`a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf
			c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf`,
			`c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e
			35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55`},
	}
	integKey := seq(0x40, 0x5f)
	integ, _ := NewIntegrity(IntegHMACSHA2_256_128)
	aad := []byte("IKE header and SK payload header")
	for i, tc := range cases {
		c, err := NewSKCipher(EncrAESCBC, 128, IntegHMACSHA2_256_128, h(t, tc.key), integKey)
		if err != nil {
			t.Fatal(err)
		}
		ivct := append(h(t, tc.iv), h(t, tc.ct)...)
		body := append(append([]byte(nil), ivct...), integ.Sum(integKey, append(append([]byte(nil), aad...), ivct...))...)
		got, err := c.decrypt(aad, body)
		if err != nil {
			t.Fatalf("case #%d: %v", i+1, err)
		}
		if !bytes.Equal(got, h(t, tc.plain)) {
			t.Errorf("case #%d: plaintext %x, want %s", i+1, got, tc.plain)
		}
		// Seal pads the block-aligned plaintext with one more block; CBC
		// leaves the blocks before it as published.
		out := make([]byte, c.BodyLen(len(h(t, tc.plain))))
		if err := c.Seal(aad, out, h(t, tc.plain), bytes.NewReader(h(t, tc.iv))); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out[:len(ivct)], ivct) {
			t.Errorf("case #%d: Seal IV|ciphertext\n%x\nwant prefix\n%x", i+1, out, ivct)
		}
	}
}
