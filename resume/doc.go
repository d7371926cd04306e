// Package resume implements both ends of RFC 5723 IKEv2 session
// resumption that live outside the IKE state machine:
//
//   - the gateway side, an [Authority] that seals the IKE layer's opaque
//     resumption state into "tickets by value" (RFC 5723 §6.1, §9.5, §9.9)
//     and refuses forged, expired and reused tickets;
//   - the client side, a [Store] that keeps one sealed [Record] per IKE SA
//     (the ticket, the state "from the ticket" of RFC 5723 §5 and the QCD
//     tokens) in a crash-safe bbolt database, and hands each ticket out at
//     most once (RFC 5723 §4.3.1).
//
// The package does not know the IKE wire format: the IKE layer passes its
// state as opaque bytes in both directions.
//
// # Ticket format
//
// A ticket issued by [Authority.Issue] is
//
//	version (1 byte, = 1)
//	key ID length (1 byte, 1..16)
//	key ID (sent in the clear so that any gateway of the domain finds the key)
//	expiry (8 bytes, big-endian Unix seconds)
//	nonce (12 random bytes)
//	AES-256-GCM ciphertext of the state, 16-byte tag included
//
// Everything before the ciphertext is the GCM additional data, so the key
// ID and the expiry cannot be altered; the expiry is readable without
// decrypting so that expired tickets cost nothing to refuse (RFC 5723 §9.3).
// The AES key is derived with HKDF-SHA-256 from the configured
// [TicketKey.Key], which keeps it apart from any other use of that secret
// (RFC 5723 §9.5).
//
// # Record format at rest
//
// Each [Store] value is
//
//	version (1 byte, = 1) | nonce (12 bytes) | AES-256-GCM(JSON of the record)
//
// with the version byte and the record ID (the bbolt key) as additional
// data, so a value cannot be moved to another ID. The AES key is derived
// with HKDF-SHA-256 from the [KeyProvider]'s key. Only record IDs are
// stored in the clear.
package resume
