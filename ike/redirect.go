package ike

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// RedirectTarget is the gateway a REDIRECT names (RFC 5685 §9.2): an
// address or a DNS name.
type RedirectTarget struct {
	Addr netip.Addr // when the target is an address
	FQDN string     // when it is a name
}

// String is the address or the name.
func (t RedirectTarget) String() string {
	if t.Addr.IsValid() {
		return t.Addr.String()
	}
	return t.FQDN
}

// ParseRedirectTarget reads an IP literal or a DNS name.
func ParseRedirectTarget(s string) (RedirectTarget, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return RedirectTarget{Addr: a.Unmap()}, nil
	}
	if s == "" || len(s) > 255 || strings.ContainsAny(s, " /:") {
		return RedirectTarget{}, fmt.Errorf("redirect target %q is neither an IP address nor a DNS name", s)
	}
	return RedirectTarget{FQDN: s}, nil
}

// GW Ident Types of RFC 5685 §9.2.
const (
	gwIdentIPv4 = 1
	gwIdentIPv6 = 2
	gwIdentFQDN = 3
)

// encodeRedirect builds REDIRECT (nonce set: IKE_SA_INIT) or
// REDIRECTED_FROM (nonce nil) data.
func encodeRedirect(t RedirectTarget, nonce []byte) []byte {
	var typ byte
	var id []byte
	switch {
	case t.Addr.Is4():
		typ, id = gwIdentIPv4, t.Addr.AsSlice()
	case t.Addr.Is6():
		typ, id = gwIdentIPv6, t.Addr.AsSlice()
	default:
		typ, id = gwIdentFQDN, []byte(t.FQDN)
	}
	b := append([]byte{typ, byte(len(id))}, id...)
	return append(b, nonce...)
}

var errBadRedirect = errors.New("ike: malformed REDIRECT")

// parseRedirect reads REDIRECT data: the target and the nonce data that
// follows it (empty outside IKE_SA_INIT).
func parseRedirect(b []byte) (RedirectTarget, []byte, error) {
	if len(b) < 2 || len(b) < 2+int(b[1]) {
		return RedirectTarget{}, nil, errBadRedirect
	}
	id, rest := b[2:2+int(b[1])], b[2+int(b[1]):]
	var t RedirectTarget
	switch b[0] {
	case gwIdentIPv4, gwIdentIPv6:
		a, ok := netip.AddrFromSlice(id)
		if !ok || (b[0] == gwIdentIPv4) != (len(id) == 4) || a.IsUnspecified() {
			return RedirectTarget{}, nil, errBadRedirect
		}
		t.Addr = a
	case gwIdentFQDN:
		tt, err := ParseRedirectTarget(string(id))
		if err != nil || tt.FQDN == "" {
			return RedirectTarget{}, nil, errBadRedirect
		}
		t = tt
	default:
		return RedirectTarget{}, nil, errBadRedirect
	}
	return t, rest, nil
}

// RedirectError ends an attempt or a session the gateway redirected
// (RFC 5685): connect to To instead.
type RedirectError struct {
	To    RedirectTarget
	Phase string // "IKE_SA_INIT", "IKE_AUTH" or "session"
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("gateway redirected us to %s (%s)", e.To, e.Phase)
}

// Redirect tells the peer of an established SA to move to target (RFC
// 5685 §5); it answers, and we then expect it to delete the SA. False if
// the session has ended or the peer never said it supports redirects.
func (s *Session) Redirect(target RedirectTarget) bool {
	if !s.redirectOK {
		return false
	}
	return s.SendNotifies([]*wire.Notify{{NotifyType: wire.NotifyRedirect, Data: encodeRedirect(target, nil)}})
}

// redirectNotifies are what an IKE_SA_INIT request says about redirects.
func (st *initState) redirectNotifies() []wire.Payload {
	if st.cfg.RedirectedFrom.IsValid() {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyRedirectedFrom,
			Data: encodeRedirect(RedirectTarget{Addr: st.cfg.RedirectedFrom}, nil)}}
	}
	return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyRedirectSupported}}
}

// peerSupportsRedirect reports whether an IKE_SA_INIT request allows us
// to redirect its sender (§3: never redirect one that did not say so).
func peerSupportsRedirect(m *wire.Message) bool {
	return m.Notify(wire.NotifyRedirectSupported) != nil || m.Notify(wire.NotifyRedirectedFrom) != nil
}
