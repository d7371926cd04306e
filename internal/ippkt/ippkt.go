// Package ippkt reads the few fields of an IP packet that the data plane
// needs to match traffic selectors, without allocating.
package ippkt

import (
	"net/netip"

	"github.com/qcdvpn/qcdvpn/esp"
)

// Header returns the ESP next-header value (esp.NextHeaderIPv4 or
// esp.NextHeaderIPv6) and the source and destination addresses of the IP
// packet p; ok is false if p is too short or not IPv4 or IPv6.
func Header(p []byte) (nextHeader byte, src, dst netip.Addr, ok bool) {
	if len(p) < 1 {
		return 0, src, dst, false
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return 0, src, dst, false
		}
		return esp.NextHeaderIPv4, netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20])), true
	case 6:
		if len(p) < 40 {
			return 0, src, dst, false
		}
		return esp.NextHeaderIPv6, netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40])), true
	}
	return 0, src, dst, false
}

// Contains reports whether one of ps contains a.
func Contains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
