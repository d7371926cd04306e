package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // classic RSA method 1 hashes with SHA-1
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
)

// SignOptions tunes Sign. The zero value is the default behaviour.
type SignOptions struct {
	// RSAPSS makes RSA keys sign with RSASSA-PSS (salt length = hash
	// length, MGF1 with the same hash) instead of PKCS#1 v1.5. It only
	// applies to method 14; classic method 1 is always PKCS#1 v1.5.
	RSAPSS bool
}

// Sign computes the AUTH payload (method, data) over octets (see
// SignedOctets) with key. It is SignWithOptions with zero options.
//
// If peerHashes (the peer's SIGNATURE_HASH_ALGORITHMS) holds SHA2-256, -384
// or -512, method 14 of RFC 7427 is used with the strongest common hash; for
// ECDSA the hash matching the curve (P-256: SHA-256, P-384: SHA-384, P-521:
// SHA-512) is preferred. The data is then len(1) | AlgorithmIdentifier | sig
// with an ECDSA signature in DER. Otherwise (no notify, or only hashes we
// refuse such as SHA-1) the classic methods are used: RSA gives method 1
// (PKCS#1 v1.5 over SHA-1), ECDSA method 9/10/11 by curve with r|s of fixed
// width (RFC 4754). Ed25519 keys need HashIdentity in peerHashes (RFC 8420).
// A nil rand means crypto/rand.Reader.
func Sign(key crypto.Signer, peerHashes []uint16, octets []byte, rand io.Reader) (method uint8, data []byte, err error) {
	return SignWithOptions(key, peerHashes, octets, rand, SignOptions{})
}

// SignWithOptions is Sign with options.
func SignWithOptions(key crypto.Signer, peerHashes []uint16, octets []byte, rand io.Reader, opts SignOptions) (method uint8, data []byte, err error) {
	if key == nil {
		return 0, nil, errors.New("auth: no private key")
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		if h, ok := chooseHash(peerHashes, 0); ok {
			alg := sigAlg{scheme: schemeRSAPKCS1, hash: h}
			var so crypto.SignerOpts = h
			if opts.RSAPSS {
				alg = sigAlg{scheme: schemeRSAPSS, hash: h, saltLen: h.Size()}
				so = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
			}
			return sign14(key, alg, so, octets, rand)
		}
		sig, err := key.Sign(rand, digest(crypto.SHA1, octets), crypto.SHA1)
		if err != nil {
			return 0, nil, fmt.Errorf("auth: RSA signature: %w", err)
		}
		return MethodRSASig, sig, nil

	case *ecdsa.PublicKey:
		cp, err := curveParamsOf(pub.Curve)
		if err != nil {
			return 0, nil, err
		}
		if h, ok := chooseHash(peerHashes, cp.hashID); ok {
			return sign14(key, sigAlg{scheme: schemeECDSA, hash: h}, h, octets, rand)
		}
		der, err := key.Sign(rand, digest(cp.hash, octets), cp.hash)
		if err != nil {
			return 0, nil, fmt.Errorf("auth: ECDSA signature: %w", err)
		}
		sig, err := ecdsaDERToFixed(der, cp.size)
		if err != nil {
			return 0, nil, err
		}
		return cp.method, sig, nil

	case ed25519.PublicKey:
		if !slices.Contains(peerHashes, HashIdentity) {
			return 0, nil, errors.New("auth: Ed25519 needs the peer to announce the Identity hash (RFC 8420)")
		}
		return sign14(key, sigAlg{scheme: schemeEd25519}, crypto.Hash(0), octets, rand)

	default:
		return 0, nil, fmt.Errorf("auth: unsupported private key type %T", pub)
	}
}

// sign14 signs for method 14 and frames the result as RFC 7427 §3 wants.
func sign14(key crypto.Signer, alg sigAlg, so crypto.SignerOpts, octets []byte, rand io.Reader) (uint8, []byte, error) {
	ai, err := alg.marshal()
	if err != nil {
		return 0, nil, err
	}
	if len(ai) > 255 {
		return 0, nil, errors.New("auth: AlgorithmIdentifier longer than 255 octets")
	}
	msg := octets // Ed25519 signs the message itself
	if alg.hash != 0 {
		msg = digest(alg.hash, octets)
	}
	sig, err := key.Sign(rand, msg, so)
	if err != nil {
		return 0, nil, fmt.Errorf("auth: signature: %w", err)
	}
	out := make([]byte, 0, 1+len(ai)+len(sig))
	out = append(out, byte(len(ai)))
	out = append(out, ai...)
	return MethodDigitalSignature, append(out, sig...), nil
}

// curveParams ties an ECDSA curve to its RFC 4754 method and hash.
type curveParams struct {
	method uint8
	hash   crypto.Hash
	hashID uint16
	size   int // octets of r and of s
}

func curveParamsOf(c elliptic.Curve) (curveParams, error) {
	if c == nil {
		return curveParams{}, errors.New("auth: ECDSA key without curve")
	}
	switch c.Params().Name {
	case "P-256":
		return curveParams{MethodECDSA256, crypto.SHA256, HashSHA256, 32}, nil
	case "P-384":
		return curveParams{MethodECDSA384, crypto.SHA384, HashSHA384, 48}, nil
	case "P-521":
		return curveParams{MethodECDSA521, crypto.SHA512, HashSHA512, 66}, nil
	}
	return curveParams{}, fmt.Errorf("auth: unsupported ECDSA curve %s", c.Params().Name)
}

// ecdsaSig is ECDSA-Sig-Value (RFC 3279 §2.2.3).
type ecdsaSig struct {
	R, S *big.Int
}

// ecdsaDERToFixed converts a DER ECDSA-Sig-Value to r|s of size octets
// each, as RFC 4754 §7 requires.
func ecdsaDERToFixed(der []byte, size int) ([]byte, error) {
	var s ecdsaSig
	rest, err := asn1.Unmarshal(der, &s)
	if err != nil || len(rest) != 0 || s.R == nil || s.S == nil {
		return nil, errors.New("auth: signer returned a malformed ECDSA signature")
	}
	if s.R.Sign() <= 0 || s.S.Sign() <= 0 || s.R.BitLen() > 8*size || s.S.BitLen() > 8*size {
		return nil, errors.New("auth: signer returned an out-of-range ECDSA signature")
	}
	out := make([]byte, 2*size)
	s.R.FillBytes(out[:size])
	s.S.FillBytes(out[size:])
	return out, nil
}
