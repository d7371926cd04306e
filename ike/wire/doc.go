// Package wire encodes and decodes IKEv2 messages (RFC 7296 §3): the IKE
// header, every payload, and the Encrypted Fragment payload of RFC 7383.
//
// It holds no state and does no cryptography: the Encrypted (SK) and
// Encrypted Fragment (SKF) payloads are kept as opaque bodies for the caller
// to decrypt, and the caller parses the decrypted inner chain with
// ParsePayloads.
//
// Decoding never panics and checks every length; errors are one-line
// strings naming the payload and the field at fault. Syntax errors wrap
// ErrMalformed (answer INVALID_SYNTAX), an unknown critical payload yields
// *UnsupportedCriticalError (answer UNSUPPORTED_CRITICAL_PAYLOAD) and a
// header of another major version yields *VersionError (answer
// INVALID_MAJOR_VERSION).
//
// Payloads in a Message are pointers (*SA, *KE, *Notify, ...). Parsed
// payloads never alias the input buffer, so the caller may reuse it.
package wire
