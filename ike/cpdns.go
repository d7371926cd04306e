package ike

import (
	"github.com/qcdvpn/qcdvpn/ike/wire"

	"errors"
	"fmt"
	"strings"
)

// RFC 8598 split DNS: the client asks for INTERNAL_DNS_DOMAIN with an
// empty value and the gateway answers with one attribute per domain that
// its INTERNAL_IP4_DNS / INTERNAL_IP6_DNS servers resolve.

// maxDNSDomains bounds how many split-DNS domains one CP reply may add: a
// gateway cannot grow the client's memory or resolver config without end.
const maxDNSDomains = 64

// ParseDNSDomain reads the value of an INTERNAL_DNS_DOMAIN attribute (RFC
// 8598 §4.1): a domain name in DNS presentation format, IDNA A-labels,
// not NUL-terminated. It returns the name in lower case without a
// trailing dot, or why the value is not a usable domain; the root (".")
// is refused, since a split domain of "." is no split.
func ParseDNSDomain(b []byte) (string, error) {
	if len(b) == 0 {
		return "", errors.New("INTERNAL_DNS_DOMAIN: empty")
	}
	s := string(b)
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", errors.New("INTERNAL_DNS_DOMAIN: the root is not a split domain")
	}
	if len(s) > 253 {
		return "", fmt.Errorf("INTERNAL_DNS_DOMAIN: %d octets, more than 253", len(s))
	}
	for i, label := range strings.Split(s, ".") {
		if err := checkDNSLabel(label); err != nil {
			return "", fmt.Errorf("INTERNAL_DNS_DOMAIN: label %d: %v", i+1, err)
		}
	}
	return strings.ToLower(s), nil
}

// checkDNSLabel accepts letters, digits, '-' (not first or last) and '_'
// (service labels), 1..63 octets: what a resolver can route on. Escapes
// of presentation format (\DDD) are refused, as no split domain needs them.
func checkDNSLabel(l string) error {
	if l == "" {
		return errors.New("empty label")
	}
	if len(l) > 63 {
		return fmt.Errorf("%d octets, more than 63", len(l))
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case c == '-':
			if i == 0 || i == len(l)-1 {
				return errors.New("'-' at the start or end of a label")
			}
		default:
			return fmt.Errorf("byte %#02x is not a letter, digit, '-' or '_'", c)
		}
	}
	return nil
}

// addDNSDomain keeps one INTERNAL_DNS_DOMAIN of the gateway's CP reply;
// an unusable one is logged and skipped (the others still apply).
func (s *Session) addDNSDomain(v []byte) {
	d, err := ParseDNSDomain(v)
	if err != nil {
		s.log.Warn("ignoring a split-DNS domain", "err", err)
		return
	}
	if len(s.Domains) >= maxDNSDomains {
		s.log.Warn("ignoring split-DNS domains past the limit", "limit", maxDNSDomains)
		return
	}
	for _, have := range s.Domains {
		if have == d {
			return
		}
	}
	s.Domains = append(s.Domains, d)
}

// dnsDomainAttrs are the INTERNAL_DNS_DOMAIN attributes of a CP reply:
// only when asked for and when the reply names a DNS server (RFC 8598
// §3.2 requires one).
func (r *Responder) dnsDomainAttrs(reply *wire.CP, asked bool) []wire.CPAttribute {
	if !asked || len(r.cfg.DNSDomains) == 0 {
		return nil
	}
	hasServer := false
	for _, a := range reply.Attributes {
		if a.Type == wire.CPInternalIP4DNS || a.Type == wire.CPInternalIP6DNS {
			hasServer = true
		}
	}
	if !hasServer {
		return nil
	}
	out := make([]wire.CPAttribute, 0, len(r.cfg.DNSDomains))
	for _, d := range r.cfg.DNSDomains {
		out = append(out, wire.CPAttribute{Type: wire.CPInternalDNSDomain, Value: []byte(d)})
	}
	return out
}
