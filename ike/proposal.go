package ike

import (
	"fmt"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// Transform types (RFC 7296 §3.3.2).
const (
	transformEncr  uint8 = 1
	transformPRF   uint8 = 2
	transformInteg uint8 = 3
	transformKE    uint8 = 4
	transformESN   uint8 = 5
)

// Suite is one negotiated set of algorithms.
type Suite struct {
	Encr    uint16
	KeyBits int
	Integ   uint16
	PRF     uint16 // IKE only
	DH      uint16 // IKE, or PFS group for a Child SA (0 = none)
	ESN     bool   // Child SA only
	// AddKE are the additional key exchanges ADDKE1..ADDKE7 of RFC 9370
	// (0 = none), run after DH in this order.
	AddKE [7]uint16
}

// String names the suite as strongSwan prints it, e.g.
// "AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519".
func (s Suite) String() string {
	out := ikecrypto.AlgorithmName(transformEncr, s.Encr, s.KeyBits)
	if s.Integ != 0 {
		out += "/" + ikecrypto.AlgorithmName(transformInteg, s.Integ, 0)
	}
	if s.PRF != 0 {
		out += "/" + ikecrypto.AlgorithmName(transformPRF, s.PRF, 0)
	}
	if s.DH != 0 {
		out += "/" + ikecrypto.AlgorithmName(transformKE, s.DH, 0)
	}
	for _, g := range s.AddKE {
		if g != 0 {
			out += "/" + ikecrypto.AlgorithmName(transformKE, g, 0)
		}
	}
	return out
}

// wireProposals turns configured proposals into SA payload proposals,
// numbered from 1, with spi for every proposal (nil for IKE_SA_INIT).
func wireProposals(ps []ikecrypto.Proposal, protocol uint8, spi []byte) []wire.Proposal {
	out := make([]wire.Proposal, 0, len(ps))
	for i, p := range ps {
		wp := wire.Proposal{Number: uint8(i + 1), Protocol: protocol, SPI: spi}
		hasESN := false
		for _, a := range p.Algorithms {
			if a.Type == transformESN {
				hasESN = true
			}
			wp.Transforms = append(wp.Transforms, wire.Transform{Type: a.Type, ID: a.ID, KeyLength: uint16(a.KeyBits)})
		}
		if protocol == wire.ProtoESP && !hasESN {
			wp.Transforms = append(wp.Transforms, wire.Transform{Type: transformESN, ID: ikecrypto.ESNNo})
		}
		out = append(out, wp)
	}
	return out
}

// firstGroup is the DH group of the first proposal that has one.
func firstGroup(ps []ikecrypto.Proposal) uint16 {
	for _, p := range ps {
		for _, a := range p.Algorithms {
			if a.Type == transformKE {
				return a.ID
			}
		}
	}
	return 0
}

// offersGroup reports whether any proposal lists group.
func offersGroup(ps []ikecrypto.Proposal, group uint16) bool {
	for _, p := range ps {
		for _, a := range p.Algorithms {
			if a.Type == transformKE && a.ID == group {
				return true
			}
		}
	}
	return false
}

// checkChosen validates the responder's SA payload against what was offered
// (RFC 7296 §3.3.6: exactly one proposal, one transform of each type, all
// taken from the offered proposal with the same number) and returns the suite.
func checkChosen(sa *wire.SA, offered []wire.Proposal, protocol uint8) (Suite, []byte, error) {
	if sa == nil {
		return Suite{}, nil, fmt.Errorf("ike: response has no SA payload")
	}
	if len(sa.Proposals) != 1 {
		return Suite{}, nil, fmt.Errorf("ike: responder chose %d proposals, want exactly 1", len(sa.Proposals))
	}
	got := sa.Proposals[0]
	if got.Protocol != protocol {
		return Suite{}, nil, fmt.Errorf("ike: responder chose protocol %d, want %d", got.Protocol, protocol)
	}
	var off *wire.Proposal
	for i := range offered {
		if offered[i].Number == got.Number {
			off = &offered[i]
		}
	}
	if off == nil {
		return Suite{}, nil, fmt.Errorf("ike: responder chose proposal #%d, which was not offered", got.Number)
	}
	var s Suite
	seen := map[uint8]bool{}
	for _, t := range got.Transforms {
		if seen[t.Type] {
			return Suite{}, nil, fmt.Errorf("ike: responder chose two transforms of type %d", t.Type)
		}
		seen[t.Type] = true
		found := false
		for _, o := range off.Transforms {
			if o.Type == t.Type && o.ID == t.ID && o.KeyLength == t.KeyLength {
				found = true
			}
		}
		if !found {
			return Suite{}, nil, fmt.Errorf("ike: responder chose transform %s, which was not offered",
				ikecrypto.AlgorithmName(t.Type, t.ID, int(t.KeyLength)))
		}
		switch t.Type {
		case transformEncr:
			s.Encr, s.KeyBits = t.ID, int(t.KeyLength)
		case transformPRF:
			s.PRF = t.ID
		case transformInteg:
			s.Integ = t.ID
		case transformKE:
			s.DH = t.ID
		case transformESN:
			s.ESN = t.ID == ikecrypto.ESNYes
		case 6, 7, 8, 9, 10, 11, 12:
			s.AddKE[t.Type-ikecrypto.TransformAddKE1] = t.ID
		default:
			return Suite{}, nil, fmt.Errorf("ike: responder chose unsupported transform type %d", t.Type)
		}
	}
	if !seen[transformEncr] {
		return Suite{}, nil, fmt.Errorf("ike: responder chose no encryption algorithm")
	}
	if protocol == wire.ProtoIKE && (!seen[transformPRF] || !seen[transformKE]) {
		return Suite{}, nil, fmt.Errorf("ike: responder chose no PRF or key exchange")
	}
	if !ikecrypto.IsAEAD(s.Encr) && s.Integ == ikecrypto.IntegNone {
		return Suite{}, nil, fmt.Errorf("ike: responder chose no integrity algorithm for a non-AEAD cipher")
	}
	if s.HasAddKE() && s.DH == 0 {
		return Suite{}, nil, fmt.Errorf("ike: responder chose additional key exchanges without a key exchange")
	}
	if err := checkAddKEChosen(off, seen, s.DH != 0); err != nil {
		return Suite{}, nil, err
	}
	return s, got.SPI, nil
}
