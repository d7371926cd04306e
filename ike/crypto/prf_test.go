package crypto

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// RFC 4231 §4.2-§4.8, test cases 1-7 (RFC 4868 §2.7.1 reuses them as its
// PRF-1..PRF-7 vectors for PRF_HMAC_SHA2_256/384/512). Test case 5 is only
// published truncated to 128 bits.
func TestPRFRFC4231(t *testing.T) {
	cases := []struct {
		name                   string
		key, data              []byte
		sha256, sha384, sha512 string
		truncated              bool
	}{
		{"TC1", rep(0x0b, 20), []byte("Hi There"),
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			"afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
			"87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854", false},
		{"TC2", []byte("Jefe"), []byte("what do ya want for nothing?"),
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			"af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737", false},
		{"TC3", rep(0xaa, 20), rep(0xdd, 50),
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
			"88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
			"fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb", false},
		{"TC4", seq(1, 25), rep(0xcd, 50),
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
			"3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
			"b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd", false},
		{"TC5", rep(0x0c, 20), []byte("Test With Truncation"),
			"a3b6167473100ee06e0c796c2955552b",
			"3abf34c3503b2a23a46efc619baef897",
			"415fad6271580a531d4179bc891d87a6", true},
		{"TC6", rep(0xaa, 131), []byte("Test Using Larger Than Block-Size Key - Hash Key First"),
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			"4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
			"80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598", false},
		{"TC7", rep(0xaa, 131), []byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
			"6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
			"e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58", false},
	}
	for _, tc := range cases {
		for _, alg := range []struct {
			id   uint16
			want string
		}{{PRFHMACSHA2_256, tc.sha256}, {PRFHMACSHA2_384, tc.sha384}, {PRFHMACSHA2_512, tc.sha512}} {
			p, err := NewPRF(alg.id)
			if err != nil {
				t.Fatal(err)
			}
			got := p.Sum(tc.key, tc.data)
			if len(got) != p.Size() {
				t.Errorf("%s %s: output %d bytes, want %d", tc.name, AlgorithmName(TransformPRF, alg.id, 0), len(got), p.Size())
			}
			if tc.truncated {
				got = got[:16]
			}
			if hex.EncodeToString(got) != alg.want {
				t.Errorf("%s %s:\n got %x\nwant %s", tc.name, AlgorithmName(TransformPRF, alg.id, 0), got, alg.want)
			}
		}
	}
}

// RFC 2202 §3, HMAC-SHA-1 test cases 1 and 2, for PRF_HMAC_SHA1.
func TestPRFSHA1RFC2202(t *testing.T) {
	p, err := NewPRF(PRFHMACSHA1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Size() != 20 || p.ID() != PRFHMACSHA1 {
		t.Fatalf("Size %d ID %d", p.Size(), p.ID())
	}
	for _, tc := range []struct {
		key, data []byte
		want      string
	}{
		{rep(0x0b, 20), []byte("Hi There"), "b617318655057264e28bc0b6fb378c8ef146be00"},
		{[]byte("Jefe"), []byte("what do ya want for nothing?"), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
	} {
		if got := hex.EncodeToString(p.Sum(tc.key, tc.data)); got != tc.want {
			t.Errorf("got %s want %s", got, tc.want)
		}
	}
}

func TestNewPRFUnsupported(t *testing.T) {
	for _, id := range []uint16{0, 1, 3, 4, 8, 99} {
		if _, err := NewPRF(id); err == nil {
			t.Errorf("NewPRF(%d) succeeded", id)
		}
	}
}

// prf+ (RFC 7296 §2.13) checked against a hand computation:
// T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n).
func TestPRFPlus(t *testing.T) {
	for _, id := range []uint16{PRFHMACSHA1, PRFHMACSHA2_256, PRFHMACSHA2_384, PRFHMACSHA2_512} {
		p, _ := NewPRF(id)
		key, seed := []byte("prf+ key"), []byte("some seed bytes")
		var stream, tPrev []byte
		for i := 1; i <= 255; i++ {
			in := append(append(append([]byte(nil), tPrev...), seed...), byte(i))
			tPrev = p.Sum(key, in)
			stream = append(stream, tPrev...)
		}
		for _, n := range []int{0, 1, p.Size() - 1, p.Size(), p.Size() + 1, 3*p.Size() + 7, 255 * p.Size()} {
			got := p.Plus(key, seed, n)
			if len(got) != n || !bytes.Equal(got, stream[:n]) {
				t.Errorf("%s Plus(n=%d) differs from the hand computation", AlgorithmName(TransformPRF, id, 0), n)
			}
		}
		if got := p.Plus(key, seed, 255*p.Size()+1); got != nil {
			t.Errorf("Plus beyond 255 blocks returned %d bytes, want nil", len(got))
		}
		if got := p.Plus(key, seed, -1); got != nil {
			t.Errorf("Plus(-1) returned %d bytes, want nil", len(got))
		}
	}
}
