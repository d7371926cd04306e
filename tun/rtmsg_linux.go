package tun

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Message bodies for rtnetlink, encoded by hand (host byte order) so that no unsafe struct
// casts are needed.

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func familyOf(v int) uint8 {
	if v == 4 {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// linkMsg brings interface index up and sets its MTU (struct ifinfomsg + IFLA_MTU).
func linkMsg(index int32, mtu int) []byte {
	var a attrs
	h := make([]byte, unix.SizeofIfInfomsg)
	h[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(h[4:], uint32(index))
	binary.NativeEndian.PutUint32(h[8:], unix.IFF_UP)  // ifi_flags
	binary.NativeEndian.PutUint32(h[12:], unix.IFF_UP) // ifi_change: only touch IFF_UP
	a.raw(h)
	a.u32(unix.IFLA_MTU, uint32(mtu))
	return a.b
}

// addrMsg adds or removes address p on interface index (struct ifaddrmsg + attributes).
func addrMsg(index int32, p netip.Prefix) []byte {
	var a attrs
	h := make([]byte, unix.SizeofIfAddrmsg)
	h[0] = family(p.Addr())
	h[1] = uint8(p.Bits())
	h[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(h[4:], uint32(index))
	a.raw(h)
	ip := p.Addr().AsSlice()
	a.add(unix.IFA_LOCAL, ip)
	a.add(unix.IFA_ADDRESS, ip)
	if p.Addr().Is6() {
		// A tunnel has no neighbours to collide with; DAD would only delay the address.
		a.u32(unix.IFA_FLAGS, unix.IFA_F_NODAD)
	}
	return a.b
}

// routeMsg builds a route in table: unicast via interface oif, or (oif 0) a throw route.
// For deletion the scope is RT_SCOPE_NOWHERE, which the kernel reads as "any scope".
func routeMsg(table uint32, dst netip.Prefix, oif int32, del bool) []byte {
	var a attrs
	h := make([]byte, unix.SizeofRtMsg)
	h[0] = family(dst.Addr())
	h[1] = uint8(dst.Bits())
	if table < 256 {
		h[4] = uint8(table)
	}
	h[5] = unix.RTPROT_STATIC
	switch {
	case del:
		h[6] = unix.RT_SCOPE_NOWHERE
	case oif != 0:
		h[6] = unix.RT_SCOPE_LINK
	default:
		h[6] = unix.RT_SCOPE_UNIVERSE
	}
	if oif != 0 {
		h[7] = unix.RTN_UNICAST
	} else {
		h[7] = unix.RTN_THROW
	}
	a.raw(h)
	a.u32(unix.RTA_TABLE, table)
	if dst.Bits() > 0 {
		a.add(unix.RTA_DST, dst.Addr().AsSlice())
	}
	if oif != 0 {
		a.u32(unix.RTA_OIF, uint32(oif))
	}
	return a.b
}

// ruleSpec is one policy routing rule we install.
type ruleSpec struct {
	family   uint8
	prio     uint32
	table    uint32
	fwmark   uint32 // with notMark: "not fwmark M"
	notMark  bool
	suppress bool // suppress_prefixlength 0
}

// ruleMsg encodes r (struct fib_rule_hdr + FRA_* attributes).
func ruleMsg(r ruleSpec) []byte {
	var a attrs
	h := make([]byte, 12) // sizeof(struct fib_rule_hdr)
	h[0] = r.family
	if r.table < 256 {
		h[4] = uint8(r.table)
	}
	h[7] = unix.FR_ACT_TO_TBL
	if r.notMark {
		binary.NativeEndian.PutUint32(h[8:], unix.FIB_RULE_INVERT)
	}
	a.raw(h)
	a.u32(unix.FRA_TABLE, r.table)
	a.u32(unix.FRA_PRIORITY, r.prio)
	if r.notMark {
		a.u32(unix.FRA_FWMARK, r.fwmark)
		a.u32(unix.FRA_FWMASK, 0xffffffff)
	}
	if r.suppress {
		a.u32(unix.FRA_SUPPRESS_PREFIXLEN, 0)
	}
	return a.b
}

// ruleInfo is what a rule dump tells us about the tables and marks already in use.
type ruleInfo struct {
	table  uint32
	fwmark uint32
}

// parseRule decodes one RTM_NEWRULE dump entry.
func parseRule(body []byte) (ruleInfo, bool) {
	if len(body) < 12 {
		return ruleInfo{}, false
	}
	ri := ruleInfo{table: uint32(body[4])}
	walkAttrs(body[12:], func(typ uint16, v []byte) {
		if len(v) < 4 {
			return
		}
		switch typ {
		case unix.FRA_TABLE:
			ri.table = binary.NativeEndian.Uint32(v)
		case unix.FRA_FWMARK:
			ri.fwmark = binary.NativeEndian.Uint32(v)
		}
	})
	return ri, true
}
