package crypto

// Transform types (RFC 7296 §3.3.2, RFC 9370 for ADDKE1..7).
const (
	TransformEncr  uint8 = 1
	TransformPRF   uint8 = 2
	TransformInteg uint8 = 3
	TransformKE    uint8 = 4
	TransformESN   uint8 = 5
	// TransformAddKE1 .. TransformAddKE7 are the additional key exchanges
	// of RFC 9370 (types 6..12).
	TransformAddKE1 uint8 = 6
	TransformAddKE7 uint8 = 12
)

// Encryption algorithm transform IDs (IANA "Transform Type 1").
const (
	EncrAESCBC           uint16 = 12
	EncrAESGCM8          uint16 = 18
	EncrAESGCM12         uint16 = 19
	EncrAESGCM16         uint16 = 20
	EncrChaCha20Poly1305 uint16 = 28
)

// Pseudorandom function transform IDs (IANA "Transform Type 2").
const (
	PRFHMACSHA1     uint16 = 2
	PRFHMACSHA2_256 uint16 = 5
	PRFHMACSHA2_384 uint16 = 6
	PRFHMACSHA2_512 uint16 = 7
)

// Integrity algorithm transform IDs (IANA "Transform Type 3").
const (
	IntegNone             uint16 = 0
	IntegHMACSHA1_96      uint16 = 2
	IntegHMACSHA2_256_128 uint16 = 12
	IntegHMACSHA2_384_192 uint16 = 13
	IntegHMACSHA2_512_256 uint16 = 14
)

// Key exchange method (Diffie-Hellman group) transform IDs (IANA
// "Transform Type 4").
const (
	GroupNone       uint16 = 0
	GroupMODP2048   uint16 = 14
	GroupMODP3072   uint16 = 15
	GroupMODP4096   uint16 = 16
	GroupECP256     uint16 = 19
	GroupECP384     uint16 = 20
	GroupCurve25519 uint16 = 31
)

// Extended Sequence Numbers transform IDs (IANA "Transform Type 5").
const (
	ESNNo  uint16 = 0
	ESNYes uint16 = 1
)
