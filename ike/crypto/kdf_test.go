package crypto

import (
	"bytes"
	"testing"
)

func TestSKEYSEED(t *testing.T) {
	p, _ := NewPRF(PRFHMACSHA2_256)
	ni, nr, gir := []byte("nonce-i"), []byte("nonce-r"), []byte("g^ir")
	if got, want := SKEYSEED(p, ni, nr, gir), p.Sum([]byte("nonce-inonce-r"), gir); !bytes.Equal(got, want) {
		t.Error("SKEYSEED != prf(Ni | Nr, g^ir)")
	}
	skd := []byte("old SK_d")
	if got, want := RekeySKEYSEED(p, skd, gir, ni, nr), p.Sum(skd, []byte("g^irnonce-inonce-r")); !bytes.Equal(got, want) {
		t.Error("RekeySKEYSEED != prf(SK_d, g^ir | Ni | Nr)")
	}
	if got, want := ResumeSKEYSEED(p, skd, ni, nr), p.Sum(skd, []byte("Resumptionnonce-inonce-r")); !bytes.Equal(got, want) {
		t.Error(`ResumeSKEYSEED != prf(SK_d, "Resumption" | Ni | Nr)`)
	}
}

func TestDeriveIKEKeys(t *testing.T) {
	for _, id := range []uint16{PRFHMACSHA1, PRFHMACSHA2_256, PRFHMACSHA2_384, PRFHMACSHA2_512} {
		p, _ := NewPRF(id)
		skeyseed := []byte("SKEYSEED")
		ni, nr := rep(0x11, 32), rep(0x22, 32)
		spii, spir := uint64(0x0102030405060708), uint64(0xa1a2a3a4a5a6a7a8)
		seed := append(append(append(append([]byte(nil), ni...), nr...),
			1, 2, 3, 4, 5, 6, 7, 8), 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8)
		for _, lens := range [][2]int{{32, 32}, {0, 36}, {64, 32}, {20, 16}} {
			integ, encr := lens[0], lens[1]
			k := DeriveIKEKeys(p, skeyseed, ni, nr, spii, spir, integ, encr)
			ps := p.Size()
			km := p.Plus(skeyseed, seed, 3*ps+2*integ+2*encr)
			want := [][]byte{km[:ps], km[ps : ps+integ], km[ps+integ : ps+2*integ],
				km[ps+2*integ : ps+2*integ+encr], km[ps+2*integ+encr : ps+2*integ+2*encr],
				km[ps+2*integ+2*encr : 2*ps+2*integ+2*encr], km[2*ps+2*integ+2*encr:]}
			got := [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("%s integ=%d encr=%d: key %d wrong", AlgorithmName(TransformPRF, id, 0), integ, encr, i)
				}
			}
			// Appending to one key must not overwrite the next.
			before := append([]byte(nil), k.SKai...)
			_ = append(k.SKd, 0xff, 0xff)
			if !bytes.Equal(k.SKai, before) {
				t.Fatal("keys share storage")
			}
		}
	}
	p, _ := NewPRF(PRFHMACSHA1)
	if k := DeriveIKEKeys(p, nil, nil, nil, 0, 0, -1, 16); k.SKd != nil {
		t.Error("negative length accepted")
	}
	if k := DeriveIKEKeys(p, nil, nil, nil, 0, 0, 3000, 16); k.SKd != nil {
		t.Error("oversized request accepted")
	}
}

func TestDeriveChildKeys(t *testing.T) {
	p, _ := NewPRF(PRFHMACSHA2_512)
	skd, gir, ni, nr := []byte("SK_d"), []byte("new g^ir"), []byte("Ni"), []byte("Nr")
	if got, want := DeriveChildKeys(p, skd, nil, ni, nr, 72), p.Plus(skd, []byte("NiNr"), 72); !bytes.Equal(got, want) {
		t.Error("KEYMAT without PFS != prf+(SK_d, Ni | Nr)")
	}
	if got, want := DeriveChildKeys(p, skd, gir, ni, nr, 200), p.Plus(skd, []byte("new g^irNiNr"), 200); !bytes.Equal(got, want) {
		t.Error("KEYMAT with PFS != prf+(SK_d, g^ir | Ni | Nr)")
	}
}
