// Package fieldcheck holds the value checks that the client profile
// (sdk) and the gateway config (gateway) share: identities, proposals,
// prefixes, durations, PSKs and paths.
//
// Every check returns a plain reason, a lower-case phrase without the
// field ("longer than 1024 bytes"); the list checks also return the JSON
// path of the offending entry. Each caller wraps the reason into its own
// error type, whose one-line text Message formats with the caller's
// prefix. What the callers' reasons differ in is a Style.
package fieldcheck

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
)

// Style is what the callers' reasons differ in.
type Style struct {
	// QuoteLen is the longest value quoted whole (see Quote).
	QuoteLen int
	// DottedBits picks the length in the "such as" hint for a bare
	// address given as a prefix by how the address is written: 32 if it
	// holds a '.', else 128. Without it the address's bit length is used.
	DottedBits bool
}

// Quote quotes a user value for a reason, cut to at most max bytes (at a
// rune boundary, then "...") so that a runaway value does not flood the
// terminal. Never pass a secret.
func Quote(s string, max int) string {
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

// Quote is Quote with the style's length.
func (st Style) Quote(s string) string { return Quote(s, st.QuoteLen) }

// HasControl reports whether s holds a C0 or C1 control character, DEL or
// a Unicode line or paragraph separator.
func HasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return true
		}
	}
	return false
}

// Message formats an error as one line:
// "prefix[file: ][line L, column C: ][field: ]reason". Whatever the parts
// quote, the characters that could break the line (C0 controls, DEL,
// U+2028, U+2029) become spaces.
func Message(prefix, file string, line, column int, field, reason string) string {
	var b strings.Builder
	b.WriteString(prefix)
	if file != "" {
		b.WriteString(file)
		b.WriteString(": ")
	}
	if line > 0 {
		fmt.Fprintf(&b, "line %d, column %d: ", line, column)
	}
	if field != "" {
		b.WriteString(field)
		b.WriteString(": ")
	}
	b.WriteString(reason)
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, b.String())
}

// Path checks the syntax of a file path (no I/O): at most maxLen bytes
// (0: no limit) of UTF-8 without control characters. "" is fine.
func Path(s string, maxLen int) error {
	if s == "" {
		return nil
	}
	if maxLen > 0 && len(s) > maxLen {
		return fmt.Errorf("path longer than %d bytes", maxLen)
	}
	if HasControl(s) || !utf8.ValidString(s) {
		return errors.New("path contains a control character or invalid UTF-8")
	}
	return nil
}

// PSK decodes a pre-shared key as strongSwan does: "0x" + hex, "0s" +
// base64, else the bytes as written. Reasons never quote the value.
func PSK(s string) ([]byte, error) {
	var b []byte
	var err error
	switch {
	case s == "":
		return nil, errors.New("empty")
	case strings.HasPrefix(s, "0x"):
		if b, err = hex.DecodeString(s[2:]); err != nil {
			return nil, errors.New("invalid hex after the \"0x\" prefix")
		}
	case strings.HasPrefix(s, "0s"):
		if b, err = base64.StdEncoding.DecodeString(s[2:]); err != nil {
			return nil, errors.New("invalid base64 after the \"0s\" prefix")
		}
	default:
		return []byte(s), nil
	}
	if len(b) == 0 {
		return nil, errors.New("empty after its prefix")
	}
	return b, nil
}

// Identity parses a required identity of at most maxLen bytes with
// ike/auth, the parser the engine uses, and rejects wildcards.
func (st Style) Identity(s string, maxLen int) (auth.Identity, error) {
	switch {
	case s == "":
		return auth.Identity{}, errors.New("required")
	case len(s) > maxLen:
		return auth.Identity{}, fmt.Errorf("longer than %d bytes", maxLen)
	case !utf8.ValidString(s) || HasControl(s):
		return auth.Identity{}, errors.New("contains a control character or invalid UTF-8")
	case strings.HasPrefix(s, "%"):
		return auth.Identity{}, fmt.Errorf("wildcard %s is not allowed; name the identity", st.Quote(s))
	}
	id, err := auth.ParseIdentityStrict(s)
	if err != nil {
		return auth.Identity{}, errors.New(strings.TrimPrefix(err.Error(), "auth: "))
	}
	if id.IsAny() {
		return auth.Identity{}, fmt.Errorf("%s matches any identity; name the identity", st.Quote(s))
	}
	return id, nil
}

