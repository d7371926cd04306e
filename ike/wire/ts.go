package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// TS is the Traffic Selector payload, TSi or TSr (RFC 7296 §3.13).
type TS struct {
	Responder bool // false: TSi (44), true: TSr (45)
	Selectors []Selector
}

// Selector is one traffic selector. For TSIPv4AddrRange and
// TSIPv6AddrRange the address family must match the type, Start <= End and
// StartPort <= EndPort, except for OPAQUE ports (StartPort 65535, EndPort 0,
// RFC 7296 §3.13.1). Other selector types (e.g. TSSecLabel) are kept
// opaque in Data: IPProtocol holds their second octet and Data everything
// after the Selector Length field; their port and address fields are unused.
type Selector struct {
	Type               uint8 // TSIPv4AddrRange, TSIPv6AddrRange, ...
	IPProtocol         uint8 // 0 = any
	StartPort, EndPort uint16
	Start, End         netip.Addr
	Data               []byte // body of selector types other than 7 and 8
}

// Selector lengths of the address-range types.
const (
	selectorLenIPv4 = 16
	selectorLenIPv6 = 40
)

// Type returns PayloadTSi or PayloadTSr.
func (p *TS) Type() PayloadType {
	if p != nil && p.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

// check validates an address-range selector.
func (s *Selector) check() error {
	switch s.Type {
	case TSIPv4AddrRange:
		if !s.Start.Is4() || !s.End.Is4() {
			return fmt.Errorf("TS_IPV4_ADDR_RANGE with addresses %v-%v", s.Start, s.End)
		}
	case TSIPv6AddrRange:
		if !s.Start.Is6() || !s.End.Is6() || s.Start.Zone() != "" || s.End.Zone() != "" {
			return fmt.Errorf("TS_IPV6_ADDR_RANGE with addresses %v-%v", s.Start, s.End)
		}
	default:
		return nil
	}
	if s.Start.Compare(s.End) > 0 {
		return fmt.Errorf("start address %v after end address %v", s.Start, s.End)
	}
	opaque := s.StartPort == 0xffff && s.EndPort == 0
	if s.StartPort > s.EndPort && !opaque {
		return fmt.Errorf("start port %d after end port %d", s.StartPort, s.EndPort)
	}
	return nil
}

func (p *TS) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("TS payload", "nil payload")
	}
	w := where(p.Type())
	if len(p.Selectors) == 0 || len(p.Selectors) > 0xff {
		return b, encodeErr(w, "%d selectors, want 1..255", len(p.Selectors))
	}
	b = append(b, byte(len(p.Selectors)), 0, 0, 0)
	for i := range p.Selectors {
		s := &p.Selectors[i]
		if err := s.check(); err != nil {
			return b, encodeErr(w, "selector %d: %v", i+1, err)
		}
		switch s.Type {
		case TSIPv4AddrRange, TSIPv6AddrRange:
			if len(s.Data) != 0 {
				return b, encodeErr(w, "selector %d: Data set on an address-range selector", i+1)
			}
			n := selectorLenIPv4
			if s.Type == TSIPv6AddrRange {
				n = selectorLenIPv6
			}
			b = append(b, s.Type, s.IPProtocol)
			b = binary.BigEndian.AppendUint16(b, uint16(n))
			b = binary.BigEndian.AppendUint16(b, s.StartPort)
			b = binary.BigEndian.AppendUint16(b, s.EndPort)
			b = append(b, s.Start.AsSlice()...)
			b = append(b, s.End.AsSlice()...)
		default:
			if 4+len(s.Data) > 0xffff {
				return b, encodeErr(w, "selector %d: %d bytes of data", i+1, len(s.Data))
			}
			b = append(b, s.Type, s.IPProtocol)
			b = binary.BigEndian.AppendUint16(b, uint16(4+len(s.Data)))
			b = append(b, s.Data...)
		}
	}
	return b, nil
}

func parseTS(t PayloadType, body []byte) (*TS, error) {
	w := where(t)
	if len(body) < 4 {
		return nil, malformed(w, "body is %d bytes, want at least 4", len(body))
	}
	count := int(body[0])
	if count == 0 {
		return nil, malformed(w, "Number of TSs is 0")
	}
	p := &TS{Responder: t == PayloadTSr, Selectors: make([]Selector, 0, min(count, len(body)/selectorLenIPv4))}
	rest := body[4:]
	for i := 1; i <= count; i++ {
		if len(rest) < 4 {
			return nil, malformed(w, "selector %d of %d: %d bytes left, want at least 4", i, count, len(rest))
		}
		s := Selector{Type: rest[0], IPProtocol: rest[1]}
		n := int(binary.BigEndian.Uint16(rest[2:4]))
		if n < 4 || n > len(rest) {
			return nil, malformed(w, "selector %d: Selector Length %d outside 4..%d", i, n, len(rest))
		}
		switch s.Type {
		case TSIPv4AddrRange, TSIPv6AddrRange:
			want, alen := selectorLenIPv4, 4
			if s.Type == TSIPv6AddrRange {
				want, alen = selectorLenIPv6, 16
			}
			if n != want {
				return nil, malformed(w, "selector %d: Selector Length %d, want %d for type %d", i, n, want, s.Type)
			}
			s.StartPort = binary.BigEndian.Uint16(rest[4:6])
			s.EndPort = binary.BigEndian.Uint16(rest[6:8])
			s.Start, _ = netip.AddrFromSlice(rest[8 : 8+alen])
			s.End, _ = netip.AddrFromSlice(rest[8+alen : 8+2*alen])
			if err := s.check(); err != nil {
				return nil, malformed(w, "selector %d: %v", i, err)
			}
		default:
			s.Data = orNil(rest[4:n])
		}
		p.Selectors = append(p.Selectors, s)
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return nil, malformed(w, "%d bytes after %d selectors", len(rest), count)
	}
	return p, nil
}
