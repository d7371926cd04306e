package wire

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every decoding error caused by syntactically
// invalid input; a responder answers it with INVALID_SYNTAX.
var ErrMalformed = errors.New("wire: malformed IKE message")

// ErrUnsupportedVersion is wrapped by *VersionError, returned for a header
// whose major version is not 2.
var ErrUnsupportedVersion = errors.New("wire: unsupported IKE major version")

// FormatError reports malformed input: Where names the header, payload or
// substructure, Reason what is wrong with it.
type FormatError struct {
	Where  string
	Reason string
}

// Error returns e.g. "wire: Notify payload: SPI size 9 exceeds payload length".
func (e *FormatError) Error() string { return "wire: " + e.Where + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrMalformed) true.
func (e *FormatError) Unwrap() error { return ErrMalformed }

// malformed builds a *FormatError.
func malformed(where, format string, args ...any) error {
	return &FormatError{Where: where, Reason: fmt.Sprintf(format, args...)}
}

// VersionError is returned by ParseHeader and Parse for an IKE header whose
// major version is not 2. Version is the raw version octet (major in the
// high nibble).
type VersionError struct {
	Version uint8
}

// Error names the offending version.
func (e *VersionError) Error() string {
	return fmt.Sprintf("wire: unsupported IKE version %d.%d (want major version 2)", e.Version>>4, e.Version&0x0f)
}

// Unwrap makes errors.Is(err, ErrUnsupportedVersion) true.
func (e *VersionError) Unwrap() error { return ErrUnsupportedVersion }

// UnsupportedCriticalError is returned for a payload of an unknown type with
// the critical bit set; a responder answers UNSUPPORTED_CRITICAL_PAYLOAD
// carrying Type as its one-octet notification data.
type UnsupportedCriticalError struct {
	Type PayloadType
}

// Error names the payload type.
func (e *UnsupportedCriticalError) Error() string {
	return fmt.Sprintf("wire: unsupported critical payload type %d", uint8(e.Type))
}

// encodeErr reports a value that cannot be encoded.
func encodeErr(where, format string, args ...any) error {
	return fmt.Errorf("wire: encode %s: %s", where, fmt.Sprintf(format, args...))
}
