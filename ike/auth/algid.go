package auth

import (
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
)

// Object identifiers of the signature algorithms we emit or accept
// (RFC 3279, RFC 4055, RFC 5758, RFC 8410).
var (
	oidSHA1WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSASSAPSS     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidECDSAWithSHA1 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	oidECDSAWithSHA2 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA3 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA5 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519       = asn1.ObjectIdentifier{1, 3, 101, 112}

	oidHashSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidHashSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidHashSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidHashSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// ErrUnsupportedAlgorithm is wrapped by errors about signature algorithms
// this package does not implement or refuses by policy.
var ErrUnsupportedAlgorithm = errors.New("auth: unsupported signature algorithm")

// scheme is a signature scheme independent of its hash.
type scheme int

const (
	schemeRSAPKCS1 scheme = iota + 1
	schemeRSAPSS
	schemeECDSA
	schemeEd25519
)

// sigAlg is one concrete signature algorithm as named by an
// AlgorithmIdentifier of RFC 7427 method 14.
type sigAlg struct {
	scheme  scheme
	hash    crypto.Hash // 0 for Ed25519
	saltLen int         // RSASSA-PSS only
}

// pssParams is RSASSA-PSS-params of RFC 4055 §3.1. Trailer field and
// defaults are handled by hand so that both DER (defaults omitted) and the
// RFC 7427 §A.4 examples (defaults spelled out) parse.
type pssParams struct {
	Hash         pkix.AlgorithmIdentifier `asn1:"explicit,tag:0,optional"`
	MGF          pkix.AlgorithmIdentifier `asn1:"explicit,tag:1,optional"`
	SaltLength   int                      `asn1:"explicit,tag:2,optional,default:20"`
	TrailerField int                      `asn1:"explicit,tag:3,optional,default:1"`
}

var hashOIDs = []struct {
	h   crypto.Hash
	oid asn1.ObjectIdentifier
}{
	{crypto.SHA1, oidHashSHA1},
	{crypto.SHA256, oidHashSHA256},
	{crypto.SHA384, oidHashSHA384},
	{crypto.SHA512, oidHashSHA512},
}

// sigOIDs lists the OIDs that name scheme and hash at once.
var sigOIDs = []struct {
	oid asn1.ObjectIdentifier
	alg sigAlg
}{
	{oidSHA1WithRSA, sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA1}},
	{oidSHA256WithRSA, sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA256}},
	{oidSHA384WithRSA, sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA384}},
	{oidSHA512WithRSA, sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA512}},
	{oidECDSAWithSHA1, sigAlg{scheme: schemeECDSA, hash: crypto.SHA1}},
	{oidECDSAWithSHA2, sigAlg{scheme: schemeECDSA, hash: crypto.SHA256}},
	{oidECDSAWithSHA3, sigAlg{scheme: schemeECDSA, hash: crypto.SHA384}},
	{oidECDSAWithSHA5, sigAlg{scheme: schemeECDSA, hash: crypto.SHA512}},
	{oidEd25519, sigAlg{scheme: schemeEd25519}},
}

func hashOID(h crypto.Hash) (asn1.ObjectIdentifier, bool) {
	for _, e := range hashOIDs {
		if e.h == h {
			return e.oid, true
		}
	}
	return nil, false
}

func hashFromOID(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	for _, e := range hashOIDs {
		if e.oid.Equal(oid) {
			return e.h, true
		}
	}
	return 0, false
}

// marshal returns the DER AlgorithmIdentifier for a. RSA PKCS#1 carries
// NULL parameters ("preferredPresent"), ECDSA and Ed25519 none, as in
// RFC 7427 Appendix A.
func (a sigAlg) marshal() ([]byte, error) {
	if a.scheme == schemeRSAPSS {
		return marshalPSS(a.hash, a.saltLen)
	}
	for _, e := range sigOIDs {
		if e.alg.scheme != a.scheme || e.alg.hash != a.hash {
			continue
		}
		ai := pkix.AlgorithmIdentifier{Algorithm: e.oid}
		if a.scheme == schemeRSAPKCS1 {
			ai.Parameters = asn1.NullRawValue
		}
		return asn1.Marshal(ai)
	}
	return nil, fmt.Errorf("%w: scheme %d with hash %v", ErrUnsupportedAlgorithm, a.scheme, a.hash)
}

// marshalPSS encodes id-RSASSA-PSS with hash h for both the message and
// MGF1, the given salt length and the default trailer field (omitted, as
// DER requires for DEFAULT values).
func marshalPSS(h crypto.Hash, saltLen int) ([]byte, error) {
	oid, ok := hashOID(h)
	if !ok {
		return nil, fmt.Errorf("%w: RSASSA-PSS with hash %v", ErrUnsupportedAlgorithm, h)
	}
	hashAI := pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue}
	hashDER, err := asn1.Marshal(hashAI)
	if err != nil {
		return nil, err
	}
	p := pssParams{
		Hash:         hashAI,
		MGF:          pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: hashDER}},
		SaltLength:   saltLen,
		TrailerField: 1,
	}
	pDER, err := asn1.Marshal(p)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oidRSASSAPSS, Parameters: asn1.RawValue{FullBytes: pDER}})
}

