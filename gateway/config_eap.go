package gateway

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// EAP limits.
const (
	maxEAPUsers    = 4096
	maxEAPIdentity = 253 // fits an EAP-Identity in any IKE message
	maxEAPPassword = 256 // MSCHAPv2 passwords are at most 256 characters
)

// EAPConfig is auth.eap: EAP-MSCHAPv2 users and/or EAP-TLS.
type EAPConfig struct {
	// Users maps EAP identities (as the client sends them, e.g. its
	// strongSwan eap_id) to passwords; 1..4096 entries. Optional with tls.
	Users map[string]string `json:"users,omitempty"`
	// TLS lets clients in with EAP-TLS (TLS 1.2): their certificate must
	// chain to auth.ca and name their EAP identity. With users too,
	// MSCHAPv2 is offered first and EAP-TLS clients Nak it.
	TLS bool `json:"tls,omitempty"`
}

// String shows the user names only.
func (e EAPConfig) String() string {
	return fmt.Sprintf("EAPConfig{users=%q tls=%t}", e.userNames(), e.TLS)
}

// GoString is String, so that %#v does not print passwords either.
func (e EAPConfig) GoString() string { return e.String() }

func (e *EAPConfig) userNames() []string {
	names := make([]string, 0, len(e.Users))
	for k := range e.Users {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// validateEAP checks auth.eap; errors name the user, never the password.
func (c *Config) validateEAP() error {
	e := c.Auth.EAP
	if e == nil {
		return nil
	}
	if c.Auth.Method != AuthPubkey {
		return fieldErr("auth.eap", "needs method \"pubkey\" (the gateway authenticates to EAP clients with its certificate)")
	}
	if e.TLS && c.Auth.CA == "" {
		return fieldErr("auth.ca", "required with auth.eap.tls (it verifies the clients' certificates)")
	}
	switch {
	case len(e.Users) == 0 && !e.TLS:
		return fieldErr("auth.eap.users", "required: at least one user (or tls)")
	case len(e.Users) > maxEAPUsers:
		return fieldErr("auth.eap.users", "more than %d entries", maxEAPUsers)
	}
	for _, name := range e.userNames() {
		f := "auth.eap.users[" + quote(name) + "]"
		if name == "" || len(name) > maxEAPIdentity || !utf8.ValidString(name) ||
			strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return fieldErr(f, "invalid EAP identity (1..%d octets of UTF-8, no control characters)", maxEAPIdentity)
		}
		pw := e.Users[name]
		if pw == "" || !utf8.ValidString(pw) || utf8.RuneCountInString(pw) > maxEAPPassword {
			return fieldErr(f, "invalid password (1..%d characters of UTF-8)", maxEAPPassword)
		}
	}
	return nil
}

// EAPTLS reports whether auth.eap.tls is on.
func (c *Config) EAPTLS() bool { return c.Auth.EAP != nil && c.Auth.EAP.TLS }

// EAPUsers returns the password lookup for ike.ResponderConfig.EAPUsers,
// nil without auth.eap.
func (c *Config) EAPUsers() func(identity string) (string, bool) {
	if c.Auth.EAP == nil || len(c.Auth.EAP.Users) == 0 {
		return nil
	}
	users := make(map[string]string, len(c.Auth.EAP.Users))
	for k, v := range c.Auth.EAP.Users {
		users[k] = v
	}
	return func(identity string) (string, bool) {
		pw, ok := users[identity]
		return pw, ok
	}
}
