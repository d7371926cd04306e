package crypto

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// suite is one SK cipher configuration.
type suite struct {
	encr    uint16
	keyBits int
	integ   uint16
}

func (s suite) String() string {
	return SuiteString([]Algorithm{{Type: TransformEncr, ID: s.encr, KeyBits: s.keyBits}, {Type: TransformInteg, ID: s.integ}})
}

// allSuites lists every supported cipher configuration.
func allSuites() []suite {
	var out []suite
	for _, bits := range []int{128, 192, 256} {
		for _, integ := range []uint16{IntegHMACSHA1_96, IntegHMACSHA2_256_128, IntegHMACSHA2_384_192, IntegHMACSHA2_512_256} {
			out = append(out, suite{EncrAESCBC, bits, integ})
		}
		for _, g := range []uint16{EncrAESGCM8, EncrAESGCM12, EncrAESGCM16} {
			out = append(out, suite{g, bits, IntegNone})
		}
	}
	return append(out, suite{EncrChaCha20Poly1305, 0, IntegNone}, suite{EncrChaCha20Poly1305, 256, IntegNone})
}

// newSuiteCipher builds a cipher for s with keys derived from seed.
func newSuiteCipher(t testing.TB, s suite, seed byte) *SKCipher {
	t.Helper()
	kl, err := EncrKeyLen(s.encr, s.keyBits)
	if err != nil {
		t.Fatal(err)
	}
	var ik []byte
	if s.integ != IntegNone {
		in, _ := NewIntegrity(s.integ)
		ik = bytes.Repeat([]byte{seed ^ 0x5a}, in.KeyLen())
	}
	c, err := NewSKCipher(s.encr, s.keyBits, s.integ, seq(int(seed), int(seed)+kl-1), ik)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSKCipherRoundTrip(t *testing.T) {
	aad := []byte("0123456789abcdef0123456789abcdef")
	for _, s := range allSuites() {
		c := newSuiteCipher(t, s, 1)
		for _, n := range []int{0, 1, 2, 7, 14, 15, 16, 17, 31, 32, 33, 100, 1400} {
			pt := bytes.Repeat([]byte{0xc3}, n)
			body := make([]byte, c.BodyLen(n))
			if err := c.Seal(aad, body, pt, nil); err != nil {
				t.Fatalf("%v n=%d: Seal: %v", s, n, err)
			}
			if c.Overhead(n) != len(body)-n {
				t.Errorf("%v: Overhead(%d) = %d", s, n, c.Overhead(n))
			}
			if IsAEAD(s.encr) {
				if c.IVLen() != 8 || len(body) != 8+n+1+c.ICVLen() {
					t.Errorf("%v n=%d: body %d bytes", s, n, len(body))
				}
			} else if c.IVLen() != 16 || (len(body)-16-c.ICVLen())%16 != 0 || len(body)-16-c.ICVLen()-n < 1 || len(body)-16-c.ICVLen()-n > 16 {
				t.Errorf("%v n=%d: CBC body %d bytes not minimally padded", s, n, len(body))
			}
			got, err := c.Open(aad, append([]byte(nil), body...))
			if err != nil {
				t.Fatalf("%v n=%d: Open: %v", s, n, err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatalf("%v n=%d: round trip mismatch", s, n)
			}
			// The peer's cipher with other keys must not open it.
			if _, err := newSuiteCipher(t, s, 2).Open(aad, append([]byte(nil), body...)); !errors.Is(err, ErrAuthFailed) {
				t.Errorf("%v n=%d: wrong key: err = %v", s, n, err)
			}
		}
	}
}

// Flipping any single bit of the associated data or the body must fail
// authentication.
func TestSKCipherTamper(t *testing.T) {
	aad := []byte("IKE header (28 bytes) + SK hdr")
	pt := []byte("inner payloads")
	for _, s := range allSuites() {
		c := newSuiteCipher(t, s, 7)
		body := make([]byte, c.BodyLen(len(pt)))
		if err := c.Seal(aad, body, pt, nil); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 8*(len(aad)+len(body)); i++ {
			a, b := append([]byte(nil), aad...), append([]byte(nil), body...)
			if i < 8*len(a) {
				a[i/8] ^= 1 << (i % 8)
			} else {
				b[i/8-len(a)] ^= 1 << (i % 8)
			}
			if _, err := c.Open(a, b); !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("%v: bit %d flipped: err = %v", s, i, err)
			}
		}
		// Truncated or extended bodies fail too.
		for _, b := range [][]byte{body[:len(body)-1], append(append([]byte(nil), body...), 0), body[:c.IVLen()], nil} {
			if _, err := c.Open(aad, append([]byte(nil), b...)); err == nil {
				t.Fatalf("%v: body of %d bytes opened", s, len(b))
			}
		}
	}
}

func TestSKCipherTooShort(t *testing.T) {
	for _, s := range allSuites() {
		c := newSuiteCipher(t, s, 3)
		min := c.IVLen() + 1 + c.ICVLen()
		if !IsAEAD(s.encr) {
			min = c.IVLen() + 16 + c.ICVLen()
		}
		for n := 0; n < min; n++ {
			if _, err := c.Open(nil, make([]byte, n)); !errors.Is(err, ErrTooShort) {
				t.Errorf("%v: %d bytes: err = %v, want ErrTooShort", s, n, err)
			}
		}
	}
}

// sealPadded builds a body around a plaintext that already carries its
// own padding and pad length, as a peer with other padding habits would.
func sealPadded(t *testing.T, c *SKCipher, aad, padded, iv []byte) []byte {
	t.Helper()
	if c.aead != nil {
		nonce := c.nonce(iv)
		return c.aead.Seal(append([]byte(nil), iv...), nonce[:], padded, aad)
	}
	if len(padded)%16 != 0 {
		t.Fatal("CBC plaintext not block aligned")
	}
	body := append(append([]byte(nil), iv...), padded...)
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(body[len(iv):], body[len(iv):])
	return append(body, c.integ.sum(c.integKey, aad, body)...)
}

func TestSKCipherPadding(t *testing.T) {
	aad := []byte("aad")
	for _, s := range allSuites() {
		c := newSuiteCipher(t, s, 9)
		iv := seq(1, c.IVLen())
		payload := []byte("payload-bytes!") // 14 bytes
		for _, padLen := range []int{0, 1, 17, 255} {
			padded := append(append([]byte(nil), payload...), bytes.Repeat([]byte{0xee}, padLen)...)
			padded = append(padded, byte(padLen))
			if !IsAEAD(s.encr) && len(padded)%16 != 0 {
				continue // CBC needs alignment (pad 1 and 17 give 16 and 32 bytes)
			}
			got, err := c.Open(aad, sealPadded(t, c, aad, padded, iv))
			if err != nil {
				t.Fatalf("%v pad %d: %v", s, padLen, err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("%v pad %d: got %q", s, padLen, got)
			}
		}
		// All padding, no payload: pad length = len-1 is the largest valid.
		padded := make([]byte, 16)
		padded[15] = 15
		if got, err := c.Open(aad, sealPadded(t, c, aad, padded, iv)); err != nil || len(got) != 0 {
			t.Fatalf("%v: all padding: %q %v", s, got, err)
		}
		// A pad length one larger than what precedes it is rejected, but as
		// a padding error: the body did authenticate.
		padded[15] = 16
		_, err := c.Open(aad, sealPadded(t, c, aad, padded, iv))
		if err == nil || errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "pad length 16") {
			t.Fatalf("%v: oversized pad length: err = %v", s, err)
		}
	}
}

// Seal may work in place, with the plaintext already at body[IVLen():].
func TestSKCipherSealInPlace(t *testing.T) {
	for _, s := range allSuites() {
		c := newSuiteCipher(t, s, 4)
		pt := []byte("in place plaintext of some length")
		body := make([]byte, c.BodyLen(len(pt)))
		copy(body[c.IVLen():], pt)
		if err := c.Seal(nil, body, body[c.IVLen():c.IVLen()+len(pt)], nil); err != nil {
			t.Fatal(err)
		}
		got, err := c.Open(nil, body)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%v: %q %v", s, got, err)
		}
	}
}

