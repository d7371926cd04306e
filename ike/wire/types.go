package wire

import "strconv"

// ExchangeType is the IKE header's Exchange Type (IANA "IKEv2 Exchange Types").
type ExchangeType uint8

// Exchange types.
const (
	ExchangeIKESAInit        ExchangeType = 34 // IKE_SA_INIT, RFC 7296
	ExchangeIKEAuth          ExchangeType = 35 // IKE_AUTH, RFC 7296
	ExchangeCreateChildSA    ExchangeType = 36 // CREATE_CHILD_SA, RFC 7296
	ExchangeInformational    ExchangeType = 37 // INFORMATIONAL, RFC 7296
	ExchangeIKESessionResume ExchangeType = 38 // IKE_SESSION_RESUME, RFC 5723
	ExchangeIKEIntermediate  ExchangeType = 43 // IKE_INTERMEDIATE, RFC 9242
	ExchangeIKEFollowupKE    ExchangeType = 44 // IKE_FOLLOWUP_KE, RFC 9370
)

// String returns the IANA name, or "EXCHANGE(n)" for other values.
func (e ExchangeType) String() string {
	switch e {
	case ExchangeIKESAInit:
		return "IKE_SA_INIT"
	case ExchangeIKEAuth:
		return "IKE_AUTH"
	case ExchangeCreateChildSA:
		return "CREATE_CHILD_SA"
	case ExchangeInformational:
		return "INFORMATIONAL"
	case ExchangeIKESessionResume:
		return "IKE_SESSION_RESUME"
	case ExchangeIKEIntermediate:
		return "IKE_INTERMEDIATE"
	case ExchangeIKEFollowupKE:
		return "IKE_FOLLOWUP_KE"
	}
	return "EXCHANGE(" + strconv.Itoa(int(e)) + ")"
}

// PayloadType identifies a payload in the next-payload chain.
type PayloadType uint8

// Payload types (IANA "IKEv2 Payload Types").
const (
	PayloadNone     PayloadType = 0  // no next payload
	PayloadSA       PayloadType = 33 // Security Association
	PayloadKE       PayloadType = 34 // Key Exchange
	PayloadIDi      PayloadType = 35 // Identification - Initiator
	PayloadIDr      PayloadType = 36 // Identification - Responder
	PayloadCERT     PayloadType = 37 // Certificate
	PayloadCERTREQ  PayloadType = 38 // Certificate Request
	PayloadAUTH     PayloadType = 39 // Authentication
	PayloadNonce    PayloadType = 40 // Nonce
	PayloadNotify   PayloadType = 41 // Notify
	PayloadDelete   PayloadType = 42 // Delete
	PayloadVendorID PayloadType = 43 // Vendor ID
	PayloadTSi      PayloadType = 44 // Traffic Selector - Initiator
	PayloadTSr      PayloadType = 45 // Traffic Selector - Responder
	PayloadSK       PayloadType = 46 // Encrypted and Authenticated
	PayloadCP       PayloadType = 47 // Configuration
	PayloadEAP      PayloadType = 48 // Extensible Authentication
	PayloadSKF      PayloadType = 53 // Encrypted and Authenticated Fragment, RFC 7383
)

// String returns the payload's short name (as in RFC 7296 notation), or
// "PAYLOAD(n)" for types this package does not know.
func (t PayloadType) String() string {
	switch t {
	case PayloadNone:
		return "NONE"
	case PayloadSA:
		return "SA"
	case PayloadKE:
		return "KE"
	case PayloadIDi:
		return "IDi"
	case PayloadIDr:
		return "IDr"
	case PayloadCERT:
		return "CERT"
	case PayloadCERTREQ:
		return "CERTREQ"
	case PayloadAUTH:
		return "AUTH"
	case PayloadNonce:
		return "Nonce"
	case PayloadNotify:
		return "Notify"
	case PayloadDelete:
		return "Delete"
	case PayloadVendorID:
		return "VendorID"
	case PayloadTSi:
		return "TSi"
	case PayloadTSr:
		return "TSr"
	case PayloadSK:
		return "SK"
	case PayloadCP:
		return "CP"
	case PayloadEAP:
		return "EAP"
	case PayloadSKF:
		return "SKF"
	}
	return "PAYLOAD(" + strconv.Itoa(int(t)) + ")"
}

