package ike

import (
	"errors"
	"fmt"
)

// EAPMethod is the EAP method a client authenticates with.
type EAPMethod int

// EAP methods of the client.
const (
	// EAPMSCHAPv2 is a user name and password (RFC 2759).
	EAPMSCHAPv2 EAPMethod = iota + 1
	// EAPTLS is the client certificate Config.CertChain with Config.Signer
	// inside a TLS handshake (RFC 5216).
	EAPTLS
)

func (m EAPMethod) String() string {
	switch m {
	case EAPMSCHAPv2:
		return "EAP-MSCHAPv2"
	case EAPTLS:
		return "EAP-TLS"
	}
	return fmt.Sprintf("EAP method %d", int(m))
}

// EAPConfig makes the client authenticate with EAP inside IKE_AUTH (RFC
// 7296 §2.16), the way enterprise gateways take user names and passwords;
// the gateway authenticates with its certificate, verified against
// Config.CAs, and both AUTH payloads are then keyed with the EAP MSK.
type EAPConfig struct {
	Method EAPMethod
	// Identity is sent in the EAP Identity response and is the MSCHAPv2
	// user name; empty means LocalID's text.
	Identity string
	// Password is the EAP-MSCHAPv2 password. It never appears in errors,
	// logs or String.
	Password string
}

// String shows the method and identity, never the password.
func (e EAPConfig) String() string {
	return fmt.Sprintf("EAPConfig{method=%s identity=%q}", e.Method, e.Identity)
}

// GoString is String, so that %#v does not print the password either.
func (e EAPConfig) GoString() string { return e.String() }

func (c *Config) checkEAP() error {
	e := c.EAP
	if e == nil {
		return nil
	}
	if len(c.PSK) > 0 {
		return errors.New("ike: EAP and a PSK configured together")
	}
	if len(c.CAs) == 0 {
		return errors.New("ike: EAP needs CA certificates to verify the gateway")
	}
	switch e.Method {
	case EAPMSCHAPv2:
		if e.Password == "" {
			return errors.New("ike: EAP-MSCHAPv2 needs a password")
		}
		if e.Identity == "" && len(c.LocalID.Data) == 0 {
			return errors.New("ike: EAP-MSCHAPv2 needs a user name")
		}
	case EAPTLS:
		if c.Signer == nil || len(c.CertChain) == 0 {
			return errors.New("ike: EAP-TLS needs a client certificate and key")
		}
	default:
		return fmt.Errorf("ike: unknown %s", e.Method)
	}
	return nil
}

func (e *EAPConfig) identity(c *Config) string {
	if e.Identity != "" {
		return e.Identity
	}
	return c.LocalID.String()
}
