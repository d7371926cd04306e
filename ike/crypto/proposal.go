package crypto

import (
	"fmt"
	"strconv"
	"strings"
)

// Algorithm is one transform of a proposal.
type Algorithm struct {
	// Type is the transform type: 1 ENCR, 2 PRF, 3 INTEG, 4 KE, 5 ESN,
	// 6..12 ADDKE1..7 (see TransformEncr etc.).
	Type uint8
	// ID is the IANA transform ID.
	ID uint16
	// KeyBits is the Key Length attribute, for ENCR only; 0 means none.
	KeyBits int
}

// Proposal is an ordered list of transforms; several of one type mean
// alternatives, the first preferred (e.g. "aes256-aes128-sha256-modp2048").
type Proposal struct {
	Algorithms []Algorithm
}

// typeOrder is the order in which ParseProposal and String group types.
func typeOrder() []uint8 {
	return []uint8{TransformEncr, TransformInteg, TransformPRF, TransformKE,
		6, 7, 8, 9, 10, 11, TransformAddKE7, TransformESN}
}

// ParseProposal parses a proposal in strongSwan's syntax: algorithm
// keywords joined by "-", case-insensitive.
//
//	ENCR   aes128 aes192 aes256 (aes = aes128; AES-CBC)
//	       aes{128,192,256}gcm{8,12,16} (also gcm64, gcm96, gcm128)
//	       chacha20poly1305
//	INTEG  sha1 (sha) sha256 sha384 sha512 (also sha2_256 ...)
//	PRF    prfsha1 prfsha256 prfsha384 prfsha512
//	KE     modp2048 modp3072 modp4096 ecp256 ecp384 x25519 (curve25519)
//	ADDKE  ke1_<KE> .. ke7_<KE> (RFC 9370), where <KE> may also be
//	       mlkem768 or mlkem1024 (FIPS 203), or none (the additional
//	       exchange is optional: "x25519-ke1_mlkem768-ke1_none")
//	ESN    esn noesn
//
// IKE proposals (esp false) need an ENCR, a PRF and a KE. As in
// strongSwan, a missing PRF is derived from the integrity algorithms
// (sha256 -> prfsha256); when every ENCR is AEAD the integrity keywords
// only serve that derivation, so "aes256gcm16-sha256-x25519" means
// "aes256gcm16-prfsha256-x25519". ESP proposals (esp true) take no PRF,
// the KE is optional (PFS) and ESN defaults to noesn. Non-AEAD ciphers
// need an integrity algorithm; AEAD and non-AEAD ciphers cannot be mixed.
// Duplicates are dropped. The result lists transforms grouped by type
// (ENCR, INTEG, PRF, KE, ADDKE, ESN), each group in the order given.
// Errors name the proposal and the offending token.
func ParseProposal(s string, esp bool) (Proposal, error) {
	errf := func(format string, args ...any) (Proposal, error) {
		return Proposal{}, fmt.Errorf("proposal %q: "+format, append([]any{s}, args...)...)
	}
	if strings.TrimSpace(s) == "" {
		return errf("empty proposal")
	}
	type item struct {
		alg Algorithm
		tok string
	}
	byType := map[uint8][]item{}
	add := func(it item) {
		for _, o := range byType[it.alg.Type] {
			if o.alg == it.alg {
				return
			}
		}
		byType[it.alg.Type] = append(byType[it.alg.Type], it)
	}
	for _, tok := range strings.Split(s, "-") {
		k := strings.ToLower(strings.TrimSpace(tok))
		if k == "" {
			return errf("empty algorithm name")
		}
		a, ok := lookupKeyword(k)
		if !ok {
			return errf("unknown algorithm %q", tok)
		}
		add(item{a, tok})
	}

	encrs := byType[TransformEncr]
	if len(encrs) == 0 {
		return errf("no encryption algorithm")
	}
	var aead, plain *item
	for i := range encrs {
		if IsAEAD(encrs[i].alg.ID) {
			aead = &encrs[i]
		} else {
			plain = &encrs[i]
		}
	}
	if aead != nil && plain != nil {
		return errf("AEAD cipher %q and non-AEAD cipher %q cannot be mixed in one proposal", aead.tok, plain.tok)
	}
	integs, prfs := byType[TransformInteg], byType[TransformPRF]
	if aead == nil && len(integs) == 0 {
		return errf("no integrity algorithm for cipher %q", plain.tok)
	}

	if esp {
		if len(prfs) > 0 {
			return errf("PRF %q is not allowed in an ESP proposal", prfs[0].tok)
		}
		if len(byType[TransformESN]) == 0 {
			byType[TransformESN] = []item{{alg: Algorithm{Type: TransformESN, ID: ESNNo}}}
		}
	} else {
		if esns := byType[TransformESN]; len(esns) > 0 {
			return errf("%q is not allowed in an IKE proposal", esns[0].tok)
		}
		if len(prfs) == 0 {
			// strongSwan derives the PRF from the integrity algorithms.
			for _, it := range integs {
				add(item{Algorithm{Type: TransformPRF, ID: prfForInteg(it.alg.ID)}, it.tok})
			}
			if aead != nil {
				// The integrity keywords only named the PRF.
				integs = nil
				delete(byType, TransformInteg)
			}
		}
		if len(byType[TransformPRF]) == 0 {
			return errf("no PRF (add one, e.g. prfsha256)")
		}
		if len(byType[TransformKE]) == 0 {
			return errf("no key exchange method (add one, e.g. x25519)")
		}
	}
	if aead != nil && len(integs) > 0 {
		return errf("integrity algorithm %q is not allowed with AEAD cipher %q", integs[0].tok, aead.tok)
	}
	for _, it := range byType[TransformKE] {
		if IsKEM(it.alg.ID) {
			return errf("%q: ML-KEM is supported only as an additional key exchange after a Diffie-Hellman group (e.g. x25519-ke1_%s)", it.tok, strings.ToLower(it.tok))
		}
	}
	for t := TransformAddKE1; t <= TransformAddKE7; t++ {
		for _, it := range byType[t] {
			if it.alg.ID == GroupMLKEM512 {
				return errf("%q: ML-KEM-512 is not supported (Go's crypto/mlkem has ML-KEM-768 and ML-KEM-1024)", it.tok)
			}
		}
	}
	if len(byType[TransformKE]) == 0 {
		for t := TransformAddKE1; t <= TransformAddKE7; t++ {
			if ks := byType[t]; len(ks) > 0 {
				return errf("additional key exchange %q needs a key exchange method too", ks[0].tok)
			}
		}
	}

	var p Proposal
	for _, t := range typeOrder() {
		for _, it := range byType[t] {
			p.Algorithms = append(p.Algorithms, it.alg)
		}
	}
	return p, nil
}

