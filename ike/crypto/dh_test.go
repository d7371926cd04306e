package crypto

import (
	"bytes"
	"math/big"
	"strings"
	"testing"
)

// RFC 7748 §6.1 X25519 Diffie-Hellman vectors (the exchange RFC 8031
// uses for group 31).
func TestX25519RFC7748(t *testing.T) {
	alicePriv := h(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	alicePub := h(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	bobPriv := h(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
	bobPub := h(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
	shared := h(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

	alice, err := newECDH(GroupCurve25519, alicePriv)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := newECDH(GroupCurve25519, bobPriv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(alice.PublicKey(), alicePub) || !bytes.Equal(bob.PublicKey(), bobPub) {
		t.Fatalf("public keys differ from RFC 7748 §6.1")
	}
	for _, tc := range []struct {
		k    KeyExchange
		peer []byte
	}{{alice, bobPub}, {bob, alicePub}} {
		got, err := tc.k.SharedSecret(tc.peer)
		if err != nil || !bytes.Equal(got, shared) {
			t.Fatalf("shared secret %x, %v; want %x", got, err, shared)
		}
	}
	// RFC 8031 §3.2: the most significant bit is masked, not rejected.
	hi := append([]byte(nil), bobPub...)
	hi[31] |= 0x80
	if got, err := alice.SharedSecret(hi); err != nil || !bytes.Equal(got, shared) {
		t.Fatalf("top bit not masked: %x %v", got, err)
	}
}

// Low-order points make X25519 output all zeros, which must be refused.
// The list is the points of order 1, 2 and 8, the non-canonical encodings
// p and p+1 of 0 and 1, and encodings with the (masked) top bit set.
func TestX25519LowOrder(t *testing.T) {
	k, err := NewKeyExchange(GroupCurve25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000", // 0
		"0100000000000000000000000000000000000000000000000000000000000000", // 1
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", // order 8
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1, order 2
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p = 0
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1 = 1
		"0000000000000000000000000000000000000000000000000000000000000080", // 0, top bit set
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880", // order 8, top bit set
	} {
		if _, err := k.SharedSecret(h(t, s)); err == nil {
			t.Errorf("peer %s accepted", s)
		}
	}
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := k.SharedSecret(make([]byte, n)); err == nil || !strings.Contains(err.Error(), "want 32") {
			t.Errorf("%d-byte peer: err = %v", n, err)
		}
	}
}

// RFC 5903 §8.1 and §8.2: ECP-256 and ECP-384 exchanges. The KE payload
// carries x | y; the shared secret is the x coordinate of g^ir.
func TestECPRFC5903(t *testing.T) {
	cases := []struct {
		group                          uint16
		i, gix, giy, r, grx, gry, girx string
	}{
		{GroupECP256,
			"C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
			"DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180",
			"5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
			"C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
			"D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63",
			"56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
			"D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE"},
		{GroupECP384,
			`099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655
			 E35B5380 41E649EE 3FAEF896 783AB194`,
			`667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3 1634FE72 B4C55EE6
			 DE3AC808 ACB4BDB4 C88732AE E95F41AA`,
			`9482ED1F C0EEB9CA FC498462 5CCFC23F 65032149 E0E144AD A0241815 35A0F38E
			 EB9FCFF3 C2C947DA E69B4C63 4573A81C`,
			`41CB0779 B4BDB85D 47846725 FBEC3C94 30FAB46C C8DC5060 855CC9BD A0AA2942
			 E0308312 916B8ED2 960E4BD5 5A7448FC`,
			`E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D 83CFA417 32BC509D
			 0D1AC43A 0336DEF9 6FDA41D0 774A3571`,
			`DCFBEC7A ACF31964 72169E83 8430367F 66EEBE3C 6E70C416 DD5F0C68 759DD1FF
			 F83FA401 42209DFF 5EAAD96D B9E6386C`,
			`11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4
			 D6031355 69B9E9D0 9CF5D4A2 70F59746`},
	}
	for _, tc := range cases {
		name := AlgorithmName(TransformKE, tc.group, 0)
		ki, err := newECDH(tc.group, h(t, tc.i))
		if err != nil {
			t.Fatal(err)
		}
		kr, err := newECDH(tc.group, h(t, tc.r))
		if err != nil {
			t.Fatal(err)
		}
		gi := append(h(t, tc.gix), h(t, tc.giy)...)
		gr := append(h(t, tc.grx), h(t, tc.gry)...)
		if !bytes.Equal(ki.PublicKey(), gi) || !bytes.Equal(kr.PublicKey(), gr) {
			t.Fatalf("%s: public values differ from RFC 5903", name)
		}
		if len(gi) != KEDataLen(tc.group) {
			t.Fatalf("%s: KEDataLen %d, vector %d", name, KEDataLen(tc.group), len(gi))
		}
		for _, side := range []struct {
			k    KeyExchange
			peer []byte
		}{{ki, gr}, {kr, gi}} {
			got, err := side.k.SharedSecret(side.peer)
			if err != nil || !bytes.Equal(got, h(t, tc.girx)) {
				t.Fatalf("%s: shared secret %x, %v", name, got, err)
			}
		}

		// Rejections: off the curve, the all-zero "infinity", x or y not
		// reduced, wrong lengths and the SEC 1 0x04 prefix.
		offCurve := append([]byte(nil), gr...)
		offCurve[len(offCurve)-1] ^= 1
		allFF := bytes.Repeat([]byte{0xff}, len(gr))
		for what, peer := range map[string][]byte{
			"off curve":      offCurve,
			"zero":           make([]byte, len(gr)),
			"all ff":         allFF,
			"with 04":        append([]byte{4}, gr...),
			"short":          gr[:len(gr)-1],
			"x only":         gr[:len(gr)/2],
			"empty":          nil,
			"compressed-ish": append([]byte{2}, gr[:len(gr)/2]...),
		} {
			if _, err := ki.SharedSecret(peer); err == nil {
				t.Errorf("%s: %s peer accepted", name, what)
			}
		}
	}
}

// modpFromPi computes an RFC 3526 prime from its definition,
// p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * pi) + k), with pi from
// Machin's formula in fixed point.
func modpFromPi(n uint, k int64) *big.Int {
	const guard = 64
	prec := n + guard
	atanInv := func(x int64) *big.Int {
		one := new(big.Int).Lsh(big.NewInt(1), prec)
		xx := big.NewInt(x * x)
		term := new(big.Int).Quo(one, big.NewInt(x))
		sum := new(big.Int).Set(term)
		for i := int64(1); term.Sign() != 0; i++ {
			term.Quo(term, xx)
			t := new(big.Int).Quo(term, big.NewInt(2*i+1))
			if i%2 == 1 {
				sum.Sub(sum, t)
			} else {
				sum.Add(sum, t)
			}
		}
		return sum
	}
	pi := new(big.Int).Mul(big.NewInt(16), atanInv(5))
	pi.Sub(pi, new(big.Int).Mul(big.NewInt(4), atanInv(239)))
	f := new(big.Int).Rsh(pi, prec-(n-130))
	f.Add(f, big.NewInt(k))
	f.Lsh(f, 64)
	p := new(big.Int).Lsh(big.NewInt(1), n)
	p.Sub(p, new(big.Int).Lsh(big.NewInt(1), n-64))
	p.Sub(p, big.NewInt(1))
	return p.Add(p, f)
}

// The MODP primes match their RFC 3526 definitions (§3, §4, §5) and are
// safe primes.
func TestMODPPrimes(t *testing.T) {
	for _, tc := range []struct {
		group uint16
		bits  uint
		k     int64
	}{{GroupMODP2048, 2048, 124476}, {GroupMODP3072, 3072, 1690314}, {GroupMODP4096, 4096, 240904}} {
		p := modpPrime(tc.group)
		if p.Cmp(modpFromPi(tc.bits, tc.k)) != 0 {
			t.Errorf("MODP_%d prime differs from RFC 3526", tc.bits)
		}
		if p.BitLen() != int(tc.bits) || KEDataLen(tc.group) != int(tc.bits/8) {
			t.Errorf("MODP_%d: %d bits", tc.bits, p.BitLen())
		}
		if testing.Short() {
			continue
		}
		q := new(big.Int).Rsh(p, 1)
		if !p.ProbablyPrime(0) || !q.ProbablyPrime(0) { // Baillie-PSW
			t.Errorf("MODP_%d: not a safe prime", tc.bits)
		}
	}
}

func TestMODPExchange(t *testing.T) {
	for _, g := range []uint16{GroupMODP2048, GroupMODP3072, GroupMODP4096} {
		name := AlgorithmName(TransformKE, g, 0)
		a, err := NewKeyExchange(g, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewKeyExchange(g, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.Group() != g || len(a.PublicKey()) != KEDataLen(g) {
			t.Fatalf("%s: group %d, public %d bytes", name, a.Group(), len(a.PublicKey()))
		}
		sa, err := a.SharedSecret(b.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		sb, err := b.SharedSecret(a.PublicKey())
		if err != nil || !bytes.Equal(sa, sb) || len(sa) != KEDataLen(g) {
			t.Fatalf("%s: secrets differ or wrong length (%d): %v", name, len(sa), err)
		}
		// g = 2 itself, left-padded, is a valid peer value: 2^x is our
		// public value.
		two := make([]byte, KEDataLen(g))
		two[len(two)-1] = 2
		if s, err := a.SharedSecret(two); err != nil || !bytes.Equal(s, a.PublicKey()) {
			t.Fatalf("%s: peer 2: %v", name, err)
		}

		p := modpPrime(g)
		enc := func(x *big.Int) []byte { return x.FillBytes(make([]byte, KEDataLen(g))) }
		pm1 := new(big.Int).Sub(p, big.NewInt(1))
		for what, peer := range map[string][]byte{
			"0":      enc(big.NewInt(0)),
			"1":      enc(big.NewInt(1)),
			"p-1":    enc(pm1),
			"p":      enc(p),
			"all ff": bytes.Repeat([]byte{0xff}, KEDataLen(g)),
			"short":  a.PublicKey()[1:],
			"long":   append([]byte{0}, b.PublicKey()...),
			"empty":  nil,
		} {
			if _, err := a.SharedSecret(peer); err == nil {
				t.Errorf("%s: peer %s accepted", name, what)
			}
		}
	}
}

// A secret whose top bytes are zero keeps its full length: RFC 7296 §2.14
// wants g^ir as len(p) bytes.
func TestMODPSharedSecretPadding(t *testing.T) {
	p := modpPrime(GroupMODP2048)
	// With x = 2 and y = 2^k the secret is 2^(2k) mod p; k = 1000 gives a
	// 2001-bit value, 6 leading zero bytes.
	k, err := newMODP(GroupMODP2048, []byte{2})
	if err != nil {
		t.Fatal(err)
	}
	y := new(big.Int).Lsh(big.NewInt(1), 1000)
	s, err := k.SharedSecret(y.FillBytes(make([]byte, 256)))
	if err != nil {
		t.Fatal(err)
	}
	want := new(big.Int).Exp(y, big.NewInt(2), p).FillBytes(make([]byte, 256))
	if !bytes.Equal(s, want) || s[0] != 0 {
		t.Fatalf("secret not left-padded: %x", s[:8])
	}
}

func TestKeyExchangeGeneral(t *testing.T) {
	for _, g := range []uint16{GroupCurve25519, GroupECP256, GroupECP384, GroupMODP2048, GroupMODP3072, GroupMODP4096} {
		if !GroupSupported(g) {
			t.Errorf("group %d not supported", g)
		}
		// The random source is honoured: the same bytes give the same key.
		src := bytes.Repeat(seq(1, 200), 3)
		a, err := NewKeyExchange(g, bytes.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := NewKeyExchange(g, bytes.NewReader(src))
		if !bytes.Equal(a.PublicKey(), b.PublicKey()) || a.Group() != g {
			t.Errorf("group %d: same random source, different keys", g)
		}
		// PublicKey returns a copy.
		pk := a.PublicKey()
		pk[0] ^= 0xff
		if bytes.Equal(pk, a.PublicKey()) {
			t.Errorf("group %d: PublicKey exposes internal state", g)
		}
		// A failing random source is an error, not a panic or weak key.
		if _, err := NewKeyExchange(g, bytes.NewReader([]byte{1})); err == nil {
			t.Errorf("group %d: short random source accepted", g)
		}
		c, _ := NewKeyExchange(g, nil)
		s1, err1 := a.SharedSecret(c.PublicKey())
		s2, err2 := c.SharedSecret(a.PublicKey())
		if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) {
			t.Errorf("group %d: exchange failed: %v %v", g, err1, err2)
		}
	}
	for _, g := range []uint16{GroupNone, 1, 2, 5, 21, 32, 99} {
		if GroupSupported(g) || KEDataLen(g) != 0 {
			t.Errorf("group %d reported supported", g)
		}
		if _, err := NewKeyExchange(g, nil); err == nil {
			t.Errorf("NewKeyExchange(%d) succeeded", g)
		}
	}
	// An ECP scalar of zero or >= n is redrawn, not used.
	zeros := make([]byte, 48*20)
	if _, err := NewKeyExchange(GroupECP384, bytes.NewReader(zeros)); err == nil {
		t.Error("all-zero random source gave an ECP-384 key")
	}
	if _, err := newECDH(GroupMODP2048, make([]byte, 32)); err == nil {
		t.Error("newECDH accepted a MODP group")
	}
	if _, err := newMODP(GroupMODP2048, []byte{1}); err == nil {
		t.Error("newMODP accepted exponent 1")
	}
}
