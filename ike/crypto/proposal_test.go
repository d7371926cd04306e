package crypto

import (
	"reflect"
	"strings"
	"testing"
)

func enc(id uint16, bits int) Algorithm { return Algorithm{Type: TransformEncr, ID: id, KeyBits: bits} }
func integA(id uint16) Algorithm        { return Algorithm{Type: TransformInteg, ID: id} }
func prfA(id uint16) Algorithm          { return Algorithm{Type: TransformPRF, ID: id} }
func keA(id uint16) Algorithm           { return Algorithm{Type: TransformKE, ID: id} }
func esnA(id uint16) Algorithm          { return Algorithm{Type: TransformESN, ID: id} }

func TestParseProposal(t *testing.T) {
	cases := []struct {
		in    string
		esp   bool
		want  []Algorithm
		canon string
	}{
		{"aes256gcm16-prfsha256-x25519", false,
			[]Algorithm{enc(EncrAESGCM16, 256), prfA(PRFHMACSHA2_256), keA(GroupCurve25519)},
			"aes256gcm16-prfsha256-x25519"},
		// AEAD: the integrity keyword only names the PRF.
		{"aes256gcm16-sha256-x25519", false,
			[]Algorithm{enc(EncrAESGCM16, 256), prfA(PRFHMACSHA2_256), keA(GroupCurve25519)},
			"aes256gcm16-prfsha256-x25519"},
		{"aes256gcm128-sha384-sha256-curve25519", false,
			[]Algorithm{enc(EncrAESGCM16, 256), prfA(PRFHMACSHA2_384), prfA(PRFHMACSHA2_256), keA(GroupCurve25519)},
			"aes256gcm16-prfsha384-prfsha256-x25519"},
		// Non-AEAD: integrity stays and the PRF is derived from it.
		{"aes256-sha256-modp2048", false,
			[]Algorithm{enc(EncrAESCBC, 256), integA(IntegHMACSHA2_256_128), prfA(PRFHMACSHA2_256), keA(GroupMODP2048)},
			"aes256-sha256-prfsha256-modp2048"},
		{"aes256-aes128-sha256-sha1-modp2048-ecp256", false,
			[]Algorithm{enc(EncrAESCBC, 256), enc(EncrAESCBC, 128), integA(IntegHMACSHA2_256_128), integA(IntegHMACSHA1_96),
				prfA(PRFHMACSHA2_256), prfA(PRFHMACSHA1), keA(GroupMODP2048), keA(GroupECP256)},
			"aes256-aes128-sha256-sha1-prfsha256-prfsha1-modp2048-ecp256"},
		{"aes128-sha512-prfsha384-ecp384", false,
			[]Algorithm{enc(EncrAESCBC, 128), integA(IntegHMACSHA2_512_256), prfA(PRFHMACSHA2_384), keA(GroupECP384)},
			"aes128-sha512-prfsha384-ecp384"},
		{"chacha20poly1305-prfsha512-x25519-ke1_ecp256", false,
			[]Algorithm{enc(EncrChaCha20Poly1305, 0), prfA(PRFHMACSHA2_512), keA(GroupCurve25519), {Type: TransformAddKE1, ID: GroupECP256}},
			"chacha20poly1305-prfsha512-x25519-ke1_ecp256"},
		{" AES128GCM8 - aes192gcm96 - PRFSHA1 - MODP3072 - modp4096 ", false,
			[]Algorithm{enc(EncrAESGCM8, 128), enc(EncrAESGCM12, 192), prfA(PRFHMACSHA1), keA(GroupMODP3072), keA(GroupMODP4096)},
			"aes128gcm8-aes192gcm12-prfsha1-modp3072-modp4096"},
		{"aes-sha-x25519-x25519", false, // duplicates dropped
			[]Algorithm{enc(EncrAESCBC, 128), integA(IntegHMACSHA1_96), prfA(PRFHMACSHA1), keA(GroupCurve25519)},
			"aes128-sha1-prfsha1-x25519"},
		// ESP.
		{"aes256gcm16", true, []Algorithm{enc(EncrAESGCM16, 256), esnA(ESNNo)}, "aes256gcm16"},
		{"aes128gcm64-esn", true, []Algorithm{enc(EncrAESGCM8, 128), esnA(ESNYes)}, "aes128gcm8-esn"},
		{"aes256-sha256-modp2048-esn-noesn", true,
			[]Algorithm{enc(EncrAESCBC, 256), integA(IntegHMACSHA2_256_128), keA(GroupMODP2048), esnA(ESNYes), esnA(ESNNo)},
			"aes256-sha256-modp2048-esn-noesn"},
		{"chacha20poly1305-x25519-noesn", true,
			[]Algorithm{enc(EncrChaCha20Poly1305, 0), keA(GroupCurve25519), esnA(ESNNo)},
			"chacha20poly1305-x25519"},
		{"aes192-sha2_384", true,
			[]Algorithm{enc(EncrAESCBC, 192), integA(IntegHMACSHA2_384_192), esnA(ESNNo)},
			"aes192-sha384"},
	}
	for _, tc := range cases {
		p, err := ParseProposal(tc.in, tc.esp)
		if err != nil {
			t.Errorf("ParseProposal(%q, %v): %v", tc.in, tc.esp, err)
			continue
		}
		if !reflect.DeepEqual(p.Algorithms, tc.want) {
			t.Errorf("ParseProposal(%q, %v) =\n %+v\nwant\n %+v", tc.in, tc.esp, p.Algorithms, tc.want)
		}
		if got := p.String(); got != tc.canon {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.canon)
		}
		again, err := ParseProposal(p.String(), tc.esp)
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Errorf("%q does not round-trip: %+v %v", p.String(), again, err)
		}
	}
}