func TestSKCipherSealErrors(t *testing.T) {
	for _, s := range allSuites() {
		c := newSuiteCipher(t, s, 5)
		pt := []byte("x")
		for _, n := range []int{0, c.BodyLen(1) - 1, c.BodyLen(1) + 1} {
			if err := c.Seal(nil, make([]byte, n), pt, nil); err == nil {
				t.Errorf("%v: Seal into %d bytes succeeded", s, n)
			}
		}
		if err := c.Seal(nil, make([]byte, c.BodyLen(1)), pt, bytes.NewReader([]byte{1, 2})); err == nil {
			t.Errorf("%v: Seal with a failing random source succeeded", s)
		}
	}
}

// Random IVs differ between two seals of the same plaintext.
func TestSKCipherFreshIV(t *testing.T) {
	for _, s := range allSuites() {
		c := newSuiteCipher(t, s, 6)
		a, b := make([]byte, c.BodyLen(3)), make([]byte, c.BodyLen(3))
		_ = c.Seal(nil, a, []byte("abc"), nil)
		_ = c.Seal(nil, b, []byte("abc"), nil)
		if bytes.Equal(a[:c.IVLen()], b[:c.IVLen()]) {
			t.Errorf("%v: two seals used the same IV", s)
		}
	}
}

func TestEncrKeyLen(t *testing.T) {
	for _, tc := range []struct {
		id   uint16
		bits int
		want int
		ok   bool
	}{
		{EncrAESCBC, 128, 16, true}, {EncrAESCBC, 192, 24, true}, {EncrAESCBC, 256, 32, true},
		{EncrAESCBC, 0, 0, false}, {EncrAESCBC, 64, 0, false},
		{EncrAESGCM16, 128, 20, true}, {EncrAESGCM12, 192, 28, true}, {EncrAESGCM8, 256, 36, true},
		{EncrAESGCM16, 0, 0, false},
		{EncrChaCha20Poly1305, 0, 36, true}, {EncrChaCha20Poly1305, 256, 36, true},
		{EncrChaCha20Poly1305, 128, 0, false},
		{3, 0, 0, false}, {14, 128, 0, false},
	} {
		got, err := EncrKeyLen(tc.id, tc.bits)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("EncrKeyLen(%d, %d) = %d, %v", tc.id, tc.bits, got, err)
		}
	}
}