// prfForInteg maps an integrity algorithm to the PRF of the same hash.
func prfForInteg(id uint16) uint16 {
	switch id {
	case IntegHMACSHA1_96:
		return PRFHMACSHA1
	case IntegHMACSHA2_256_128:
		return PRFHMACSHA2_256
	case IntegHMACSHA2_384_192:
		return PRFHMACSHA2_384
	}
	return PRFHMACSHA2_512
}

// lookupKeyword maps one lower-case strongSwan keyword to its transform.
func lookupKeyword(k string) (Algorithm, bool) {
	encr := func(id uint16, bits int) (Algorithm, bool) {
		return Algorithm{Type: TransformEncr, ID: id, KeyBits: bits}, true
	}
	integ := func(id uint16) (Algorithm, bool) { return Algorithm{Type: TransformInteg, ID: id}, true }
	prf := func(id uint16) (Algorithm, bool) { return Algorithm{Type: TransformPRF, ID: id}, true }
	esn := func(id uint16) (Algorithm, bool) { return Algorithm{Type: TransformESN, ID: id}, true }
	switch k {
	case "aes", "aes128":
		return encr(EncrAESCBC, 128)
	case "aes192":
		return encr(EncrAESCBC, 192)
	case "aes256":
		return encr(EncrAESCBC, 256)
	case "chacha20poly1305":
		return encr(EncrChaCha20Poly1305, 0)
	case "sha", "sha1":
		return integ(IntegHMACSHA1_96)
	case "sha256", "sha2_256":
		return integ(IntegHMACSHA2_256_128)
	case "sha384", "sha2_384":
		return integ(IntegHMACSHA2_384_192)
	case "sha512", "sha2_512":
		return integ(IntegHMACSHA2_512_256)
	case "prfsha1":
		return prf(PRFHMACSHA1)
	case "prfsha256":
		return prf(PRFHMACSHA2_256)
	case "prfsha384":
		return prf(PRFHMACSHA2_384)
	case "prfsha512":
		return prf(PRFHMACSHA2_512)
	case "esn":
		return esn(ESNYes)
	case "noesn":
		return esn(ESNNo)
	}
	if g, ok := keKeyword(k); ok {
		return Algorithm{Type: TransformKE, ID: g}, true
	}
	// ke1_x25519 .. ke7_x25519: RFC 9370 additional key exchanges.
	if len(k) > 4 && k[:2] == "ke" && k[2] >= '1' && k[2] <= '7' && k[3] == '_' {
		if g, ok := keKeyword(k[4:]); ok {
			return Algorithm{Type: TransformAddKE1 + k[2] - '1', ID: g}, true
		}
		if k[4:] == "none" {
			return Algorithm{Type: TransformAddKE1 + k[2] - '1', ID: GroupNone}, true
		}
	}
	// aes128gcm16 and friends.
	if len(k) > 9 && k[:3] == "aes" && k[6:9] == "gcm" {
		bits, err := strconv.Atoi(k[3:6])
		if err != nil || (bits != 128 && bits != 192 && bits != 256) {
			return Algorithm{}, false
		}
		switch k[9:] {
		case "8", "64":
			return encr(EncrAESGCM8, bits)
		case "12", "96":
			return encr(EncrAESGCM12, bits)
		case "16", "128":
			return encr(EncrAESGCM16, bits)
		}
	}
	return Algorithm{}, false
}

