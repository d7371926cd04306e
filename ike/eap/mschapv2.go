// Package eap is EAP (RFC 3748) as IKEv2 runs it inside IKE_AUTH (RFC
// 7296 §2.16). The server (authenticator) side is EAP-Identity followed by
// EAP-MSCHAPv2 (RFC 2759 inside the framing of
// draft-kamath-pppext-eap-mschapv2, as strongSwan and Windows use it); the
// peer side (Peer) answers EAP-Identity and runs EAP-MSCHAPv2 or EAP-TLS
// (RFC 5216, RFC 9190). Both yield the 64-octet MSK that keys the IKE AUTH
// payloads.
package eap

import (
	"crypto/des"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"unicode/utf16"

	//lint:ignore SA1019 MS-CHAPv2 (RFC 2759 §8) is defined over MD4; it is not used for anything else
	"golang.org/x/crypto/md4"
)

// RFC 2759 §8 magic constants.
var (
	authMagic1 = []byte("Magic server to client signing constant")
	authMagic2 = []byte("Pad to make it do more than one iteration")
)

// RFC 3079 §3.4 constants.
var (
	keyMagic1 = []byte("This is the MPPE Master Key")
	keyMagic2 = []byte("On the client side, this is the send key; on the server side, it is the receive key.")
	keyMagic3 = []byte("On the client side, this is the receive key; on the server side, it is the send key.")
	shsPad1   = make([]byte, 40)
	shsPad2   = []byte(strings.Repeat("\xf2", 40))
)

// NtPasswordHash is MD4 over the password in UTF-16LE (RFC 2759 §8.3).
func NtPasswordHash(password string) []byte {
	u := utf16.Encode([]rune(password))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = append(b, byte(c), byte(c>>8))
	}
	h := md4.New()
	h.Write(b)
	return h.Sum(nil)
}

// HashNtPasswordHash is MD4 of a password hash (RFC 2759 §8.4).
func HashNtPasswordHash(hash []byte) []byte {
	h := md4.New()
	h.Write(hash)
	return h.Sum(nil)
}

// ChallengeHash is the first 8 octets of SHA1(PeerChallenge |
// AuthenticatorChallenge | UserName) (RFC 2759 §8.2); userName is without
// any domain prefix.
func ChallengeHash(peerChallenge, authChallenge []byte, userName string) []byte {
	h := sha1.New()
	h.Write(peerChallenge)
	h.Write(authChallenge)
	h.Write([]byte(userName))
	return h.Sum(nil)[:8]
}

// desKey spreads 7 key octets over 8, leaving the parity bits (ignored by
// crypto/des) zero.
func desKey(k []byte) []byte {
	return []byte{
		k[0] & 0xfe,
		(k[0]<<7 | k[1]>>1) & 0xfe,
		(k[1]<<6 | k[2]>>2) & 0xfe,
		(k[2]<<5 | k[3]>>3) & 0xfe,
		(k[3]<<4 | k[4]>>4) & 0xfe,
		(k[4]<<3 | k[5]>>5) & 0xfe,
		(k[5]<<2 | k[6]>>6) & 0xfe,
		k[6] << 1,
	}
}

// ChallengeResponse DES-encrypts the 8-octet challenge under the three
// 7-octet thirds of the zero-padded password hash (RFC 2759 §8.5).
func ChallengeResponse(challenge, passwordHash []byte) []byte {
	z := make([]byte, 21)
	copy(z, passwordHash)
	out := make([]byte, 24)
	for i := range 3 {
		c, err := des.NewCipher(desKey(z[7*i : 7*i+7]))
		if err != nil {
			panic(err) // a DES key is always 8 octets
		}
		c.Encrypt(out[8*i:], challenge)
	}
	return out
}

// GenerateNTResponse is RFC 2759 §8.1.
func GenerateNTResponse(authChallenge, peerChallenge []byte, userName, password string) []byte {
	return ChallengeResponse(ChallengeHash(peerChallenge, authChallenge, userName), NtPasswordHash(password))
}

// GenerateAuthenticatorResponse is RFC 2759 §8.7: "S=" and 40 upper-case
// hex digits.
func GenerateAuthenticatorResponse(passwordHash, ntResponse, peerChallenge, authChallenge []byte, userName string) string {
	h := sha1.New()
	h.Write(HashNtPasswordHash(passwordHash))
	h.Write(ntResponse)
	h.Write(authMagic1)
	digest := h.Sum(nil)
	h = sha1.New()
	h.Write(digest)
	h.Write(ChallengeHash(peerChallenge, authChallenge, userName))
	h.Write(authMagic2)
	return "S=" + strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
}

// MasterKey is RFC 3079 §3.4 GetMasterKey.
func MasterKey(passwordHashHash, ntResponse []byte) []byte {
	h := sha1.New()
	h.Write(passwordHashHash)
	h.Write(ntResponse)
	h.Write(keyMagic1)
	return h.Sum(nil)[:16]
}

// AsymmetricStartKey is RFC 3079 §3.4 GetAsymmetricStartKey for 16-octet
// keys.
func AsymmetricStartKey(masterKey []byte, send, server bool) []byte {
	magic := keyMagic3
	if send != server {
		magic = keyMagic2
	}
	h := sha1.New()
	h.Write(masterKey)
	h.Write(shsPad1)
	h.Write(magic)
	h.Write(shsPad2)
	return h.Sum(nil)[:16]
}

// MSK is the 64-octet key of EAP-MSCHAPv2 as strongSwan and Windows
// derive it: MasterReceiveKey | MasterSendKey (server side) | 32 zeros.
func MSK(passwordHash, ntResponse []byte) []byte {
	mk := MasterKey(HashNtPasswordHash(passwordHash), ntResponse)
	out := make([]byte, 64)
	copy(out, AsymmetricStartKey(mk, false, true))
	copy(out[16:], AsymmetricStartKey(mk, true, true))
	return out
}

// stripDomain drops a "DOMAIN\" prefix (RFC 2759 §4: the user name in
// ChallengeHash is without domain).
func stripDomain(name string) string {
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		return name[i+1:]
	}
	return name
}
