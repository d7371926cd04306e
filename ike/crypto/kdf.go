package crypto

import "encoding/binary"

// SKEYSEED computes prf(Ni | Nr, g^ir) for a new IKE SA (RFC 7296 §2.14).
func SKEYSEED(prf *PRF, ni, nr, gir []byte) []byte {
	key := make([]byte, 0, len(ni)+len(nr))
	key = append(append(key, ni...), nr...)
	return prf.Sum(key, gir)
}

// RekeySKEYSEED computes prf(SK_d (old), g^ir (new) | Ni | Nr) for an IKE
// SA rekeyed with CREATE_CHILD_SA (RFC 7296 §2.18). gir is required: an
// IKE SA rekey always carries a key exchange.
func RekeySKEYSEED(prf *PRF, oldSKd, gir, ni, nr []byte) []byte {
	return prf.sum(oldSKd, gir, ni, nr)
}

// ResumeSKEYSEED computes prf(SK_d_old, "Resumption" | Ni | Nr) for an IKE
// SA resumed from a ticket (RFC 5723 §5.1); DeriveIKEKeys then follows
// with the new SPIs.
func ResumeSKEYSEED(prf *PRF, oldSKd, ni, nr []byte) []byte {
	return prf.sum(oldSKd, []byte("Resumption"), ni, nr)
}

// IKEKeys is the key material of an IKE SA (RFC 7296 §2.14).
type IKEKeys struct {
	SKd  []byte // derives Child SA keys and rekeyed IKE SAs
	SKai []byte // integrity, initiator to responder (empty for AEAD)
	SKar []byte // integrity, responder to initiator (empty for AEAD)
	SKei []byte // encryption (and AEAD salt), initiator to responder
	SKer []byte // encryption (and AEAD salt), responder to initiator
	SKpi []byte // for the initiator's AUTH payload
	SKpr []byte // for the responder's AUTH payload
}

// DeriveIKEKeys splits prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) into
// SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr, where SK_d, SK_pi
// and SK_pr are prf.Size() bytes, the integrity keys integKeyLen bytes
// (0 for AEAD) and the encryption keys encrKeyLen bytes (EncrKeyLen).
// The keys do not share storage with each other. If the total exceeded
// what prf+ can produce (impossible for the algorithms supported here) or
// a length is negative, every field is nil.
func DeriveIKEKeys(prf *PRF, skeyseed, ni, nr []byte, spii, spir uint64, integKeyLen, encrKeyLen int) IKEKeys {
	if integKeyLen < 0 || encrKeyLen < 0 {
		return IKEKeys{}
	}
	seed := make([]byte, 0, len(ni)+len(nr)+16)
	seed = append(append(seed, ni...), nr...)
	seed = binary.BigEndian.AppendUint64(seed, spii)
	seed = binary.BigEndian.AppendUint64(seed, spir)
	ps := prf.Size()
	km := prf.Plus(skeyseed, seed, 3*ps+2*integKeyLen+2*encrKeyLen)
	if km == nil {
		return IKEKeys{}
	}
	take := func(n int) []byte {
		b := km[:n:n]
		km = km[n:]
		return b
	}
	var k IKEKeys
	k.SKd = take(ps)
	k.SKai = take(integKeyLen)
	k.SKar = take(integKeyLen)
	k.SKei = take(encrKeyLen)
	k.SKer = take(encrKeyLen)
	k.SKpi = take(ps)
	k.SKpr = take(ps)
	return k
}

// DeriveChildKeys returns n bytes of KEYMAT = prf+(SK_d, g^ir (new) | Ni |
// Nr) for a Child SA (RFC 7296 §2.17); gir is nil without PFS. The caller
// splits it: for each direction, initiator to responder first, the
// encryption key then the integrity key. Returns nil if n is more than
// prf+ can produce or negative.
func DeriveChildKeys(prf *PRF, skd, gir, ni, nr []byte, n int) []byte {
	seed := make([]byte, 0, len(gir)+len(ni)+len(nr))
	seed = append(append(append(seed, gir...), ni...), nr...)
	return prf.Plus(skd, seed, n)
}
