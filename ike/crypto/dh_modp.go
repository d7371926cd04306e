package crypto

import (
	"fmt"
	"io"
	"math/big"
)

// MODP primes of RFC 3526 (generator 2). They are safe primes: (p-1)/2 is
// prime. Stored as text, parsed per use, to keep package state immutable.
const (
	modp2048Hex = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF"
	modp3072Hex = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
	modp4096Hex = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D788719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA993B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF"
)

// modpExponentBits is the private exponent length. With safe primes a
// short exponent is sound; RFC 3526 §8 suggests at most 320/420/480 bits
// for these groups, and 512 exceeds all of them at little cost.
const modpExponentBits = 512

// modpPrime returns the prime of a MODP group, or nil.
func modpPrime(group uint16) *big.Int {
	var h string
	switch group {
	case GroupMODP2048:
		h = modp2048Hex
	case GroupMODP3072:
		h = modp3072Hex
	case GroupMODP4096:
		h = modp4096Hex
	default:
		return nil
	}
	p, _ := new(big.Int).SetString(h, 16)
	return p
}

// modpKE is classic Diffie-Hellman over an RFC 3526 group.
//
// It uses math/big, which is NOT constant time: the exponentiation may
// leak timing information about the private exponent. The exponent is
// ephemeral (one per exchange), which limits the exposure; prefer the
// elliptic curve groups.
type modpKE struct {
	group uint16
	p     *big.Int
	x     *big.Int // private exponent
	pub   []byte
}

func generateMODP(group uint16, rand io.Reader) (*modpKE, error) {
	buf := make([]byte, modpExponentBits/8)
	if _, err := io.ReadFull(rand, buf); err != nil {
		return nil, fmt.Errorf("crypto: reading %s private key: %w", AlgorithmName(TransformKE, group, 0), err)
	}
	buf[0] |= 0x80 // full length, and never 0 or 1
	return newMODP(group, buf)
}

// newMODP builds a key exchange from a fixed private exponent (big-endian).
func newMODP(group uint16, priv []byte) (*modpKE, error) {
	p := modpPrime(group)
	if p == nil {
		return nil, fmt.Errorf("crypto: %s is not a MODP group", AlgorithmName(TransformKE, group, 0))
	}
	x := new(big.Int).SetBytes(priv)
	if x.Cmp(big.NewInt(1)) <= 0 || x.Cmp(p) >= 0 {
		return nil, fmt.Errorf("crypto: %s private exponent out of range", AlgorithmName(TransformKE, group, 0))
	}
	y := new(big.Int).Exp(big.NewInt(2), x, p)
	return &modpKE{group: group, p: p, x: x, pub: y.FillBytes(make([]byte, KEDataLen(group)))}, nil
}

// Group implements KeyExchange.
func (k *modpKE) Group() uint16 { return k.group }

// PublicKey implements KeyExchange.
func (k *modpKE) PublicKey() []byte { return append([]byte(nil), k.pub...) }

// SharedSecret implements KeyExchange. The peer value must be exactly
// len(p) bytes with 1 < y < p-1 (which excludes the order-1 and order-2
// elements); the secret is y^x mod p left-padded to len(p) bytes
// (RFC 7296 §2.14).
func (k *modpKE) SharedSecret(peer []byte) ([]byte, error) {
	if err := checkPeerLen(k.group, peer); err != nil {
		return nil, err
	}
	y := new(big.Int).SetBytes(peer)
	pm1 := new(big.Int).Sub(k.p, big.NewInt(1))
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(pm1) >= 0 {
		return nil, fmt.Errorf("crypto: %s public value out of range (need 1 < y < p-1)", AlgorithmName(TransformKE, k.group, 0))
	}
	s := new(big.Int).Exp(y, k.x, k.p)
	return s.FillBytes(make([]byte, len(peer))), nil
}
