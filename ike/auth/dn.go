package auth

import (
	"bytes"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// dnAttr is one attribute of a distinguished name, flattened out of its
// RDN (multi-valued RDNs are rare and strongSwan flattens them too).
type dnAttr struct {
	oid   asn1.ObjectIdentifier
	value asn1.RawValue
}

// attrTypeValue is AttributeTypeAndValue (RFC 5280 §4.1.2.4).
type attrTypeValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rdnSET is a RelativeDistinguishedName; encoding/asn1 makes a slice type
// whose name ends in "SET" a SET OF.
type rdnSET []attrTypeValue

var (
	oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidCountry      = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidDC           = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
)

// dnNames maps attribute names to OIDs, case-insensitively on input. The
// first name listed for an OID is the one printed.
var dnNames = []struct {
	name string
	oid  asn1.ObjectIdentifier
}{
	{"C", oidCountry},
	{"ST", asn1.ObjectIdentifier{2, 5, 4, 8}},
	{"L", asn1.ObjectIdentifier{2, 5, 4, 7}},
	{"O", asn1.ObjectIdentifier{2, 5, 4, 10}},
	{"OU", asn1.ObjectIdentifier{2, 5, 4, 11}},
	{"CN", asn1.ObjectIdentifier{2, 5, 4, 3}},
	{"E", oidEmailAddress},
	{"Email", oidEmailAddress},
	{"emailAddress", oidEmailAddress},
	{"serialNumber", asn1.ObjectIdentifier{2, 5, 4, 5}},
	{"SN", asn1.ObjectIdentifier{2, 5, 4, 5}}, // strongSwan's meaning of SN
	{"surname", asn1.ObjectIdentifier{2, 5, 4, 4}},
	{"street", asn1.ObjectIdentifier{2, 5, 4, 9}},
	{"T", asn1.ObjectIdentifier{2, 5, 4, 12}},
	{"title", asn1.ObjectIdentifier{2, 5, 4, 12}},
	{"G", asn1.ObjectIdentifier{2, 5, 4, 42}},
	{"givenName", asn1.ObjectIdentifier{2, 5, 4, 42}},
	{"I", asn1.ObjectIdentifier{2, 5, 4, 43}},
	{"initials", asn1.ObjectIdentifier{2, 5, 4, 43}},
	{"postalCode", asn1.ObjectIdentifier{2, 5, 4, 17}},
	{"pseudonym", asn1.ObjectIdentifier{2, 5, 4, 65}},
	{"dnQualifier", asn1.ObjectIdentifier{2, 5, 4, 46}},
	{"DC", oidDC},
	{"UID", asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}},
}

// parseDNString converts "C=CH, O=x, CN=gw" into a DER Name. RDNs are
// separated by ',', each is NAME=value where NAME is a known attribute name
// or a dotted OID. A backslash escapes the next character or, followed by
// two hex digits, gives that octet. Unescaped blanks around names and
// values are dropped.
func parseDNString(s string) ([]byte, error) {
	parts, err := splitDN(s)
	if err != nil {
		return nil, err
	}
	seq := make([]rdnSET, 0, len(parts))
	for _, p := range parts {
		oid, err := attrOID(p.key)
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(p.value) {
			return nil, fmt.Errorf("value of %s is not valid UTF-8", p.key)
		}
		v := asn1.RawValue{Class: asn1.ClassUniversal, Tag: stringTag(oid, p.value), Bytes: p.value}
		seq = append(seq, rdnSET{{Type: oid, Value: v}})
	}
	return asn1.Marshal(seq)
}

type dnPart struct {
	key   string
	value []byte
}

