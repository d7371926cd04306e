package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
)

// ErrVerifyFailed is returned when a signature does not verify.
var ErrVerifyFailed = errors.New("auth: signature verification failed")

// VerifyOptions tunes Verify. The zero value is the recommended policy.
type VerifyOptions struct {
	// AllowSHA1 accepts SHA-1 based algorithms under method 14
	// (sha1WithRSAEncryption, ecdsa-with-SHA1, RSASSA-PSS with SHA-1).
	// Classic method 1 is defined with SHA-1 and is not affected.
	AllowSHA1 bool
}

// Verify checks the AUTH data of a signature method against octets (see
// SignedOctets) with the peer's public key, under the default policy. It
// is VerifyWithOptions with zero options.
func Verify(pub crypto.PublicKey, method uint8, data, octets []byte) error {
	return VerifyWithOptions(pub, method, data, octets, VerifyOptions{})
}

// VerifyWithOptions checks AUTH data for methods 1, 9, 10, 11 and 14. It
// returns ErrVerifyFailed (possibly wrapped) for a bad signature, errors
// wrapping ErrUnsupportedAlgorithm for algorithms we do not accept, and
// other errors for malformed data or a key that does not fit the method.
func VerifyWithOptions(pub crypto.PublicKey, method uint8, data, octets []byte, opts VerifyOptions) error {
	switch method {
	case MethodRSASig:
		k, err := rsaKey(pub, method)
		if err != nil {
			return err
		}
		if rsa.VerifyPKCS1v15(k, crypto.SHA1, digest(crypto.SHA1, octets), data) != nil {
			return ErrVerifyFailed
		}
		return nil
	case MethodECDSA256, MethodECDSA384, MethodECDSA521:
		return verifyClassicECDSA(pub, method, data, octets)
	case MethodDigitalSignature:
		return verify14(pub, data, octets, opts)
	case MethodPSK:
		return errors.New("auth: method 2 (shared key) is not a signature method; use VerifyPSK")
	}
	return fmt.Errorf("auth: unsupported authentication method %d", method)
}

func rsaKey(pub crypto.PublicKey, method uint8) (*rsa.PublicKey, error) {
	k, ok := pub.(*rsa.PublicKey)
	if !ok || k == nil || k.N == nil {
		return nil, fmt.Errorf("auth: method %d needs an RSA public key, have %T", method, pub)
	}
	return k, nil
}

func ecdsaKey(pub crypto.PublicKey, method uint8) (*ecdsa.PublicKey, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	//lint:ignore SA1019 only a nil check: a zero key would panic in crypto/ecdsa.Verify
	if !ok || k == nil || k.Curve == nil || k.X == nil || k.Y == nil {
		return nil, fmt.Errorf("auth: method %d needs an ECDSA public key, have %T", method, pub)
	}
	return k, nil
}

// verifyClassicECDSA checks RFC 4754 signatures: the curve is fixed by the
// method and the signature is r|s of fixed width.
func verifyClassicECDSA(pub crypto.PublicKey, method uint8, data, octets []byte) error {
	k, err := ecdsaKey(pub, method)
	if err != nil {
		return err
	}
	cp, err := curveParamsOf(k.Curve)
	if err != nil {
		return err
	}
	if cp.method != method {
		return fmt.Errorf("auth: method %d does not match the peer's %s key", method, k.Curve.Params().Name)
	}
	if len(data) != 2*cp.size {
		return fmt.Errorf("%w: ECDSA signature is %d octets, want %d", ErrVerifyFailed, len(data), 2*cp.size)
	}
	r := new(big.Int).SetBytes(data[:cp.size])
	s := new(big.Int).SetBytes(data[cp.size:])
	if !ecdsa.Verify(k, digest(cp.hash, octets), r, s) {
		return ErrVerifyFailed
	}
	return nil
}

// verify14 checks RFC 7427 data: len(1) | AlgorithmIdentifier | signature.
func verify14(pub crypto.PublicKey, data, octets []byte, opts VerifyOptions) error {
	if len(data) < 1 {
		return errors.New("auth: empty AUTH data")
	}
	n := int(data[0])
	if n == 0 || len(data) < 1+n {
		return fmt.Errorf("auth: AUTH data too short for its %d-octet AlgorithmIdentifier", n)
	}
	sig := data[1+n:]
	if len(sig) == 0 {
		return errors.New("auth: AUTH data has no signature value")
	}
	alg, err := parseAlgorithmIdentifier(data[1 : 1+n])
	if err != nil {
		return err
	}
	if alg.hash == crypto.SHA1 && !opts.AllowSHA1 {
		return fmt.Errorf("%w: SHA-1 is refused under method 14", ErrUnsupportedAlgorithm)
	}
	switch alg.scheme {
	case schemeRSAPKCS1, schemeRSAPSS:
		k, err := rsaKey(pub, MethodDigitalSignature)
		if err != nil {
			return err
		}
		d := digest(alg.hash, octets)
		if alg.scheme == schemeRSAPKCS1 {
			err = rsa.VerifyPKCS1v15(k, alg.hash, d, sig)
		} else {
			// SaltLength 0 would mean "auto" to crypto/rsa, which also
			// accepts an empty salt, so it is safe for saltLen 0.
			err = rsa.VerifyPSS(k, alg.hash, d, sig, &rsa.PSSOptions{SaltLength: alg.saltLen, Hash: alg.hash})
		}
		if err != nil {
			return ErrVerifyFailed
		}
	case schemeECDSA:
		k, err := ecdsaKey(pub, MethodDigitalSignature)
		if err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(k, digest(alg.hash, octets), sig) {
			return ErrVerifyFailed
		}
	case schemeEd25519:
		k, ok := pub.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("auth: Ed25519 signature needs an Ed25519 public key, have %T", pub)
		}
		if !ed25519.Verify(k, octets, sig) {
			return ErrVerifyFailed
		}
	default:
		return ErrUnsupportedAlgorithm
	}
	return nil
}
