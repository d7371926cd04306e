package ike

import (
	"fmt"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// Additional key exchanges (RFC 9370): proposal handling shared by
// IKE_SA_INIT, IKE_INTERMEDIATE and CREATE_CHILD_SA/IKE_FOLLOWUP_KE.

func isAddKEType(t uint8) bool {
	return t >= ikecrypto.TransformAddKE1 && t <= ikecrypto.TransformAddKE7
}

// HasAddKE reports whether any additional key exchange was negotiated.
func (s Suite) HasAddKE() bool {
	for _, g := range s.AddKE {
		if g != 0 {
			return true
		}
	}
	return false
}

// addKEs lists the negotiated additional key exchanges in the order they
// run (ADDKE1 first), NONE left out.
func (s Suite) addKEs() []uint16 {
	var out []uint16
	for _, g := range s.AddKE {
		if g != 0 {
			out = append(out, g)
		}
	}
	return out
}

// KeyExchanges names every key exchange that went into the SA's keys, in
// the order they ran, e.g. ["CURVE_25519", "ML_KEM_768"]: what apps show
// to tell a quantum-safe tunnel from a classical one.
func (s Suite) KeyExchanges() []string {
	var out []string
	if s.DH != 0 {
		out = append(out, ikecrypto.AlgorithmName(transformKE, s.DH, 0))
	}
	for _, g := range s.addKEs() {
		out = append(out, ikecrypto.AlgorithmName(transformKE, g, 0))
	}
	return out
}

// checkAddKEChosen: a responder that answered without an ADDKE type we
// offered (one that does not know RFC 9370) is accepted only where we
// offered NONE for that type; keyed says the SA has a key exchange at all
// (the first Child SA of IKE_AUTH has none, so ADDKE does not apply).
func checkAddKEChosen(off *wire.Proposal, seen map[uint8]bool, keyed bool) error {
	if !keyed {
		return nil
	}
	for t := ikecrypto.TransformAddKE1; t <= ikecrypto.TransformAddKE7; t++ {
		if seen[t] {
			continue
		}
		offered, optional := false, false
		for _, o := range off.Transforms {
			if o.Type == t {
				offered = true
				optional = optional || o.ID == ikecrypto.GroupNone
			}
		}
		if offered && !optional {
			return fmt.Errorf("ike: responder chose no additional key exchange %d, which we require", t-ikecrypto.TransformAddKE1+1)
		}
	}
	return nil
}

// addKECovered is the responder's rule for one ADDKE type: a type op
// requires (lists without NONE) must be offered by the peer. Only
// proposals with a key exchange are concerned.
func addKECovered(pp wire.Proposal, op ikecrypto.Proposal, typ uint8) bool {
	hasKE := false
	peerOffers := false
	for _, t := range pp.Transforms {
		hasKE = hasKE || t.Type == transformKE
		peerOffers = peerOffers || t.Type == typ
	}
	if !hasKE || peerOffers {
		return true
	}
	required := false
	for _, a := range op.Algorithms {
		if a.Type == typ {
			if a.ID == ikecrypto.GroupNone {
				return true
			}
			required = true
		}
	}
	return !required
}

// withoutAddKE makes the peer's proposals ones without additional key
// exchanges, for an initiator that cannot run IKE_INTERMEDIATE: where it
// offered NONE for an ADDKE type only NONE is left, and proposals that
// require one are dropped.
func withoutAddKE(ps []wire.Proposal) []wire.Proposal {
	var out []wire.Proposal
next:
	for _, p := range ps {
		var ts []wire.Transform
		for t := ikecrypto.TransformAddKE1; t <= ikecrypto.TransformAddKE7; t++ {
			offered, none := false, false
			for _, x := range p.Transforms {
				if x.Type == t {
					offered = true
					none = none || x.ID == ikecrypto.GroupNone
				}
			}
			if offered && !none {
				continue next
			}
		}
		for _, x := range p.Transforms {
			if !isAddKEType(x.Type) || x.ID == ikecrypto.GroupNone {
				ts = append(ts, x)
			}
		}
		p.Transforms = ts
		out = append(out, p)
	}
	return out
}

// offersAddKE reports whether any proposal has an additional key exchange
// other than NONE; only then does the initiator announce IKE_INTERMEDIATE.
func offersAddKE(ps []ikecrypto.Proposal) bool {
	for _, p := range ps {
		for _, a := range p.Algorithms {
			if isAddKEType(a.Type) && a.ID != ikecrypto.GroupNone {
				return true
			}
		}
	}
	return false
}
