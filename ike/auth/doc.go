// Package auth computes and verifies the data of the IKEv2 AUTH payload
// (RFC 7296 §2.15, RFC 4754 and RFC 7427) and checks peer certificates and
// identities.
//
// The package is self-contained: it depends on the standard library only and
// receives the negotiated PRF as a function value, so it needs nothing from
// the rest of the IKE engine.
//
// Signatures:
//   - When both peers sent SIGNATURE_HASH_ALGORITHMS, Sign uses method 14
//     ("Digital Signature", RFC 7427): the AUTH data carries a one-octet
//     length, a DER AlgorithmIdentifier and the signature. RSA signs with
//     PKCS#1 v1.5 (or RSASSA-PSS on request), ECDSA with a DER-encoded
//     ECDSA-Sig-Value, Ed25519 (RFC 8420) when the peer announced the
//     Identity hash.
//   - Otherwise the classic methods are used: 1 (RSA, PKCS#1 v1.5 over
//     SHA-1) and 9/10/11 (ECDSA per RFC 4754, r|s fixed width).
//
// Certificates: VerifyPeerCert accepts any extended key usage, because
// certificates issued for IPsec gateways and clients often lack serverAuth
// or clientAuth (strongSwan does not require them either by default).
package auth

// Authentication methods of the AUTH payload (IANA "IKEv2 Authentication
// Method" registry).
const (
	MethodRSASig           uint8 = 1  // RSA Digital Signature (RFC 7296)
	MethodPSK              uint8 = 2  // Shared Key Message Integrity Code (RFC 7296)
	MethodECDSA256         uint8 = 9  // ECDSA with SHA-256 on P-256 (RFC 4754)
	MethodECDSA384         uint8 = 10 // ECDSA with SHA-384 on P-384 (RFC 4754)
	MethodECDSA521         uint8 = 11 // ECDSA with SHA-512 on P-521 (RFC 4754)
	MethodDigitalSignature uint8 = 14 // Digital Signature (RFC 7427)
)

// Hash algorithm identifiers of the SIGNATURE_HASH_ALGORITHMS notify
// (IANA "IKEv2 Hash Algorithms" registry, RFC 7427 §7, RFC 8420).
const (
	HashSHA1     uint16 = 1
	HashSHA256   uint16 = 2
	HashSHA384   uint16 = 3
	HashSHA512   uint16 = 4
	HashIdentity uint16 = 5 // RFC 8420: the signature algorithm hashes itself (Ed25519)
)
