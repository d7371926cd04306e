// Package qcd implements RFC 6290 Quick Crash Detection tokens.
//
// A token maker (a gateway) gives each IKE SA a token in a protected
// message; after it has lost its state it can prove, in an unprotected
// reply, that it really is the peer that lost the SA, so the token taker (a
// client) may tear the SA down at once instead of waiting minutes for a
// liveness check to fail.
//
// The maker side is Secrets: the stateless method of RFC 6290 §5.1,
// TOKEN_SECRET_DATA = SHA-256(QCD_SECRET | SPI-I | SPI-R), with up to four
// generations of QCD_SECRET kept in a small file.
//
// The taker side is Parse, Store and Verifier: Parse reads an unprotected
// N(INVALID_IKE_SPI) or N(INVALID_SPI) message with its N(QCD_TOKEN)s
// (§4.5), Store keeps the tokens received in protected messages per IKE SA
// and maps our outbound ESP SPIs to their IKE SA (§8.2), and Verifier
// rate-limits and checks presented tokens (§8.1, §8.2). A Verified verdict
// means the caller must silently delete the IKE SA and its Child SAs and
// then call Store.Delete; nothing in this package tears SAs down itself.
//
// Tokens are secrets: nothing here logs token bytes, only their length and
// the SA's SPIs.
package qcd
