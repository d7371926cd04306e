// Package esp is the ESP (RFC 4303) data plane of qcdvpn: tunnel-mode ESP,
// always UDP-encapsulated (RFC 3948), sealed and opened in place.
//
// The package produces and consumes the UDP payload only:
//
//	SPI(4) | Seq(4) | IV | ciphertext (inner packet | padding | pad length | next header) | ICV
//
// The UDP socket, the non-ESP marker of IKE messages on port 4500 and NAT
// keepalives belong to the caller; [SPIOf] tells ESP from them.
//
// Suites: ENCR_AES_GCM_16 (RFC 4106), ENCR_CHACHA20_POLY1305 (RFC 7634) and
// ENCR_AES_CBC with AUTH_HMAC_SHA2_256_128/384_192/512_256 (RFC 4868), each
// with or without extended sequence numbers (ESN).
//
// Hot path: [Outbound.Seal] and [Inbound.Open] allocate nothing in steady
// state and take no lock, with one exception: the inbound anti-replay window
// is updated under a small per-SA mutex after a packet authenticates (the
// pre-check before the crypto is lock-free). Both are safe for concurrent use
// by any number of goroutines. Per-call scratch state (nonce, AAD, HMAC and
// CBC state) comes from a per-SA sync.Pool, so only a cold pool allocates.
//
// Anti-replay: an 8128-packet RFC 6479 bitmap window with the check split
// from the update (see replay.go for why wireguard's replay.Filter, which
// does both at once, is only used as the tests' reference). With ESN the
// high half of a sequence number is inferred from the window as in
// RFC 4303 Appendix A2.2 and authenticated before the window moves; a
// packet left of the window then looks like one 2^32 ahead and fails with
// ErrAuth rather than ErrReplay, as in Linux.
//
// IVs: the AEAD suites use the 64-bit sequence number (unique per key,
// RFC 4106 §3.1); AES-CBC uses AES under a random per-SA key of a random
// prefix and the sequence number (unique and unpredictable, no randomness
// per packet).
package esp
