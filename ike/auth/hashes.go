package auth

import (
	"crypto"
	"encoding/binary"
	"fmt"
	"slices"
)

// SignatureHashes returns the hash algorithms announced in our
// SIGNATURE_HASH_ALGORITHMS notify: SHA2-256, SHA2-384 and SHA2-512. SHA-1 is
// deliberately absent. Callers that want Ed25519 peers may append
// HashIdentity (RFC 8420). A new slice is returned on every call.
func SignatureHashes() []uint16 {
	return []uint16{HashSHA256, HashSHA384, HashSHA512}
}

// EncodeHashAlgorithms encodes hash algorithm identifiers as the notification
// data of SIGNATURE_HASH_ALGORITHMS: consecutive 16-bit big-endian values.
func EncodeHashAlgorithms(h []uint16) []byte {
	out := make([]byte, 2*len(h))
	for i, v := range h {
		binary.BigEndian.PutUint16(out[2*i:], v)
	}
	return out
}

// ParseHashAlgorithms decodes SIGNATURE_HASH_ALGORITHMS notification data.
// Unknown identifiers are kept (selection ignores them); an odd length is an
// error.
func ParseHashAlgorithms(b []byte) ([]uint16, error) {
	if len(b)%2 != 0 {
		return nil, fmt.Errorf("auth: SIGNATURE_HASH_ALGORITHMS data has odd length %d", len(b))
	}
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return out, nil
}

// hashByID maps IKEv2 hash identifiers we can sign with to Go hashes.
func hashByID(id uint16) (crypto.Hash, bool) {
	switch id {
	case HashSHA256:
		return crypto.SHA256, true
	case HashSHA384:
		return crypto.SHA384, true
	case HashSHA512:
		return crypto.SHA512, true
	}
	return 0, false
}

// chooseHash picks the hash for a method-14 signature: preferred if the peer
// announced it, else the strongest of SHA-512/384/256 that the peer
// announced. ok is false when there is no common hash.
func chooseHash(peer []uint16, preferred uint16) (crypto.Hash, bool) {
	if preferred != 0 && slices.Contains(peer, preferred) {
		return hashByID(preferred)
	}
	for _, id := range []uint16{HashSHA512, HashSHA384, HashSHA256} {
		if slices.Contains(peer, id) {
			return hashByID(id)
		}
	}
	return 0, false
}

// digest hashes msg with h; h must be linked in (sha1/sha256/sha512).
func digest(h crypto.Hash, msg []byte) []byte {
	w := h.New()
	w.Write(msg)
	return w.Sum(nil)
}