func TestNewSKCipherErrors(t *testing.T) {
	k16, k20, k32 := make([]byte, 16), make([]byte, 20), make([]byte, 32)
	for i, tc := range []struct {
		encr      uint16
		bits      int
		integ     uint16
		ek, ik    []byte
		wantInErr string
	}{
		{EncrAESGCM16, 128, IntegHMACSHA2_256_128, k20, k32, "must not have an integrity"},
		{EncrAESGCM16, 128, IntegNone, k20, k32, "must not have an integrity"},
		{EncrAESGCM16, 128, IntegNone, k16, nil, "key is 16 bytes, want 20"},
		{EncrAESCBC, 128, IntegNone, k16, nil, "needs an integrity"},
		{EncrAESCBC, 128, IntegHMACSHA2_256_128, k16, k16, "HMAC_SHA2_256_128 key is 16 bytes, want 32"},
		{EncrAESCBC, 128, 99, k16, k16, "unsupported integrity"},
		{EncrAESCBC, 256, IntegHMACSHA2_256_128, k16, k32, "key is 16 bytes, want 32"},
		{EncrChaCha20Poly1305, 128, IntegNone, make([]byte, 36), nil, "key length 128"},
		{3, 192, IntegHMACSHA1_96, make([]byte, 24), k20, "unsupported encryption algorithm 3DES"},
	} {
		_, err := NewSKCipher(tc.encr, tc.bits, tc.integ, tc.ek, tc.ik)
		if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
			t.Errorf("case %d: err = %v, want it to mention %q", i, err, tc.wantInErr)
		}
	}
}

func TestIsAEAD(t *testing.T) {
	for id, want := range map[uint16]bool{
		EncrAESCBC: false, EncrAESGCM8: true, EncrAESGCM12: true, EncrAESGCM16: true,
		EncrChaCha20Poly1305: true, 3: false, 0: false,
	} {
		if IsAEAD(id) != want {
			t.Errorf("IsAEAD(%d) = %v", id, !want)
		}
	}
}

// The keys given to NewSKCipher are copied.
func TestNewSKCipherCopiesKeys(t *testing.T) {
	for _, s := range []suite{{EncrAESCBC, 128, IntegHMACSHA2_256_128}, {EncrAESGCM16, 128, IntegNone}} {
		kl, _ := EncrKeyLen(s.encr, s.keyBits)
		ek := seq(1, kl)
		var ik []byte
		if s.integ != IntegNone {
			ik = seq(100, 131)
		}
		c, err := NewSKCipher(s.encr, s.keyBits, s.integ, ek, ik)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, c.BodyLen(4))
		_ = c.Seal(nil, body, []byte("abcd"), nil)
		clear(ek)
		clear(ik)
		if _, err := c.Open(nil, body); err != nil {
			t.Errorf("%v: Open after the caller cleared its keys: %v", s, err)
		}
	}
}

func ExampleSKCipher() {
	key := make([]byte, 36) // from prf+: SK_ei for aes256gcm16
	c, _ := NewSKCipher(EncrAESGCM16, 256, IntegNone, key, nil)
	aad := make([]byte, 32) // IKE header + SK payload header
	body := make([]byte, c.BodyLen(5))
	_ = c.Seal(aad, body, []byte("hello"), nil)
	pt, err := c.Open(aad, body)
	fmt.Println(len(body), string(pt), err)
	// Output: 30 hello <nil>
}

// Overlapping aad and body (a caller mistake) must not panic: crypto/cipher
// panics on such overlap unless the package guards against it.
func TestSKCipherOverlappingAAD(t *testing.T) {
	for _, s := range allSuites() {
		c := newSuiteCipher(t, s, 8)
		buf := make([]byte, 200)
		_, _ = c.Open(buf[:40], buf[:100])
		_, _ = c.Open(buf[50:90], buf[:100])
		n := c.BodyLen(10)
		_ = c.Seal(buf[:n], buf[:n], buf[5:15], nil)
	}
}