// known reports whether this package decodes payloads of type t.
func (t PayloadType) known() bool {
	return (t >= PayloadSA && t <= PayloadEAP) || t == PayloadSKF
}

// Security protocol identifiers (Proposal, Notify and Delete Protocol ID).
const (
	ProtoIKE uint8 = 1
	ProtoAH  uint8 = 2
	ProtoESP uint8 = 3
)

// Transform types (RFC 7296 §3.3.2, RFC 9370).
const (
	TransformEncr   uint8 = 1
	TransformPRF    uint8 = 2
	TransformInteg  uint8 = 3
	TransformDH     uint8 = 4 // renamed "Key Exchange Method" by RFC 9370
	TransformKE     uint8 = 4 // alias of TransformDH
	TransformESN    uint8 = 5
	TransformADDKE1 uint8 = 6
	TransformADDKE2 uint8 = 7
	TransformADDKE3 uint8 = 8
	TransformADDKE4 uint8 = 9
	TransformADDKE5 uint8 = 10
	TransformADDKE6 uint8 = 11
	TransformADDKE7 uint8 = 12
)

// AttrKeyLength is the transform attribute type of Key Length (always TV),
// carried in Transform.KeyLength rather than Transform.Attributes.
const AttrKeyLength uint16 = 14

// Identification types (RFC 7296 §3.5, RFC 7619).
const (
	IDIPv4      uint8 = 1
	IDFQDN      uint8 = 2
	IDRFC822    uint8 = 3
	IDIPv6      uint8 = 5
	IDDERASN1DN uint8 = 9
	IDDERASN1GN uint8 = 10
	IDKeyID     uint8 = 11
	IDFCName    uint8 = 12
	IDNull      uint8 = 13
)

// Certificate encodings (RFC 7296 §3.6, RFC 4806, RFC 7670).
const (
	CertPKCS7             uint8 = 1
	CertPGP               uint8 = 2
	CertDNSSignedKey      uint8 = 3
	CertX509Signature     uint8 = 4
	CertKerberos          uint8 = 6
	CertCRL               uint8 = 7
	CertARL               uint8 = 8
	CertSPKI              uint8 = 9
	CertX509Attribute     uint8 = 10
	CertRawRSAKey         uint8 = 11
	CertHashURLX509       uint8 = 12
	CertHashURLX509Bundle uint8 = 13
	CertOCSPContent       uint8 = 14
	CertRawPublicKey      uint8 = 15
)

// Authentication methods (RFC 7296 §3.8, RFC 4754, RFC 6467, RFC 7619, RFC 7427).
const (
	AuthRSASig           uint8 = 1
	AuthPSK              uint8 = 2
	AuthDSS              uint8 = 3
	AuthECDSA256         uint8 = 9
	AuthECDSA384         uint8 = 10
	AuthECDSA521         uint8 = 11
	AuthGSPM             uint8 = 12
	AuthNull             uint8 = 13
	AuthDigitalSignature uint8 = 14
)

// Traffic selector types (RFC 7296 §3.13.1, RFC 4595, RFC 9478).
const (
	TSIPv4AddrRange uint8 = 7
	TSIPv6AddrRange uint8 = 8
	TSFCAddrRange   uint8 = 9
	TSSecLabel      uint8 = 10
)

// Configuration payload types (RFC 7296 §3.15).
const (
	CfgRequest uint8 = 1
	CfgReply   uint8 = 2
	CfgSet     uint8 = 3
	CfgAck     uint8 = 4
)

// Configuration attribute types (RFC 7296 §3.15.1, RFC 8598, RFC 7651).
const (
	CPInternalIP4Address  uint16 = 1
	CPInternalIP4Netmask  uint16 = 2
	CPInternalIP4DNS      uint16 = 3
	CPInternalIP4NBNS     uint16 = 4
	CPInternalIP4DHCP     uint16 = 6
	CPApplicationVersion  uint16 = 7
	CPInternalIP6Address  uint16 = 8
	CPInternalIP6DNS      uint16 = 10
	CPInternalIP6DHCP     uint16 = 12
	CPInternalIP4Subnet   uint16 = 13
	CPSupportedAttributes uint16 = 14
	CPInternalIP6Subnet   uint16 = 15
	CPPCSCFIP4Address     uint16 = 20
	CPPCSCFIP6Address     uint16 = 21
	CPInternalDNSDomain   uint16 = 25
	CPInternalDNSSECTA    uint16 = 26
)
