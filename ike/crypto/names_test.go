package crypto

import "testing"

func TestAlgorithmName(t *testing.T) {
	for _, tc := range []struct {
		typ  uint8
		id   uint16
		bits int
		want string
	}{
		{TransformEncr, EncrAESGCM16, 256, "AES_GCM_16-256"},
		{TransformEncr, EncrAESGCM8, 128, "AES_GCM_8-128"},
		{TransformEncr, EncrAESCBC, 256, "AES_CBC-256"},
		{TransformEncr, EncrAESCBC, 0, "AES_CBC"},
		{TransformEncr, EncrChaCha20Poly1305, 0, "CHACHA20_POLY1305"},
		{TransformEncr, 99, 0, "ENCR_99"},
		{TransformPRF, PRFHMACSHA2_256, 0, "PRF_HMAC_SHA2_256"},
		{TransformPRF, PRFHMACSHA1, 0, "PRF_HMAC_SHA1"},
		{TransformInteg, IntegHMACSHA2_256_128, 0, "HMAC_SHA2_256_128"},
		{TransformInteg, IntegHMACSHA1_96, 0, "HMAC_SHA1_96"},
		{TransformInteg, IntegNone, 0, "NONE"},
		{TransformKE, GroupCurve25519, 0, "CURVE_25519"},
		{TransformKE, GroupMODP2048, 0, "MODP_2048"},
		{TransformKE, GroupECP256, 0, "ECP_256"},
		{TransformKE, GroupECP384, 0, "ECP_384"},
		{TransformKE, 1234, 0, "KE_1234"},
		{TransformAddKE1 + 2, GroupECP256, 0, "ECP_256"},
		{TransformESN, ESNNo, 0, "NO_EXT_SEQ"},
		{TransformESN, ESNYes, 0, "EXT_SEQ"},
		{42, 7, 0, "TRANSFORM_42_7"},
	} {
		if got := AlgorithmName(tc.typ, tc.id, tc.bits); got != tc.want {
			t.Errorf("AlgorithmName(%d, %d, %d) = %q, want %q", tc.typ, tc.id, tc.bits, got, tc.want)
		}
	}
}

// The suite strings strongSwan's swanctl --list-sas prints.
func TestSuiteString(t *testing.T) {
	for _, tc := range []struct {
		algs []Algorithm
		want string
	}{
		{[]Algorithm{keA(GroupCurve25519), prfA(PRFHMACSHA2_256), enc(EncrAESGCM16, 256)},
			"AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519"},
		{[]Algorithm{enc(EncrAESCBC, 256), prfA(PRFHMACSHA2_256), integA(IntegHMACSHA2_256_128), keA(GroupMODP2048)},
			"AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"},
		{[]Algorithm{enc(EncrChaCha20Poly1305, 0), prfA(PRFHMACSHA2_256), keA(GroupCurve25519)},
			"CHACHA20_POLY1305/PRF_HMAC_SHA2_256/CURVE_25519"},
		{[]Algorithm{enc(EncrAESGCM16, 128), integA(IntegNone), keA(GroupNone), esnA(ESNNo)}, "AES_GCM_16-128"},
		{[]Algorithm{enc(EncrAESCBC, 128), integA(IntegHMACSHA1_96), keA(GroupECP256), esnA(ESNYes)},
			"AES_CBC-128/HMAC_SHA1_96/ECP_256/ESN"},
	} {
		if got := SuiteString(tc.algs); got != tc.want {
			t.Errorf("SuiteString = %q, want %q", got, tc.want)
		}
	}
}
