package auth

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ID types of the IDi/IDr payloads (RFC 7296 §3.5). IDAny is not a wire
// type: it is the zero Identity and means "any identity" where an expected
// identity is asked for.
const (
	IDAny    uint8 = 0
	IDIPv4   uint8 = 1  // ID_IPV4_ADDR
	IDFQDN   uint8 = 2  // ID_FQDN
	IDRFC822 uint8 = 3  // ID_RFC822_ADDR
	IDIPv6   uint8 = 5  // ID_IPV6_ADDR
	IDDN     uint8 = 9  // ID_DER_ASN1_DN
	IDGN     uint8 = 10 // ID_DER_ASN1_GN
	IDKeyID  uint8 = 11 // ID_KEY_ID
)

// Identity is the content of an IDi or IDr payload: its type and data.
type Identity struct {
	Type uint8
	Data []byte
}

// ParseIdentity converts a configured identity string, strongSwan-style,
// without failing:
//
//	"" or "%any"           -> IDAny (matches any peer identity)
//	"@#0a1b..."            -> KEY_ID with the hex-decoded bytes
//	"@@user.example"       -> RFC822 "user.example"
//	"@name"                -> FQDN "name" (no DNS lookup, no IP parsing)
//	"192.0.2.1", "2001:db8::1" -> IPv4 / IPv6
//	"C=CH, O=x, CN=gw"     -> DER_ASN1_DN (any string with '=')
//	"user@host"            -> RFC822
//	anything else          -> FQDN
//
// A string with '=' that is not a valid DN becomes a KEY_ID holding the
// string itself, as strongSwan does; use ParseIdentityStrict to get an
// error instead.
func ParseIdentity(s string) Identity {
	id, err := ParseIdentityStrict(s)
	if err != nil {
		return Identity{Type: IDKeyID, Data: []byte(s)}
	}
	return id
}

// ParseIdentityStrict is ParseIdentity that reports malformed input (bad
// DN, bad key-id hex) instead of falling back to a KEY_ID.
func ParseIdentityStrict(s string) (Identity, error) {
	switch {
	case s == "" || s == "%any":
		return Identity{}, nil
	case strings.HasPrefix(s, "@#"):
		b, err := hex.DecodeString(strings.ReplaceAll(s[2:], ":", ""))
		if err != nil || len(b) == 0 {
			return Identity{}, fmt.Errorf("auth: identity %q: key id is not hex", s)
		}
		return Identity{Type: IDKeyID, Data: b}, nil
	case strings.HasPrefix(s, "@@"):
		return Identity{Type: IDRFC822, Data: []byte(s[2:])}, nil
	case strings.HasPrefix(s, "@"):
		return Identity{Type: IDFQDN, Data: []byte(s[1:])}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.WithZone("") // zones mean nothing to a peer
		if a.Is4() {
			b := a.As4()
			return Identity{Type: IDIPv4, Data: b[:]}, nil
		}
		b := a.As16()
		return Identity{Type: IDIPv6, Data: b[:]}, nil
	}
	if strings.Contains(s, "=") {
		der, err := parseDNString(s)
		if err != nil {
			return Identity{}, fmt.Errorf("auth: identity %q: %w", s, err)
		}
		return Identity{Type: IDDN, Data: der}, nil
	}
	if strings.Contains(s, "@") {
		return Identity{Type: IDRFC822, Data: []byte(s)}, nil
	}
	return Identity{Type: IDFQDN, Data: []byte(s)}, nil
}

// IsAny reports whether id is the IDAny wildcard.
func (id Identity) IsAny() bool { return id.Type == IDAny && len(id.Data) == 0 }

// String renders id for humans and logs: addresses in their usual form,
// names as text, DNs like strongSwan ("C=CH, O=x, CN=gw"), key ids as
// "@#hex". Non-printable data is quoted, so the result is always safe to log.
func (id Identity) String() string {
	switch id.Type {
	case IDAny:
		if len(id.Data) == 0 {
			return "%any"
		}
	case IDIPv4:
		if len(id.Data) == 4 {
			return netip.AddrFrom4([4]byte(id.Data)).String()
		}
	case IDIPv6:
		if len(id.Data) == 16 {
			return netip.AddrFrom16([16]byte(id.Data)).String()
		}
	case IDFQDN, IDRFC822:
		return printable(id.Data)
	case IDDN:
		if attrs, err := parseDNDER(id.Data); err == nil {
			return formatDN(attrs)
		}
	case IDKeyID:
		return "@#" + hex.EncodeToString(id.Data)
	}
	return fmt.Sprintf("(ID type %d) %x", id.Type, id.Data)
}

// printable returns b as text if it is valid UTF-8 without control
// characters, else Go-quoted.
func printable(b []byte) string {
	if utf8.Valid(b) && !bytes.ContainsFunc(b, unicode.IsControl) {
		return string(b)
	}
	return strconv.Quote(string(b))
}

// Equal reports whether id and o denote the same identity. FQDN and RFC822
// compare case-insensitively (ignoring a trailing dot of an FQDN); DNs
// compare by their parsed attributes (string type and letter case do not
// matter) and fall back to raw bytes when one does not parse.
func (id Identity) Equal(o Identity) bool {
	if id.Type != o.Type {
		return false
	}
	switch id.Type {
	case IDFQDN:
		return strings.EqualFold(strings.TrimSuffix(string(id.Data), "."), strings.TrimSuffix(string(o.Data), "."))
	case IDRFC822:
		return strings.EqualFold(string(id.Data), string(o.Data))
	case IDDN:
		a, errA := parseDNDER(id.Data)
		b, errB := parseDNDER(o.Data)
		if errA == nil && errB == nil {
			return dnEqual(a, b)
		}
	}
	return bytes.Equal(id.Data, o.Data)
}

// Body returns the ID payload body signed by AUTH: IDType | RESERVED(3) |
// data (RFC 7296 §2.15 RestOfInitIDPayload / RestOfRespIDPayload).
func (id Identity) Body() []byte {
	out := make([]byte, 4+len(id.Data))
	out[0] = id.Type
	copy(out[4:], id.Data)
	return out
}

// ParseIDBody decodes an ID payload body (IDType | RESERVED(3) | data).
// The reserved octets are ignored on receipt, as RFC 7296 §3.5 asks. The
// returned data is a copy.
func ParseIDBody(b []byte) (Identity, error) {
	if len(b) < 4 {
		return Identity{}, fmt.Errorf("auth: ID payload body is %d octets, need at least 4", len(b))
	}
	id := Identity{Type: b[0], Data: bytes.Clone(b[4:])}
	if id.Type == IDAny {
		return Identity{}, errors.New("auth: ID payload has reserved ID type 0")
	}
	return id, nil
}