func TestParseProposalErrors(t *testing.T) {
	cases := []struct {
		in   string
		esp  bool
		want string
	}{
		{"aes256gcm16-foo", false, `proposal "aes256gcm16-foo": unknown algorithm "foo"`},
		{"", false, `proposal "": empty proposal`},
		{"aes256--sha256", false, "empty algorithm name"},
		{"aes256-", true, "empty algorithm name"},
		{"sha256-prfsha256-x25519", false, "no encryption algorithm"},
		{"aes256-x25519", false, `no integrity algorithm for cipher "aes256"`},
		{"aes256-prfsha256-x25519", false, `no integrity algorithm for cipher "aes256"`},
		{"aes256gcm16-x25519", false, "no PRF"},
		{"aes256gcm16-prfsha256", false, "no key exchange method"},
		{"aes256gcm16-prfsha256-sha256-x25519", false, `integrity algorithm "sha256" is not allowed with AEAD cipher "aes256gcm16"`},
		{"aes256gcm16-aes256-sha256-x25519", false, `AEAD cipher "aes256gcm16" and non-AEAD cipher "aes256" cannot be mixed`},
		{"aes256gcm16-prfsha256-x25519-esn", false, `"esn" is not allowed in an IKE proposal`},
		{"aes256gcm16-prfsha256", true, `PRF "prfsha256" is not allowed in an ESP proposal`},
		{"aes256gcm16-sha256", true, `integrity algorithm "sha256" is not allowed with AEAD cipher "aes256gcm16"`},
		{"aes256", true, `no integrity algorithm for cipher "aes256"`},
		{"aes256gcm16-ke1_x25519", true, `additional key exchange "ke1_x25519" needs a key exchange method`},
		{"aes512-sha256", true, `unknown algorithm "aes512"`},
		{"aes256gcm17", true, `unknown algorithm "aes256gcm17"`},
		{"aes25xgcm16", true, `unknown algorithm "aes25xgcm16"`},
		{"aes256gcm16-ke8_x25519", true, `unknown algorithm "ke8_x25519"`},
		{"aes256gcm16-ke1_foo", true, `unknown algorithm "ke1_foo"`},
		{"aes256gcm16-modp1024", true, `unknown algorithm "modp1024"`},
		{"3des-sha1-modp2048", false, `unknown algorithm "3des"`},
	}
	for _, tc := range cases {
		_, err := ParseProposal(tc.in, tc.esp)
		if err == nil {
			t.Errorf("ParseProposal(%q, %v) succeeded", tc.in, tc.esp)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "proposal ") {
			t.Errorf("ParseProposal(%q, %v) error %q, want it to contain %q", tc.in, tc.esp, err, tc.want)
		}
	}
}

func TestProposalStringUnknown(t *testing.T) {
	p := Proposal{Algorithms: []Algorithm{enc(99, 0), integA(99), prfA(99), keA(99), {Type: 13, ID: 1}}}
	if got, want := p.String(), "encr99-integ99-prf99-ke99-transform13_1"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