// paramsAbsentOrNull reports whether AlgorithmIdentifier parameters are
// missing or an ASN.1 NULL; both encodings occur in the wild.
func paramsAbsentOrNull(p asn1.RawValue) bool {
	if len(p.FullBytes) == 0 {
		return true
	}
	return p.Class == asn1.ClassUniversal && p.Tag == asn1.TagNull && len(p.Bytes) == 0
}

// parseAlgorithmIdentifier decodes the DER AlgorithmIdentifier of a method
// 14 AUTH payload into a supported algorithm.
func parseAlgorithmIdentifier(der []byte) (sigAlg, error) {
	var ai pkix.AlgorithmIdentifier
	rest, err := asn1.Unmarshal(der, &ai)
	if err != nil {
		return sigAlg{}, fmt.Errorf("auth: malformed AlgorithmIdentifier: %v", err)
	}
	if len(rest) != 0 {
		return sigAlg{}, fmt.Errorf("auth: %d trailing octets after AlgorithmIdentifier", len(rest))
	}
	if ai.Algorithm.Equal(oidRSASSAPSS) {
		return parsePSS(ai.Parameters)
	}
	for _, e := range sigOIDs {
		if !e.oid.Equal(ai.Algorithm) {
			continue
		}
		// RFC 8410 §3: Ed25519 parameters MUST be absent.
		if e.alg.scheme == schemeEd25519 && len(ai.Parameters.FullBytes) != 0 {
			return sigAlg{}, fmt.Errorf("auth: Ed25519 AlgorithmIdentifier has parameters")
		}
		if !paramsAbsentOrNull(ai.Parameters) {
			return sigAlg{}, fmt.Errorf("auth: unexpected parameters for signature algorithm OID %s", ai.Algorithm)
		}
		return e.alg, nil
	}
	return sigAlg{}, fmt.Errorf("%w OID %s", ErrUnsupportedAlgorithm, ai.Algorithm)
}

// parsePSS decodes RSASSA-PSS-params. Only MGF1 with the message hash and
// trailer field 1 are supported, which is what crypto/rsa implements and
// what every IKE implementation sends.
func parsePSS(raw asn1.RawValue) (sigAlg, error) {
	if len(raw.FullBytes) == 0 {
		return sigAlg{}, fmt.Errorf("auth: RSASSA-PSS AlgorithmIdentifier without parameters")
	}
	var p pssParams
	rest, err := asn1.Unmarshal(raw.FullBytes, &p)
	if err != nil {
		return sigAlg{}, fmt.Errorf("auth: malformed RSASSA-PSS parameters: %v", err)
	}
	if len(rest) != 0 {
		return sigAlg{}, fmt.Errorf("auth: trailing octets after RSASSA-PSS parameters")
	}
	h := crypto.SHA1 // RFC 4055 default
	if len(p.Hash.Algorithm) != 0 {
		var ok bool
		if h, ok = hashFromOID(p.Hash.Algorithm); !ok {
			return sigAlg{}, fmt.Errorf("%w: RSASSA-PSS hash OID %s", ErrUnsupportedAlgorithm, p.Hash.Algorithm)
		}
		if !paramsAbsentOrNull(p.Hash.Parameters) {
			return sigAlg{}, fmt.Errorf("auth: unexpected parameters for RSASSA-PSS hash")
		}
	}
	mgfHash := crypto.SHA1 // default mgf1SHA1
	if len(p.MGF.Algorithm) != 0 {
		if !p.MGF.Algorithm.Equal(oidMGF1) {
			return sigAlg{}, fmt.Errorf("%w: RSASSA-PSS mask generation OID %s", ErrUnsupportedAlgorithm, p.MGF.Algorithm)
		}
		var mh pkix.AlgorithmIdentifier
		rest, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &mh)
		if err != nil || len(rest) != 0 {
			return sigAlg{}, fmt.Errorf("auth: malformed RSASSA-PSS MGF1 parameters")
		}
		var ok bool
		if mgfHash, ok = hashFromOID(mh.Algorithm); !ok {
			return sigAlg{}, fmt.Errorf("%w: RSASSA-PSS MGF1 hash OID %s", ErrUnsupportedAlgorithm, mh.Algorithm)
		}
	}
	if mgfHash != h {
		return sigAlg{}, fmt.Errorf("%w: RSASSA-PSS with MGF1 hash %v differing from hash %v", ErrUnsupportedAlgorithm, mgfHash, h)
	}
	if p.SaltLength < 0 || p.SaltLength > 1024 {
		return sigAlg{}, fmt.Errorf("auth: RSASSA-PSS salt length %d out of range", p.SaltLength)
	}
	if p.TrailerField != 1 {
		return sigAlg{}, fmt.Errorf("%w: RSASSA-PSS trailer field %d", ErrUnsupportedAlgorithm, p.TrailerField)
	}
	return sigAlg{scheme: schemeRSAPSS, hash: h, saltLen: p.SaltLength}, nil
}
