// Package crypto implements the IKEv2 cryptographic transforms and key
// derivation used by qcdvpn: the PRFs and prf+ (RFC 7296 §2.13), truncated
// HMAC integrity (RFC 4868), protection of the SK/SKF payload body with
// AES-CBC+HMAC, AES-GCM (RFC 5282) or ChaCha20-Poly1305 (RFC 7634), the
// Diffie-Hellman groups (RFC 3526 MODP, RFC 5903 ECP, RFC 8031 Curve25519),
// SKEYSEED and key material for IKE and Child SAs (RFC 7296 §2.14, §2.17,
// §2.18, RFC 5723 §5.1), and strongSwan-style proposal strings.
//
// It has no wire codec and no state machine; importers usually alias it
// ikecrypto. Every type here is safe for concurrent use once constructed.
package crypto
