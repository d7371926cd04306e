package ike

import (
	"net/netip"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// ChildSA is an established pair of ESP SAs and what the data plane needs
// to run them.
type ChildSA struct {
	Suite Suite
	// SPIIn is the SPI we chose (the peer sends with it); SPIOut the peer's.
	SPIIn, SPIOut uint32
	// Keys for each direction. For AEAD ciphers the encryption key ends
	// with the 4-byte salt and the integrity key is empty.
	EncrIn, IntegIn, EncrOut, IntegOut []byte
	// TSi and TSr are the traffic selectors the responder settled on.
	TSi, TSr []wire.Selector
	// Encap is true when ESP travels in UDP (RFC 3948).
	Encap bool
}

// deriveKeys fills the four keys from KEYMAT = prf+(SK_d, [g^ir |] Ni | Nr)
// (RFC 7296 §2.17): initiator-to-responder keys come first.
func (c *ChildSA) deriveKeys(prf *ikecrypto.PRF, skd, gir, ni, nr []byte, initiator bool) error {
	encLen, err := ikecrypto.EncrKeyLen(c.Suite.Encr, c.Suite.KeyBits)
	if err != nil {
		return err
	}
	integLen := 0
	if c.Suite.Integ != ikecrypto.IntegNone {
		in, err := ikecrypto.NewIntegrity(c.Suite.Integ)
		if err != nil {
			return err
		}
		integLen = in.KeyLen()
	}
	km := ikecrypto.DeriveChildKeys(prf, skd, gir, ni, nr, 2*(encLen+integLen))
	ei, km := km[:encLen], km[encLen:]
	ai, km := km[:integLen], km[integLen:]
	er, km := km[:encLen], km[encLen:]
	ar := km[:integLen]
	if initiator {
		c.EncrOut, c.IntegOut, c.EncrIn, c.IntegIn = ei, ai, er, ar
	} else {
		c.EncrOut, c.IntegOut, c.EncrIn, c.IntegIn = er, ar, ei, ai
	}
	return nil
}

// Prefixes converts selectors to the prefixes they cover exactly.
func Prefixes(sel []wire.Selector) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range sel {
		out = append(out, rangeToPrefixes(s.Start, s.End)...)
	}
	return out
}

// rangeToPrefixes splits [start, end] into CIDR blocks.
func rangeToPrefixes(start, end netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	if !start.IsValid() || !end.IsValid() || start.Is4() != end.Is4() || end.Less(start) {
		return nil
	}
	bitsTotal := start.BitLen()
	for {
		// Largest block aligned at start and not past end.
		bits := bitsTotal
		for bits > 0 {
			p := netip.PrefixFrom(start, bits-1).Masked()
			if p.Addr() != start || lastAddr(p).Compare(end) > 0 {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(start, bits)
		out = append(out, p)
		last := lastAddr(p)
		if last == end || !last.Next().IsValid() {
			return out
		}
		start = last.Next()
	}
}
