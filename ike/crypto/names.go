package crypto

import (
	"fmt"
	"strconv"
	"strings"
)

// encrName, prfName, integName and keName return strongSwan's name for a
// transform (its transform enum names), so that suite strings compare
// equal to `swanctl --list-sas` output. Switches rather than maps keep the
// package free of mutable globals.
func encrName(id uint16) string {
	switch id {
	case 3:
		return "3DES"
	case 11:
		return "NULL"
	case EncrAESCBC:
		return "AES_CBC"
	case 13:
		return "AES_CTR"
	case 14:
		return "AES_CCM_8"
	case 15:
		return "AES_CCM_12"
	case 16:
		return "AES_CCM_16"
	case EncrAESGCM8:
		return "AES_GCM_8"
	case EncrAESGCM12:
		return "AES_GCM_12"
	case EncrAESGCM16:
		return "AES_GCM_16"
	case 23:
		return "CAMELLIA_CBC"
	case EncrChaCha20Poly1305:
		return "CHACHA20_POLY1305"
	}
	return ""
}

func prfName(id uint16) string {
	switch id {
	case 1:
		return "PRF_HMAC_MD5"
	case PRFHMACSHA1:
		return "PRF_HMAC_SHA1"
	case 4:
		return "PRF_AES128_XCBC"
	case PRFHMACSHA2_256:
		return "PRF_HMAC_SHA2_256"
	case PRFHMACSHA2_384:
		return "PRF_HMAC_SHA2_384"
	case PRFHMACSHA2_512:
		return "PRF_HMAC_SHA2_512"
	case 8:
		return "PRF_AES128_CMAC"
	}
	return ""
}

func integName(id uint16) string {
	switch id {
	case 1:
		return "HMAC_MD5_96"
	case IntegHMACSHA1_96:
		return "HMAC_SHA1_96"
	case 5:
		return "AES_XCBC_96"
	case 8:
		return "AES_CMAC_96"
	case IntegHMACSHA2_256_128:
		return "HMAC_SHA2_256_128"
	case IntegHMACSHA2_384_192:
		return "HMAC_SHA2_384_192"
	case IntegHMACSHA2_512_256:
		return "HMAC_SHA2_512_256"
	}
	return ""
}

func keName(id uint16) string {
	switch id {
	case 1:
		return "MODP_768"
	case 2:
		return "MODP_1024"
	case 5:
		return "MODP_1536"
	case GroupMODP2048:
		return "MODP_2048"
	case GroupMODP3072:
		return "MODP_3072"
	case GroupMODP4096:
		return "MODP_4096"
	case 17:
		return "MODP_6144"
	case 18:
		return "MODP_8192"
	case GroupECP256:
		return "ECP_256"
	case GroupECP384:
		return "ECP_384"
	case 21:
		return "ECP_521"
	case GroupCurve25519:
		return "CURVE_25519"
	case 32:
		return "CURVE_448"
	case 35:
		return "ML_KEM_512"
	case 36:
		return "ML_KEM_768"
	case 37:
		return "ML_KEM_1024"
	}
	return ""
}

// AlgorithmName names a transform as strongSwan prints it, e.g.
// "AES_GCM_16-256" (an ENCR with keyBits > 0 gets "-keyBits"),
// "CHACHA20_POLY1305", "HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256",
// "CURVE_25519", "MODP_2048", "ECP_256", "NO_EXT_SEQ", "EXT_SEQ".
// Additional key exchanges (types 6..12) use the KE names. Unknown IDs
// print as e.g. "ENCR_99"; unknown types as "TRANSFORM_9_1".
func AlgorithmName(transformType uint8, id uint16, keyBits int) string {
	var name, prefix string
	switch {
	case transformType == TransformEncr:
		name, prefix = encrName(id), "ENCR"
	case transformType == TransformPRF:
		name, prefix = prfName(id), "PRF"
	case transformType == TransformInteg:
		if id == IntegNone {
			return "NONE"
		}
		name, prefix = integName(id), "INTEG"
	case transformType == TransformKE || transformType >= TransformAddKE1 && transformType <= TransformAddKE7:
		if id == GroupNone {
			return "NONE"
		}
		name, prefix = keName(id), "KE"
	case transformType == TransformESN:
		switch id {
		case ESNNo:
			return "NO_EXT_SEQ"
		case ESNYes:
			return "EXT_SEQ"
		}
		return "ESN_" + strconv.Itoa(int(id))
	default:
		return fmt.Sprintf("TRANSFORM_%d_%d", transformType, id)
	}
	if name == "" {
		name = prefix + "_" + strconv.Itoa(int(id))
	}
	if transformType == TransformEncr && keyBits > 0 {
		name += "-" + strconv.Itoa(keyBits)
	}
	return name
}

// SuiteString formats one negotiated algorithm of each type the way
// `swanctl --list-sas` prints an SA's suite: encryption, integrity, PRF,
// key exchange and additional key exchanges, then "ESN" if extended
// sequence numbers are on, joined by "/", e.g.
// "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
// "AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519" or
// "CHACHA20_POLY1305/PRF_HMAC_SHA2_256/CURVE_25519". IntegNone, GroupNone
// and ESNNo are left out. Algorithms are placed by type; within a type
// they keep their order.
func SuiteString(algs []Algorithm) string {
	order := []uint8{TransformEncr, TransformInteg, TransformPRF, TransformKE}
	for t := TransformAddKE1; t <= TransformAddKE7; t++ {
		order = append(order, t)
	}
	var parts []string
	for _, t := range order {
		for _, a := range algs {
			if a.Type != t || (t == TransformInteg && a.ID == IntegNone) ||
				(t != TransformEncr && t != TransformPRF && t != TransformInteg && a.ID == GroupNone) {
				continue
			}
			parts = append(parts, AlgorithmName(a.Type, a.ID, a.KeyBits))
		}
	}
	for _, a := range algs {
		if a.Type == TransformESN && a.ID == ESNYes {
			parts = append(parts, "ESN")
		}
	}
	return strings.Join(parts, "/")
}
