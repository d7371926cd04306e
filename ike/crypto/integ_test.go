package crypto

import (
	"encoding/hex"
	"testing"
)

// RFC 4868 §2.7.2.1-§2.7.2.3 authentication test vectors (keys as long as
// the hash output), and RFC 2202 §3 test case 5 (HMAC-SHA-1-96).
func TestIntegrityKAT(t *testing.T) {
	jefe := []byte("what do ya want for nothing?")
	cases := []struct {
		name      string
		id        uint16
		key, data []byte
		want      string
	}{
		{"AUTH256-1", IntegHMACSHA2_256_128, rep(0x0b, 32), []byte("Hi There"), "198a607eb44bfbc69903a0f1cf2bbdc5"},
		{"AUTH256-2", IntegHMACSHA2_256_128, []byte("JefeJefeJefeJefeJefeJefeJefeJefe"), jefe, "167f928588c5cc2eef8e3093caa0e87c"},
		{"AUTH256-3", IntegHMACSHA2_256_128, rep(0xaa, 32), rep(0xdd, 50), "cdcb1220d1ecccea91e53aba3092f962"},
		{"AUTH256-4", IntegHMACSHA2_256_128, seq(1, 32), rep(0xcd, 50), "372efcf9b40b35c2115b1346903d2ef4"},
		{"AUTH384-1", IntegHMACSHA2_384_192, rep(0x0b, 48), []byte("Hi There"), "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973"},
		{"AUTH512-1", IntegHMACSHA2_512_256, rep(0x0b, 64), []byte("Hi There"), "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8"},
		{"RFC2202-5", IntegHMACSHA1_96, rep(0x0c, 20), []byte("Test With Truncation"), "4c1a03424b55e07fe7f27be1"},
	}
	for _, tc := range cases {
		in, err := NewIntegrity(tc.id)
		if err != nil {
			t.Fatal(err)
		}
		got := in.Sum(tc.key, tc.data)
		if len(got) != in.ICVLen() {
			t.Errorf("%s: ICV %d bytes, want %d", tc.name, len(got), in.ICVLen())
		}
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("%s:\n got %x\nwant %s", tc.name, got, tc.want)
		}
	}
}

// RFC 4868 §2.7.2: the untruncated outputs of AUTH384-1 and AUTH512-1 are
// also the PRF outputs for those keys.
func TestPRFRFC4868(t *testing.T) {
	for _, tc := range []struct {
		id   uint16
		key  []byte
		want string
	}{
		{PRFHMACSHA2_256, rep(0x0b, 32), "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"},
		{PRFHMACSHA2_384, rep(0x0b, 48), "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee9737a959796489bddbc4c5df61d5b3297b4fb68dab9f1b582c2"},
		{PRFHMACSHA2_512, rep(0x0b, 64), "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8ac2878ebd5803f6f0b61dbce5e251ff8789a4722c1be65aea45fd464e89f8f5b"},
	} {
		p, _ := NewPRF(tc.id)
		if got := hex.EncodeToString(p.Sum(tc.key, []byte("Hi There"))); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", AlgorithmName(TransformPRF, tc.id, 0), got, tc.want)
		}
	}
}

func TestIntegrityParams(t *testing.T) {
	for _, tc := range []struct {
		id       uint16
		key, icv int
	}{
		{IntegHMACSHA1_96, 20, 12}, {IntegHMACSHA2_256_128, 32, 16},
		{IntegHMACSHA2_384_192, 48, 24}, {IntegHMACSHA2_512_256, 64, 32},
	} {
		in, err := NewIntegrity(tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if in.KeyLen() != tc.key || in.ICVLen() != tc.icv || in.ID() != tc.id {
			t.Errorf("%d: KeyLen %d ICVLen %d", tc.id, in.KeyLen(), in.ICVLen())
		}
	}
	for _, id := range []uint16{IntegNone, 1, 5, 99} {
		if _, err := NewIntegrity(id); err == nil {
			t.Errorf("NewIntegrity(%d) succeeded", id)
		}
	}
}
