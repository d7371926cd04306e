// Package profileimport turns VPN profiles written for other clients into
// qcdvpn profiles: strongSwan's Android client profiles (.sswan files,
// https://docs.strongswan.org/docs/latest/os/androidVpnClientProfiles.html)
// and qcdvpn's own JSON, which is only validated. `qcdvpn import` and the
// desktop app's import dialog use it.
//
// What a .sswan says that a qcdvpn profile cannot is either an error, when
// the profile would not work without it (an authentication type qcdvpn
// does not support, no CA certificate), or a warning, when the tunnel
// still works without it (per-app routing, a proxy, DNS servers the
// gateway does not assign, revocation checks).
package profileimport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// MaxInputSize bounds the file Convert reads: a .sswan with an embedded
// PKCS#12 container and certificate stays far below it.
const MaxInputSize = 1 << 20

// Format names what Convert read.
const (
	FormatSSwan  = "sswan"  // strongSwan Android client profile
	FormatQCDVPN = "qcdvpn" // qcdvpn's own profile JSON
)

// Options carry what a .sswan file does not hold.
type Options struct {
	// FileBase names the files the certificates and keys go to:
	// FileBase-ca.pem, FileBase-cert.pem, FileBase-key.pem. Empty: a
	// name made from the profile name.
	FileBase string
	// Inline puts the PEM into the profile instead of files.
	Inline bool
	// Password is the EAP password (a .sswan never holds one).
	Password string
	// P12Password decrypts local.p12 (empty: try an empty password).
	P12Password string
	// CA is PEM with the CA certificate(s), for a .sswan without
	// remote.cert (the Android app then trusts the system's CAs).
	CA []byte
}

// File is a certificate or key Convert put aside; the profile refers to
// it by Name, relative to the profile's directory.
type File struct {
	Name string
	Data []byte
	// Secret marks a private key.
	Secret bool
}

// Result is a converted profile.
type Result struct {
	// Format is what the input was (FormatSSwan or FormatQCDVPN).
	Format string
	// Profile is the qcdvpn profile document, ending in a newline.
	Profile []byte
	// Files are to be written next to the profile (mode 0600).
	Files []File
	// Warnings name what the input said that the profile leaves out, one
	// line each.
	Warnings []string
}

// Convert reads a .sswan profile or a qcdvpn profile and returns the qcdvpn
// profile. A qcdvpn profile is validated strictly and returned unchanged
// (its files are checked by the caller, who knows its directory). Errors
// are one line, naming the field, and never quote secrets.
func Convert(data []byte, opts Options) (*Result, error) {
	if len(data) > MaxInputSize {
		return nil, fmt.Errorf("input too large (%d bytes; the limit is %d)", len(data), MaxInputSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 BOM some editors write
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %s", jsonReason(err))
	}
	_, hasType := top["type"]
	_, hasRemote := top["remote"]
	_, hasUUID := top["uuid"]
	if !hasType && !hasRemote && !hasUUID {
		if _, err := sdk.ParseProfile(data); err != nil {
			return nil, err
		}
		out := append([]byte(nil), data...)
		if !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		return &Result{Format: FormatQCDVPN, Profile: out}, nil
	}
	return convertSSwan(data, opts)
}

// jsonReason words an encoding/json error without quoting the input.
func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end") {
		return "truncated JSON"
	}
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "the top level is a JSON " + te.Value
	}
	if strings.Contains(err.Error(), "unexpected end") {
		return "truncated JSON"
	}
	return "invalid JSON"
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileBase makes a file name stem from a profile name.
func fileBase(name string) string {
	s := strings.Trim(nonName.ReplaceAllString(strings.ToLower(name), "-"), "-.")
	if len(s) > 40 {
		s = s[:40]
	}
	if s == "" {
		s = "profile"
	}
	return s
}