// splitDN tokenizes a DN string; see parseDNString.
func splitDN(s string) ([]dnPart, error) {
	var (
		out   []dnPart
		key   strings.Builder
		val   []byte
		end   int // len(val) up to the last significant octet
		inKey = true
	)
	flush := func() error {
		k := strings.TrimSpace(key.String())
		switch {
		case inKey && k == "":
			return errors.New("empty RDN in DN")
		case inKey:
			return fmt.Errorf("RDN %q has no '='", k)
		case k == "":
			return errors.New("RDN without attribute name")
		case end == 0:
			return fmt.Errorf("empty value for %s", k)
		}
		out = append(out, dnPart{key: k, value: bytes.Clone(val[:end])})
		key.Reset()
		val, end, inKey = val[:0], 0, true
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if inKey {
				return nil, fmt.Errorf("escape in attribute name at offset %d", i)
			}
			if i+1 >= len(s) {
				return nil, errors.New("DN ends with a lone backslash")
			}
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				b, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
				val = append(val, byte(b))
				i += 2
			} else {
				val = append(val, s[i+1])
				i++
			}
			end = len(val)
		case c == ',':
			if err := flush(); err != nil {
				return nil, err
			}
		case inKey && c == '=':
			inKey = false
		case inKey:
			key.WriteByte(c)
		case (c == ' ' || c == '\t') && len(val) == 0:
			// leading blank of a value
		default:
			val = append(val, c)
			if c != ' ' && c != '\t' {
				end = len(val)
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// attrOID resolves an attribute name or a dotted OID.
func attrOID(name string) (asn1.ObjectIdentifier, error) {
	for _, e := range dnNames {
		if strings.EqualFold(e.name, name) {
			return e.oid, nil
		}
	}
	parts := strings.Split(name, ".")
	if len(parts) >= 2 {
		oid := make(asn1.ObjectIdentifier, 0, len(parts))
		for _, p := range parts {
			n, err := strconv.ParseUint(p, 10, 31)
			if err != nil || p == "" || p[0] == '+' {
				oid = nil
				break
			}
			oid = append(oid, int(n))
		}
		if oid != nil && oid[0] <= 2 && (oid[0] == 2 || oid[1] < 40) {
			return oid, nil
		}
	}
	return nil, fmt.Errorf("unknown DN attribute %q", name)
}

// attrName gives the printed name of an attribute OID.
func attrName(oid asn1.ObjectIdentifier) string {
	for _, e := range dnNames {
		if e.oid.Equal(oid) {
			return e.name
		}
	}
	return oid.String()
}

// stringTag picks the ASN.1 string type like strongSwan: IA5String for
// e-mail addresses and domain components, PrintableString where the value
// allows it, else UTF8String.
func stringTag(oid asn1.ObjectIdentifier, v []byte) int {
	if (oid.Equal(oidEmailAddress) || oid.Equal(oidDC)) && isASCII(v) {
		return asn1.TagIA5String
	}
	if isPrintableString(v) {
		return asn1.TagPrintableString
	}
	return asn1.TagUTF8String
}

func isASCII(v []byte) bool {
	for _, c := range v {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// isPrintableString reports whether v fits the X.680 PrintableString set.
func isPrintableString(v []byte) bool {
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(" '()+,-./:=?", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// parseDNDER decodes a DER Name into its flattened attributes.
func parseDNDER(der []byte) ([]dnAttr, error) {
	var seq []rdnSET
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return nil, fmt.Errorf("auth: malformed DN: %v", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("auth: trailing octets after DN")
	}
	var out []dnAttr
	for _, rdn := range seq {
		for _, a := range rdn {
			out = append(out, dnAttr{oid: a.Type, value: a.Value})
		}
	}
	return out, nil
}

// attrString decodes a directory string; ok is false for values that are
// not one of the string types.
func attrString(v asn1.RawValue) (s string, ok bool) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagNumericString, 26 /* VisibleString */ :
		if !utf8.Valid(v.Bytes) {
			return "", false
		}
		return string(v.Bytes), true
	case asn1.TagT61String: // in practice Latin-1
		r := make([]rune, len(v.Bytes))
		for i, c := range v.Bytes {
			r[i] = rune(c)
		}
		return string(r), true
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(v.Bytes[2*i:])
		}
		return string(utf16.Decode(u)), true
	case 28: // UniversalString, UTF-32BE
		if len(v.Bytes)%4 != 0 {
			return "", false
		}
		var b strings.Builder
		for i := 0; i < len(v.Bytes); i += 4 {
			r := rune(binary.BigEndian.Uint32(v.Bytes[i:]))
			if !utf8.ValidRune(r) {
				return "", false
			}
			b.WriteRune(r)
		}
		return b.String(), true
	}
	return "", false
}

// formatDN prints attributes like strongSwan: "C=CH, O=x, CN=gw". Values
// that are not strings print as '#' and the hex of their DER (RFC 4514).
func formatDN(attrs []dnAttr) string {
	var b strings.Builder
	for i, a := range attrs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(attrName(a.oid))
		b.WriteByte('=')
		s, ok := attrString(a.value)
		if !ok {
			b.WriteByte('#')
			b.WriteString(hex.EncodeToString(a.value.FullBytes))
			continue
		}
		escapeDNValue(&b, s)
	}
	return b.String()
}

// escapeDNValue writes s so that splitDN reads it back unchanged.
func escapeDNValue(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ',' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(b, "\\%02x", c)
		case (c == ' ' || c == '\t') && (i == 0 || i == len(s)-1):
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
}

// dnEqual compares attribute lists in order: same OIDs, and string values
// equal after folding case and collapsing blanks (RFC 5280 §7.1 in
// spirit); non-string values must match octet for octet.
func dnEqual(a, b []dnAttr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].oid.Equal(b[i].oid) {
			return false
		}
		sa, okA := attrString(a[i].value)
		sb, okB := attrString(b[i].value)
		switch {
		case okA && okB:
			if !strings.EqualFold(strings.Join(strings.Fields(sa), " "), strings.Join(strings.Fields(sb), " ")) {
				return false
			}
		case okA != okB:
			return false
		default:
			if !bytes.Equal(a[i].value.FullBytes, b[i].value.FullBytes) {
				return false
			}
		}
	}
	return true
}