// keKeyword maps a key exchange keyword to its group.
func keKeyword(k string) (uint16, bool) {
	switch k {
	case "modp2048":
		return GroupMODP2048, true
	case "modp3072":
		return GroupMODP3072, true
	case "modp4096":
		return GroupMODP4096, true
	case "ecp256":
		return GroupECP256, true
	case "ecp384":
		return GroupECP384, true
	case "x25519", "curve25519":
		return GroupCurve25519, true
	case "mlkem512":
		return GroupMLKEM512, true
	case "mlkem768":
		return GroupMLKEM768, true
	case "mlkem1024":
		return GroupMLKEM1024, true
	}
	return 0, false
}

// String spells the proposal canonically in strongSwan syntax, grouped by
// type as ParseProposal orders it, e.g. "aes256gcm16-prfsha256-x25519" or
// "aes256-sha256-prfsha256-modp2048". A lone noesn (the ESP default) is
// left out, so ParseProposal(p.String(), esp) gives p back for any parsed
// proposal. Transforms without a keyword print as "encr99", "prf99" etc.,
// which do not parse.
func (p Proposal) String() string {
	var esns int
	for _, a := range p.Algorithms {
		if a.Type == TransformESN {
			esns++
		}
	}
	var parts []string
	for _, t := range typeOrder() {
		for _, a := range p.Algorithms {
			if a.Type != t || (t == TransformESN && a.ID == ESNNo && esns == 1) {
				continue
			}
			parts = append(parts, keyword(a))
		}
	}
	// Anything of a type outside typeOrder, so nothing is silently lost.
	for _, a := range p.Algorithms {
		if a.Type == 0 || a.Type > TransformAddKE7 {
			parts = append(parts, keyword(a))
		}
	}
	return strings.Join(parts, "-")
}

// keyword is the canonical strongSwan keyword of one transform.
func keyword(a Algorithm) string {
	id := strconv.Itoa(int(a.ID))
	switch {
	case a.Type == TransformEncr:
		switch a.ID {
		case EncrAESCBC:
			return "aes" + strconv.Itoa(a.KeyBits)
		case EncrAESGCM8:
			return "aes" + strconv.Itoa(a.KeyBits) + "gcm8"
		case EncrAESGCM12:
			return "aes" + strconv.Itoa(a.KeyBits) + "gcm12"
		case EncrAESGCM16:
			return "aes" + strconv.Itoa(a.KeyBits) + "gcm16"
		case EncrChaCha20Poly1305:
			return "chacha20poly1305"
		}
		return "encr" + id
	case a.Type == TransformInteg:
		switch a.ID {
		case IntegHMACSHA1_96:
			return "sha1"
		case IntegHMACSHA2_256_128:
			return "sha256"
		case IntegHMACSHA2_384_192:
			return "sha384"
		case IntegHMACSHA2_512_256:
			return "sha512"
		}
		return "integ" + id
	case a.Type == TransformPRF:
		switch a.ID {
		case PRFHMACSHA1:
			return "prfsha1"
		case PRFHMACSHA2_256:
			return "prfsha256"
		case PRFHMACSHA2_384:
			return "prfsha384"
		case PRFHMACSHA2_512:
			return "prfsha512"
		}
		return "prf" + id
	case a.Type == TransformKE:
		return keKeywordName(a.ID)
	case a.Type >= TransformAddKE1 && a.Type <= TransformAddKE7:
		name := keKeywordName(a.ID)
		if a.ID == GroupNone {
			name = "none"
		}
		return "ke" + strconv.Itoa(int(a.Type-TransformAddKE1+1)) + "_" + name
	case a.Type == TransformESN:
		switch a.ID {
		case ESNYes:
			return "esn"
		case ESNNo:
			return "noesn"
		}
		return "esn" + id
	}
	return "transform" + strconv.Itoa(int(a.Type)) + "_" + id
}

// keKeywordName is the canonical keyword of a key exchange method.
func keKeywordName(g uint16) string {
	switch g {
	case GroupMODP2048:
		return "modp2048"
	case GroupMODP3072:
		return "modp3072"
	case GroupMODP4096:
		return "modp4096"
	case GroupECP256:
		return "ecp256"
	case GroupECP384:
		return "ecp384"
	case GroupCurve25519:
		return "x25519"
	case GroupMLKEM512:
		return "mlkem512"
	case GroupMLKEM768:
		return "mlkem768"
	case GroupMLKEM1024:
		return "mlkem1024"
	}
	return "ke" + strconv.Itoa(int(g))
}