// Proposals parses a list of at most max strongSwan proposals (IKE, or
// ESP if esp) with the engine's parser, none twice. On failure it returns
// the path of what is wrong (field or field[i]) and the reason.
func (st Style) Proposals(field string, list []string, max int, esp bool) ([]ikecrypto.Proposal, string, error) {
	if len(list) > max {
		return nil, field, fmt.Errorf("more than %d proposals", max)
	}
	out := make([]ikecrypto.Proposal, 0, len(list))
	for i, s := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		if reason := st.proposalSyntax(s); reason != "" {
			return nil, f, errors.New(reason)
		}
		p, err := ikecrypto.ParseProposal(s, esp)
		if err != nil {
			return nil, f, fmt.Errorf("invalid %s", err.Error())
		}
		for j := range i {
			if list[j] == s {
				return nil, f, fmt.Errorf("duplicate of %s[%d]", field, j)
			}
		}
		out = append(out, p)
	}
	return out, "", nil
}

// proposalSyntax returns why s is not strongSwan proposal syntax: tokens
// of [a-z0-9_] joined by '-'.
func (st Style) proposalSyntax(s string) string {
	if s == "" {
		return "empty proposal"
	}
	for _, tok := range strings.Split(s, "-") {
		if tok == "" {
			return fmt.Sprintf("invalid proposal %s: empty algorithm between '-'", st.Quote(s))
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				return fmt.Sprintf("invalid proposal %s: invalid character %q (want lower-case algorithm names joined by '-')", st.Quote(s), rune(c))
			}
		}
	}
	return ""
}

// Prefixes parses a list of at most max prefixes, each in canonical form
// (no host bits, IPv4 not IPv4-mapped) and none twice. On failure it
// returns the path of what is wrong (field or field[i]) and the reason.
func (st Style) Prefixes(field string, list []string, max int) ([]netip.Prefix, string, error) {
	if len(list) > max {
		return nil, field, fmt.Errorf("more than %d prefixes", max)
	}
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				bits := a.BitLen()
				if st.DottedBits {
					bits = map[bool]int{true: 32, false: 128}[strings.Contains(s, ".")]
				}
				return nil, f, fmt.Errorf("invalid prefix %s (want address/bits, such as \"%s/%d\")", st.Quote(s), s, bits)
			}
			return nil, f, fmt.Errorf("invalid prefix %s", st.Quote(s))
		}
		if pfx.Addr().Is4In6() {
			return nil, f, fmt.Errorf("invalid prefix %s (write IPv4-mapped prefixes as IPv4)", st.Quote(s))
		}
		if m := pfx.Masked(); m != pfx {
			return nil, f, fmt.Errorf("invalid prefix %s: host bits set (did you mean %q?)", st.Quote(s), m.String())
		}
		for j := range i {
			if out[j] == pfx {
				return nil, f, fmt.Errorf("duplicate of %s[%d]", field, j)
			}
		}
		out = append(out, pfx)
	}
	return out, "", nil
}

// Duration parses an optional Go duration within [lo, hi]; "" is 0, and
// so is "0s" when zeroOK.
func (st Style) Duration(s string, lo, hi time.Duration, zeroOK bool) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %s (want a Go duration such as \"30s\")", st.Quote(s))
	}
	if d == 0 && zeroOK {
		return 0, nil
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s is out of range %s..%s", st.Quote(s), lo, hi)
	}
	return d, nil
}
