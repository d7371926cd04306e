package auth

import "crypto/hmac"

// PRFFunc is the negotiated IKE PRF: it returns prf(key, data).
type PRFFunc func(key, data []byte) []byte

// keyPad is the pad string of RFC 7296 §2.15: 17 ASCII octets, no NUL.
var keyPad = []byte("Key Pad for IKEv2")

// SignedOctets builds the InitiatorSignedOctets or ResponderSignedOctets of
// RFC 7296 §2.15:
//
//	RealMessage | NonceData (of the peer) | prf(SK_p, RestOfIDPayload)
//
// message is the signer's own IKE_SA_INIT message starting at the IKE header
// (without the four-octet non-ESP marker used on port 4500), peerNonce the
// other side's nonce value, skp the signer's SK_pi or SK_pr, and idBody the
// signer's ID payload body: IDType | RESERVED(3) | data (see Identity.Body).
// It returns nil if prf is nil.
func SignedOctets(prf PRFFunc, message, peerNonce, skp, idBody []byte) []byte {
	if prf == nil {
		return nil
	}
	mac := prf(skp, idBody)
	out := make([]byte, 0, len(message)+len(peerNonce)+len(mac))
	out = append(out, message...)
	out = append(out, peerNonce...)
	return append(out, mac...)
}

// PSKAuth computes the AUTH data of the shared-key method (RFC 7296 §2.15):
//
//	prf(prf(PSK, "Key Pad for IKEv2"), signedOctets)
//
// The same construction authenticates EAP exchanges, with the MSK (or SK_pi /
// SK_pr when the EAP method yields no MSK) in place of the PSK (§2.16).
// It returns nil if prf is nil.
func PSKAuth(prf PRFFunc, psk, signedOctets []byte) []byte {
	if prf == nil {
		return nil
	}
	return prf(prf(psk, keyPad), signedOctets)
}

// VerifyPSK reports whether authData is the PSK AUTH value of signedOctets.
// The comparison is constant time; empty authData never verifies.
func VerifyPSK(prf PRFFunc, psk, signedOctets, authData []byte) bool {
	if len(authData) == 0 {
		return false
	}
	want := PSKAuth(prf, psk, signedOctets)
	return len(want) > 0 && hmac.Equal(want, authData)
}
