package sdk

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	"github.com/qcdvpn/qcdvpn/internal/fieldcheck"
	"github.com/qcdvpn/qcdvpn/internal/pemfile"
	"github.com/qcdvpn/qcdvpn/internal/strictjson"
)

// A profile is the JSON document users write by hand to describe one VPN
// connection. Parsing is strict: unknown or miscased keys, duplicate keys,
// wrong JSON types and trailing data are errors, and every error is one
// line that names the JSON field path, prefixed "profile: ". Secrets (the
// PSK, the EAP password, an inline private key) never appear in errors,
// String, GoString or LogValue output.
//
// Relative file paths (ca, auth.cert, auth.key, state_dir) are relative to
// the current directory for ParseProfile and to the profile file's
// directory for LoadProfile.

// MaxProfileSize is the largest profile document ParseProfile accepts.
const MaxProfileSize = 1 << 20

// Limits on list lengths, so a hand-written mistake cannot make the client
// try thousands of gateways or proposals.
const (
	maxGateways  = 32
	maxProposals = 32
	maxPrefixes  = 1024
	maxNameLen   = 64
	maxIDLen     = 1024
)

// DefaultGatewayPort is the IKE port used when a gateway names no port.
const DefaultGatewayPort = 500

// DefaultMTU is the TUN MTU used when the profile names none.
const DefaultMTU = 1400

// Authentication methods accepted in auth.method.
const (
	AuthPSK         = "psk"          // pre-shared key on both sides
	AuthPubkey      = "pubkey"       // client certificate and key
	AuthEAPMSCHAPv2 = "eap-mschapv2" // username and password over EAP
	AuthEAPTLS      = "eap-tls"      // client certificate and key over EAP
)

// Profile is one VPN connection as written by the user (see the package
// documentation for the parsing rules). Use ParseProfile or LoadProfile to
// read one; a Profile built in Go should get SetDefaults and Validate.
type Profile struct {
	// Name is a display label: 1..64 bytes of UTF-8 without control characters.
	Name string `json:"name"`
	// Gateways lists the primary gateway first, then backups: host,
	// host:port, [v6]:port, an IPv4/IPv6 literal or a DNS name. The default
	// port is 500.
	Gateways []string `json:"gateways"`
	// RemoteID is the gateway's identity in strongSwan syntax (see ike/auth.ParseIdentity).
	RemoteID string `json:"remote_id"`
	// LocalID is the client's identity in strongSwan syntax (see ike/auth.ParseIdentity).
	LocalID string `json:"local_id"`
	// SendRemoteID sends RemoteID as IDr in IKE_AUTH (default true). Turn
	// it off for gateways that pick their identity themselves; the
	// identity they authenticate as is checked against RemoteID either way.
	SendRemoteID *bool `json:"send_remote_id,omitempty"`
	// Auth says how the client authenticates.
	Auth Auth `json:"auth"`
	// CA is inline PEM (starting with "-----BEGIN") or the path of a PEM
	// file holding the CA certificate(s) that sign the gateway certificate.
	// Required unless auth.method is "psk" (then the gateway uses the PSK too).
	CA string `json:"ca,omitempty"`
	// IKEProposals are IKE proposals in strongSwan syntax, most preferred
	// first; default DefaultIKEProposals().
	IKEProposals []string `json:"ike_proposals,omitempty"`
	// ESPProposals are ESP proposals in strongSwan syntax, most preferred
	// first; default DefaultESPProposals().
	ESPProposals []string `json:"esp_proposals,omitempty"`
	// Traffic selects what goes through the tunnel.
	Traffic Traffic `json:"traffic"`
	// DNS controls use of the gateway's DNS servers; nil means the defaults.
	DNS *DNS `json:"dns,omitempty"`
	// QCD controls RFC 6290 quick crash detection.
	QCD QCD `json:"qcd"`
	// Resumption controls RFC 5723 session resumption.
	Resumption Resumption `json:"resumption"`
	// HASync controls RFC 6311 synchronisation with a hot-standby gateway.
	HASync HASync `json:"ha_sync,omitzero"`
	// Failover chooses the next gateway after a failure.
	Failover Failover `json:"failover,omitzero"`
	// StateDir is where tickets and tokens are kept; empty lets the client
	// choose its per-OS default.
	StateDir string `json:"state_dir,omitempty"`
	// Timers tune retransmission, liveness and lifetimes.
	Timers Timers `json:"timers,omitzero"`
	// MTU of the tunnel interface, 576..9000; 0 means DefaultMTU.
	MTU int `json:"mtu,omitempty"`
	// MOBIKE offers RFC 4555 mobility (default true): when the device's
	// address changes, the IKE and Child SAs move to it instead of being
	// renegotiated. Used only if the gateway offers it too.
	MOBIKE *bool `json:"mobike,omitempty"`
}

// Auth is the client's authentication. Which fields apply depends on Method:
// "psk" needs PSK; "pubkey" and "eap-tls" need Cert and Key ("eap-tls" may
// also set Username as its EAP identity, default LocalID); "eap-mschapv2"
// needs Username and Password. Fields that do not apply to the method are
// errors. The EAP methods run inside IKE_AUTH after the gateway has
// authenticated with its certificate (RFC 7296 §2.16).
type Auth struct {
	// Method is one of "psk", "pubkey", "eap-mschapv2", "eap-tls".
	Method string `json:"method"`
	// PSK is the pre-shared key. As in strongSwan, a "0x" prefix means hex
	// and a "0s" prefix means base64; anything else is used as bytes.
	PSK string `json:"psk,omitempty"`
	// Cert is inline PEM or the path of a PEM file: the client certificate,
	// leaf first, optionally followed by intermediates.
	Cert string `json:"cert,omitempty"`
	// Key is inline PEM or the path of a PEM file: the unencrypted private
	// key (PKCS #8, PKCS #1 or SEC 1) of Cert.
	Key string `json:"key,omitempty"`
	// Username is the EAP identity.
	Username string `json:"username,omitempty"`
	// Password is the EAP-MSCHAPv2 password.
	Password string `json:"password,omitempty"`
}

// Traffic lists the prefixes routed through the tunnel (Include, default
// 0.0.0.0/0 and ::/0) and those kept out of it (Exclude).
type Traffic struct {
	// Include prefixes, such as "10.200.0.0/24".
	Include []string `json:"include,omitempty"`
	// Exclude prefixes, taken out of Include.
	Exclude []string `json:"exclude,omitempty"`
}

// DNS controls the gateway-provided DNS configuration.
type DNS struct {
	// Use says whether to apply the DNS servers the gateway assigns; default true.
	Use *bool `json:"use,omitempty"`
}

// QCD controls RFC 6290 quick crash detection.
type QCD struct {
	// Enabled defaults to true.
	Enabled *bool `json:"enabled,omitempty"`
	// RatePerSource and RateGlobal bound token verifications per second,
	// per source address and overall (RFC 6290 §8); 0 means the defaults
	// (5 and 200).
	RatePerSource float64 `json:"rate_per_source,omitempty"`
	RateGlobal    float64 `json:"rate_global,omitempty"`
}

// Failover says where the client goes when its gateway fails.
type Failover struct {
	// AfterCrash is "next" (default: the next listed gateway after a
	// verified QCD token) or "same" (try the restarted gateway first).
	AfterCrash string `json:"after_crash,omitempty"`
}

// Resumption controls RFC 5723 session resumption.
type Resumption struct {
	// Enabled defaults to true.
	Enabled *bool `json:"enabled,omitempty"`
}

// HASync controls RFC 6311: the client announces message-ID and replay
// counter synchronisation in IKE_AUTH and answers a gateway cluster's
// sync after a takeover, so the tunnel survives it without a reconnect.
type HASync struct {
	// Enabled defaults to true.
	Enabled *bool `json:"enabled,omitempty"`
}

// Timers hold protocol timings; durations use Go syntax ("1s", "4h").
// Empty fields take the defaults shown in DefaultTimerValues.
type Timers struct {
	// RetransmitTimeout is the first retransmission timeout (100ms..1m).
	RetransmitTimeout string `json:"retransmit_timeout,omitempty" want:"a duration such as \"1s\""`
	// RetransmitTries is how many times a request is sent (1..20).
	RetransmitTries int `json:"retransmit_tries,omitempty"`
	// RetransmitBase multiplies the timeout after each try (1..4).
	RetransmitBase float64 `json:"retransmit_base,omitempty"`
	// Keepalive is the NAT keepalive interval (1s..10m, or "0s" for none).
	Keepalive string `json:"keepalive,omitempty" want:"a duration such as \"20s\""`
	// Liveness is the idle time before a liveness check (1s..1h).
	Liveness string `json:"liveness,omitempty" want:"a duration such as \"30s\""`
	// FastLiveness is the timeout of a liveness check started on a hint
	// (100ms..liveness).
	FastLiveness string `json:"fast_liveness,omitempty" want:"a duration such as \"1s\""`
	// IKELifetime is when the IKE SA is rekeyed (10s..168h).
	IKELifetime string `json:"ike_lifetime,omitempty" want:"a duration such as \"4h\""`
	// ChildLifetime is when a child SA is rekeyed (10s..168h).
	ChildLifetime string `json:"child_lifetime,omitempty" want:"a duration such as \"1h\""`
}

// TimerValues are Timers parsed.
type TimerValues struct {
	RetransmitTimeout time.Duration // first retransmission timeout
	RetransmitTries   int           // sends of one request, including the first
	RetransmitBase    float64       // timeout multiplier per try
	Keepalive         time.Duration // NAT keepalive interval; 0 means none
	Liveness          time.Duration // idle time before a liveness check
	FastLiveness      time.Duration // timeout of a hinted liveness check
	IKELifetime       time.Duration // IKE SA rekey time
	ChildLifetime     time.Duration // child SA rekey time
}

// DefaultTimerValues returns the timings used for empty Timers fields.
func DefaultTimerValues() TimerValues {
	return TimerValues{
		RetransmitTimeout: time.Second,
		RetransmitTries:   5,
		RetransmitBase:    2,
		Keepalive:         20 * time.Second,
		Liveness:          30 * time.Second,
		FastLiveness:      time.Second,
		IKELifetime:       4 * time.Hour,
		ChildLifetime:     time.Hour,
	}
}

// DefaultIKEProposals returns the IKE proposals used when the profile names
// none. The first adds ML-KEM-768 to x25519 (RFC 9370), so the tunnel is
// quantum-safe wherever the gateway supports it; the KE payload of
// IKE_SA_INIT is x25519 either way, so a gateway without ML-KEM picks the
// second proposal without an extra round trip.
func DefaultIKEProposals() []string {
	return []string{"aes256gcm16-prfsha256-x25519-ke1_mlkem768", "aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha384-ecp384", "aes256-sha256-modp2048"}
}

// DefaultESPProposals returns the ESP proposals used when the profile names none.
func DefaultESPProposals() []string {
	return []string{"aes256gcm16", "chacha20poly1305", "aes256-sha256"}
}

// DefaultTrafficInclude returns the prefixes tunnelled when traffic.include is empty.
func DefaultTrafficInclude() []string {
	return []string{"0.0.0.0/0", "::/0"}
}

// Gateway is one gateway endpoint; Host is an IP literal (canonical form)
// or a DNS name, not resolved here.
type Gateway struct {
	Host string
	Port uint16
}

// String returns host:port, bracketing IPv6 literals.
func (g Gateway) String() string {
	return joinHostPort(g.Host, g.Port)
}

// IsIP reports whether Host is an IP literal rather than a DNS name.
func (g Gateway) IsIP() bool {
	_, err := netip.ParseAddr(g.Host)
	return err == nil
}

// ResolvedProfile is a validated profile with every value parsed and every
// default applied. It holds no secrets; get the PSK from Auth.PSKBytes and
// keys and certificates from Profile.LoadCredentials.
type ResolvedProfile struct {
	Name         string
	Gateways     []Gateway
	LocalID      auth.Identity
	RemoteID     auth.Identity
	AuthMethod   string
	IKEProposals []string
	ESPProposals []string
	Include      []netip.Prefix
	Exclude      []netip.Prefix
	UseDNS       bool
	QCD          bool
	Resumption   bool
	// QCDRatePerSource and QCDRateGlobal are verifications per second
	// (0: the qcd package defaults).
	QCDRatePerSource, QCDRateGlobal float64
	// FailoverSame retries the crashed gateway first after a verified
	// QCD token.
	FailoverSame bool
	StateDir     string
	Timers       TimerValues
	MTU          int
}

// ProfileError is the error type of everything in this file. Field is the
// JSON path ("gateways[1]", "auth.psk") or empty; Line and Column are set
// for JSON syntax errors.
type ProfileError struct {
	Field  string
	Line   int
	Column int
	Reason string
}

// Error returns one line: "profile: [line L, column C: ][field: ]reason".
func (e *ProfileError) Error() string {
	return fieldcheck.Message("profile: ", "", e.Line, e.Column, e.Field, e.Reason)
}

func fieldErr(field, format string, args ...any) error {
	return &ProfileError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// reasonErr puts a reason from internal/fieldcheck or internal/pemfile on
// field; nil stays nil.
func reasonErr(field string, err error) error {
	if err == nil {
		return nil
	}
	return fieldErr(field, "%s", err)
}

// style and pemRules are the profile's wording and limits for the checks
// it shares with the gateway config.
var (
	style    = fieldcheck.Style{QuoteLen: 80, DottedBits: true}
	pemRules = pemfile.Rules{QuoteLen: style.QuoteLen, MaxSize: MaxProfileSize}
)

// ParseProfile decodes a profile strictly, fills defaults and validates it.
// It does no I/O: file paths in it are checked by LoadCredentials.
func ParseProfile(data []byte) (*Profile, error) {
	if len(data) > MaxProfileSize {
		return nil, fieldErr("", "too large (%d bytes; the limit is %d)", len(data), MaxProfileSize)
	}
	if err := checkJSON(data); err != nil {
		return nil, err
	}
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		// checkJSON has seen every type; this is a backstop.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fieldErr(te.Field, "want %s, got JSON %s", te.Type, te.Value)
		}
		return nil, fieldErr("", "invalid JSON")
	}
	p.SetDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// LoadProfile reads and parses the profile file at path, makes the
// relative paths in it (ca, auth.cert, auth.key, state_dir) relative to the
// file's directory, and checks that its certificates and keys load.
func LoadProfile(path string) (*Profile, error) {
	data, err := pemfile.ReadFile(path, MaxProfileSize)
	if err != nil {
		return nil, fieldErr("", "cannot read %q: %s", path, pathErrReason(err))
	}
	p, err := ParseProfile(data)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	rel := func(s string) string { return pemfile.Rel(dir, s) }
	p.CA, p.Auth.Cert, p.Auth.Key, p.StateDir = rel(p.CA), rel(p.Auth.Cert), rel(p.Auth.Key), rel(p.StateDir)
	if _, err := p.LoadCredentials(); err != nil {
		return nil, err
	}
	return p, nil
}

// SetDefaults fills every empty optional field with its default value.
func (p *Profile) SetDefaults() {
	if len(p.IKEProposals) == 0 {
		p.IKEProposals = DefaultIKEProposals()
	}
	if len(p.ESPProposals) == 0 {
		p.ESPProposals = DefaultESPProposals()
	}
	if len(p.Traffic.Include) == 0 {
		p.Traffic.Include = DefaultTrafficInclude()
	}
	if len(p.Traffic.Exclude) == 0 {
		p.Traffic.Exclude = nil // "exclude":[] and no exclude are the same
	}
	if p.DNS == nil {
		p.DNS = &DNS{}
	}
	if p.DNS.Use == nil {
		p.DNS.Use = boolPtr(true)
	}
	if p.QCD.Enabled == nil {
		p.QCD.Enabled = boolPtr(true)
	}
	if p.Resumption.Enabled == nil {
		p.Resumption.Enabled = boolPtr(true)
	}
	if p.HASync.Enabled == nil {
		p.HASync.Enabled = boolPtr(true)
	}
	d := DefaultTimerValues()
	t := &p.Timers
	setDur := func(s *string, v time.Duration) {
		if *s == "" {
			*s = v.String()
		}
	}
	setDur(&t.RetransmitTimeout, d.RetransmitTimeout)
	setDur(&t.Keepalive, d.Keepalive)
	setDur(&t.Liveness, d.Liveness)
	setDur(&t.FastLiveness, d.FastLiveness)
	setDur(&t.IKELifetime, d.IKELifetime)
	setDur(&t.ChildLifetime, d.ChildLifetime)
	if t.RetransmitTries == 0 {
		t.RetransmitTries = d.RetransmitTries
	}
	if t.RetransmitBase == 0 {
		t.RetransmitBase = d.RetransmitBase
	}
	if p.MTU == 0 {
		p.MTU = DefaultMTU
	}
}

func boolPtr(b bool) *bool { return &b }

// Validate checks every field; empty optional fields count as their
// defaults. It does no I/O.
func (p *Profile) Validate() error {
	_, err := p.Resolve()
	return err
}

// Resolve validates the profile and returns its values parsed, with
// defaults for empty optional fields.
func (p *Profile) Resolve() (*ResolvedProfile, error) {
	r := &ResolvedProfile{Name: p.Name, StateDir: p.StateDir, AuthMethod: p.Auth.Method}
	if err := checkName(p.Name); err != nil {
		return nil, err
	}
	var err error
	if r.Gateways, err = p.GatewayEndpoints(); err != nil {
		return nil, err
	}
	if r.RemoteID, err = parseIdentityField("remote_id", p.RemoteID); err != nil {
		return nil, err
	}
	if r.LocalID, err = parseIdentityField("local_id", p.LocalID); err != nil {
		return nil, err
	}
	if err := p.Auth.validate(); err != nil {
		return nil, err
	}
	if err := checkCA(p.CA, p.Auth.Method); err != nil {
		return nil, err
	}
	if r.IKEProposals, err = checkProposals("ike_proposals", p.IKEProposals, DefaultIKEProposals(), false); err != nil {
		return nil, err
	}
	if r.ESPProposals, err = checkProposals("esp_proposals", p.ESPProposals, DefaultESPProposals(), true); err != nil {
		return nil, err
	}
	if r.Include, r.Exclude, err = p.TrafficPrefixes(); err != nil {
		return nil, err
	}
	if err := checkPath("state_dir", p.StateDir); err != nil {
		return nil, err
	}
	if r.Timers, err = p.TimerValues(); err != nil {
		return nil, err
	}
	switch {
	case p.MTU == 0:
		r.MTU = DefaultMTU
	case p.MTU < 576 || p.MTU > 9000:
		return nil, fieldErr("mtu", "%d is out of range 576..9000", p.MTU)
	default:
		r.MTU = p.MTU
	}
	r.UseDNS = p.UseDNS()
	r.QCD = p.QCDEnabled()
	r.Resumption = p.ResumptionEnabled()
	for _, f := range []struct {
		name string
		v    float64
	}{{"qcd.rate_per_source", p.QCD.RatePerSource}, {"qcd.rate_global", p.QCD.RateGlobal}} {
		if f.v != 0 && (f.v < 0.1 || f.v > 1e6) {
			return nil, fieldErr(f.name, "%g is out of range 0.1..1000000", f.v)
		}
	}
	r.QCDRatePerSource, r.QCDRateGlobal = p.QCD.RatePerSource, p.QCD.RateGlobal
	switch p.Failover.AfterCrash {
	case "", "next":
	case "same":
		r.FailoverSame = true
	default:
		return nil, fieldErr("failover.after_crash", "%q is not one of next, same", p.Failover.AfterCrash)
	}
	return r, nil
}

// SendsRemoteID reports whether IDr is sent (default true).
func (p *Profile) SendsRemoteID() bool { return p.SendRemoteID == nil || *p.SendRemoteID }

// QCDEnabled reports whether quick crash detection is on (default true).
func (p *Profile) QCDEnabled() bool { return p.QCD.Enabled == nil || *p.QCD.Enabled }

// HASyncEnabled reports whether RFC 6311 sync with a hot-standby gateway
// is on (default true).
func (p *Profile) HASyncEnabled() bool { return p.HASync.Enabled == nil || *p.HASync.Enabled }

// ResumptionEnabled reports whether session resumption is on (default true).
func (p *Profile) ResumptionEnabled() bool {
	return p.Resumption.Enabled == nil || *p.Resumption.Enabled
}

// UseDNS reports whether the gateway's DNS servers are applied (default true).
func (p *Profile) UseDNS() bool { return p.DNS == nil || p.DNS.Use == nil || *p.DNS.Use }

func checkName(s string) error {
	switch {
	case s == "":
		return fieldErr("name", "required")
	case len(s) > maxNameLen:
		return fieldErr("name", "longer than %d bytes", maxNameLen)
	case !utf8.ValidString(s):
		return fieldErr("name", "not valid UTF-8")
	case fieldcheck.HasControl(s):
		return fieldErr("name", "contains a control character")
	}
	return nil
}

// quote quotes a user value for an error message, shortened so that a
// runaway value does not flood the terminal. Never pass a secret.
func quote(s string) string { return style.Quote(s) }

// GatewayEndpoints parses the gateway list; it does no DNS resolution.
func (p *Profile) GatewayEndpoints() ([]Gateway, error) {
	if len(p.Gateways) == 0 {
		return nil, fieldErr("gateways", "at least one gateway is required")
	}
	if len(p.Gateways) > maxGateways {
		return nil, fieldErr("gateways", "more than %d gateways", maxGateways)
	}
	out := make([]Gateway, 0, len(p.Gateways))
	for i, s := range p.Gateways {
		field := fmt.Sprintf("gateways[%d]", i)
		g, err := ParseGateway(s)
		if err != nil {
			return nil, fieldErr(field, "%s", err.(*ProfileError).Reason)
		}
		for j, h := range out {
			if strings.EqualFold(h.Host, g.Host) && h.Port == g.Port {
				return nil, fieldErr(field, "duplicate of gateways[%d]", j)
			}
		}
		out = append(out, g)
	}
	return out, nil
}

// ParseGateway parses one gateway: host, host:port, [v6], [v6]:port, an
// IPv4/IPv6 literal or a DNS name; the port defaults to 500. A bare IPv6
// literal never carries a port ("2001:db8::1:500" is one address): give
// ports to IPv6 gateways in brackets.
func ParseGateway(s string) (Gateway, error) {
	bad := func(format string, args ...any) (Gateway, error) {
		return Gateway{}, &ProfileError{Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return bad("empty")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return bad("%s contains a space or control character", quote(s))
	}
	host, portStr, hasPort := s, "", false
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return bad("%s: missing ']'", quote(s))
		}
		host = s[1:end]
		switch rest := s[end+1:]; {
		case rest == "":
		case strings.HasPrefix(rest, ":"):
			portStr, hasPort = rest[1:], true
		default:
			return bad("%s: unexpected %s after ']'", quote(s), quote(rest))
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Is4In6() {
			return bad("%s: brackets must hold an IPv6 address", quote(s))
		}
	case strings.Count(s, ":") == 1:
		i := strings.IndexByte(s, ':')
		host, portStr, hasPort = s[:i], s[i+1:], true
	}
	port := uint16(DefaultGatewayPort)
	if hasPort {
		n, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || n == 0 || portStr[0] == '+' {
			return bad("invalid port %s", quote(portStr))
		}
		port = uint16(n)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Is4In6() {
			return bad("%s: write the IPv4-mapped address as IPv4", quote(s))
		}
		if a.IsUnspecified() || a.IsMulticast() {
			return bad("%s is not a unicast address", quote(host))
		}
		return Gateway{Host: a.String(), Port: port}, nil
	}
	if strings.Contains(host, ":") {
		return bad("invalid IPv6 address %s (write [address]:port to give a port)", quote(host))
	}
	if reason := checkHostname(host); reason != "" {
		return bad("invalid host %s: %s", quote(host), reason)
	}
	return Gateway{Host: host, Port: port}, nil
}

// checkHostname returns why s is not a DNS host name, or "".
func checkHostname(s string) string {
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return "empty"
	}
	if len(name) > 253 {
		return "longer than 253 bytes"
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" {
			return "empty label"
		}
		if len(l) > 63 {
			return "label longer than 63 bytes"
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "label starts or ends with '-'"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Sprintf("invalid character %q", c)
			}
		}
	}
	// An all-numeric last label is a mistyped IPv4 address, not a name.
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "not an IP address and not a DNS name"
	}
	return ""
}

func joinHostPort(host string, port uint16) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(int(port))
	}
	return host + ":" + strconv.Itoa(int(port))
}

func (a Auth) validate() error {
	type rule struct {
		name, value string
		need        bool // required for the method; else forbidden unless allowed
		allowed     bool
	}
	var rules []rule
	switch a.Method {
	case "":
		return fieldErr("auth.method", "required (one of \"psk\", \"pubkey\", \"eap-mschapv2\", \"eap-tls\")")
	case AuthPSK:
		rules = []rule{{"psk", a.PSK, true, true}, {"cert", a.Cert, false, false}, {"key", a.Key, false, false},
			{"username", a.Username, false, false}, {"password", a.Password, false, false}}
	case AuthPubkey:
		rules = []rule{{"psk", a.PSK, false, false}, {"cert", a.Cert, true, true}, {"key", a.Key, true, true},
			{"username", a.Username, false, false}, {"password", a.Password, false, false}}
	case AuthEAPTLS:
		rules = []rule{{"psk", a.PSK, false, false}, {"cert", a.Cert, true, true}, {"key", a.Key, true, true},
			{"username", a.Username, false, true}, {"password", a.Password, false, false}}
	case AuthEAPMSCHAPv2:
		rules = []rule{{"psk", a.PSK, false, false}, {"cert", a.Cert, false, false}, {"key", a.Key, false, false},
			{"username", a.Username, true, true}, {"password", a.Password, true, true}}
	default:
		return fieldErr("auth.method", "unknown method %s (want \"psk\", \"pubkey\", \"eap-mschapv2\" or \"eap-tls\")", quote(a.Method))
	}
	for _, r := range rules {
		field := "auth." + r.name
		if r.need && r.value == "" {
			return fieldErr(field, "required for method %q", a.Method)
		}
		if !r.allowed && r.value != "" {
			return fieldErr(field, "not used with method %q", a.Method)
		}
	}
	if a.PSK != "" {
		if _, err := a.PSKBytes(); err != nil {
			return err
		}
	}
	if a.Username != "" {
		if fieldcheck.HasControl(a.Username) || !utf8.ValidString(a.Username) || len(a.Username) > 253 {
			return fieldErr("auth.username", "must be at most 253 bytes of UTF-8 without control characters")
		}
	}
	if a.Password != "" && (!utf8.ValidString(a.Password) || utf8.RuneCountInString(a.Password) > 256) {
		// MSCHAPv2 takes at most 256 UTF-16 characters.
		return fieldErr("auth.password", "must be at most 256 characters of UTF-8")
	}
	if err := checkPEMOrPath("auth.cert", a.Cert, false); err != nil {
		return err
	}
	return checkPEMOrPath("auth.key", a.Key, true)
}

// PSKBytes decodes the PSK: "0x" + hex, "0s" + base64, else the bytes as written.
func (a Auth) PSKBytes() ([]byte, error) {
	b, err := fieldcheck.PSK(a.PSK)
	return b, reasonErr("auth.psk", err)
}

func checkCA(ca, method string) error {
	switch {
	case method == AuthPSK && ca != "":
		return fieldErr("ca", "not used with auth.method \"psk\" (the gateway authenticates with the PSK too)")
	case method != AuthPSK && ca == "":
		return fieldErr("ca", "required for auth.method %q, to verify the gateway certificate", method)
	}
	return checkPEMOrPath("ca", ca, false)
}

// checkPEMOrPath parses inline PEM or checks a path's syntax (no I/O).
func checkPEMOrPath(field, s string, isKey bool) error {
	return reasonErr(field, pemRules.Check(s, isKey))
}

func checkPath(field, s string) error {
	return reasonErr(field, fieldcheck.Path(s, pemRules.MaxPathLen))
}

// Credentials are the certificates and key a profile refers to, parsed.
type Credentials struct {
	// CAs verify the gateway certificate; nil for "psk".
	CAs []*x509.Certificate
	// Chain is the client certificate, leaf first; nil unless the method uses one.
	Chain []*x509.Certificate
	// Key is Chain[0]'s private key.
	Key crypto.Signer
}

// LoadCredentials reads (when they are paths) and parses ca, auth.cert and
// auth.key, and checks that the key matches the certificate.
func (p *Profile) LoadCredentials() (*Credentials, error) {
	var c Credentials
	var err error
	if p.CA != "" {
		if c.CAs, err = pemRules.Certs(p.CA); err != nil {
			return nil, reasonErr("ca", err)
		}
	}
	if p.Auth.Cert != "" {
		if c.Chain, err = pemRules.Certs(p.Auth.Cert); err != nil {
			return nil, reasonErr("auth.cert", err)
		}
	}
	if p.Auth.Key != "" {
		if c.Key, err = pemRules.Key(p.Auth.Key); err != nil {
			return nil, reasonErr("auth.key", err)
		}
	}
	if c.Key != nil && len(c.Chain) > 0 && !pemfile.KeyMatches(c.Key, c.Chain[0]) {
		return nil, fieldErr("auth.key", "does not match the public key of auth.cert")
	}
	return &c, nil
}

// pathErrReason drops the path from an fs error, which the caller quotes.
var pathErrReason = pemfile.PathErrReason

// checkProposals checks each proposal's syntax, then its algorithms with
// the engine's parser, and returns the effective list.
func checkProposals(field string, list, def []string, esp bool) ([]string, error) {
	if len(list) == 0 {
		return def, nil
	}
	if _, f, err := style.Proposals(field, list, maxProposals, esp); err != nil {
		return nil, reasonErr(f, err)
	}
	return append([]string(nil), list...), nil
}

// TrafficPrefixes parses traffic.include (default 0.0.0.0/0 and ::/0) and
// traffic.exclude.
func (p *Profile) TrafficPrefixes() (include, exclude []netip.Prefix, err error) {
	in := p.Traffic.Include
	if len(in) == 0 {
		in = DefaultTrafficInclude()
	}
	if include, err = parsePrefixes("traffic.include", in); err != nil {
		return nil, nil, err
	}
	if exclude, err = parsePrefixes("traffic.exclude", p.Traffic.Exclude); err != nil {
		return nil, nil, err
	}
	return include, exclude, nil
}

func parsePrefixes(field string, list []string) ([]netip.Prefix, error) {
	out, f, err := style.Prefixes(field, list, maxPrefixes)
	if err != nil {
		return nil, reasonErr(f, err)
	}
	return out, nil
}

// TimerValues parses the timers; empty fields take DefaultTimerValues.
func (p *Profile) TimerValues() (TimerValues, error) {
	t, v := p.Timers, DefaultTimerValues()
	dur := func(name, s string, dst *time.Duration, min, max time.Duration, zeroOK bool) error {
		if s == "" {
			return nil
		}
		d, err := style.Duration(s, min, max, zeroOK)
		if err != nil {
			return reasonErr("timers."+name, err)
		}
		*dst = d
		return nil
	}
	const week = 7 * 24 * time.Hour
	for _, err := range []error{
		dur("retransmit_timeout", t.RetransmitTimeout, &v.RetransmitTimeout, 100*time.Millisecond, time.Minute, false),
		dur("keepalive", t.Keepalive, &v.Keepalive, time.Second, 10*time.Minute, true),
		dur("liveness", t.Liveness, &v.Liveness, time.Second, time.Hour, false),
		dur("fast_liveness", t.FastLiveness, &v.FastLiveness, 100*time.Millisecond, time.Hour, false),
		// Short lifetimes are allowed so that rekeying can be rehearsed.
		dur("ike_lifetime", t.IKELifetime, &v.IKELifetime, 10*time.Second, week, false),
		dur("child_lifetime", t.ChildLifetime, &v.ChildLifetime, 10*time.Second, week, false),
	} {
		if err != nil {
			return TimerValues{}, err
		}
	}
	if t.RetransmitTries != 0 {
		if t.RetransmitTries < 1 || t.RetransmitTries > 20 {
			return TimerValues{}, fieldErr("timers.retransmit_tries", "%d is out of range 1..20", t.RetransmitTries)
		}
		v.RetransmitTries = t.RetransmitTries
	}
	if t.RetransmitBase != 0 {
		if math.IsNaN(t.RetransmitBase) || t.RetransmitBase < 1 || t.RetransmitBase > 4 {
			return TimerValues{}, fieldErr("timers.retransmit_base", "%g is out of range 1..4", t.RetransmitBase)
		}
		v.RetransmitBase = t.RetransmitBase
	}
	if v.FastLiveness > v.Liveness {
		return TimerValues{}, fieldErr("timers.fast_liveness", "%s is longer than timers.liveness (%s)", v.FastLiveness, v.Liveness)
	}
	return v, nil
}

// timer returns one parsed timer, or its default when the profile's value is
// invalid (Validate reports that).
func (p *Profile) timer(get func(TimerValues) time.Duration) time.Duration {
	if v, err := p.TimerValues(); err == nil {
		return get(v)
	}
	return get(DefaultTimerValues())
}

// RetransmitTimeout is timers.retransmit_timeout, or its default.
func (p *Profile) RetransmitTimeout() time.Duration {
	return p.timer(func(v TimerValues) time.Duration { return v.RetransmitTimeout })
}

// RetransmitTries is timers.retransmit_tries, or its default.
func (p *Profile) RetransmitTries() int {
	if v, err := p.TimerValues(); err == nil {
		return v.RetransmitTries
	}
	return DefaultTimerValues().RetransmitTries
}

// RetransmitBase is timers.retransmit_base, or its default.
func (p *Profile) RetransmitBase() float64 {
	if v, err := p.TimerValues(); err == nil {
		return v.RetransmitBase
	}
	return DefaultTimerValues().RetransmitBase
}

// Keepalive is timers.keepalive, or its default; 0 means no NAT keepalives.
func (p *Profile) Keepalive() time.Duration {
	return p.timer(func(v TimerValues) time.Duration { return v.Keepalive })
}

// Liveness is timers.liveness, or its default.
func (p *Profile) Liveness() time.Duration {
	return p.timer(func(v TimerValues) time.Duration { return v.Liveness })
}

// FastLiveness is timers.fast_liveness, or its default.
func (p *Profile) FastLiveness() time.Duration {
	return p.timer(func(v TimerValues) time.Duration { return v.FastLiveness })
}

// IKELifetime is timers.ike_lifetime, or its default.
func (p *Profile) IKELifetime() time.Duration {
	return p.timer(func(v TimerValues) time.Duration { return v.IKELifetime })
}

// ChildLifetime is timers.child_lifetime, or its default.
func (p *Profile) ChildLifetime() time.Duration {
	return p.timer(func(v TimerValues) time.Duration { return v.ChildLifetime })
}

// EffectiveMTU is mtu, or DefaultMTU when it is 0.
func (p *Profile) EffectiveMTU() int {
	if p.MTU == 0 {
		return DefaultMTU
	}
	return p.MTU
}

// parseIdentityField parses a required identity with ike/auth, the parser
// the engine uses, and rejects wildcards: the client always names both ends.
func parseIdentityField(field, s string) (auth.Identity, error) {
	id, err := style.Identity(s, maxIDLen)
	return id, reasonErr(field, err)
}

// LogValue logs the profile with secrets redacted: the PSK, the EAP
// password and an inline private key.
func (p Profile) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("name", p.Name),
		slog.Any("gateways", p.Gateways),
		slog.String("remote_id", p.RemoteID),
		slog.String("local_id", p.LocalID),
		slog.Any("auth", p.Auth),
	}
	if p.CA != "" {
		attrs = append(attrs, slog.String("ca", pemOrPath(p.CA)))
	}
	attrs = append(attrs,
		slog.Any("ike_proposals", p.IKEProposals),
		slog.Any("esp_proposals", p.ESPProposals),
		slog.Group("traffic", slog.Any("include", p.Traffic.Include), slog.Any("exclude", p.Traffic.Exclude)),
		slog.Bool("dns", p.UseDNS()),
		slog.Bool("qcd", p.QCDEnabled()),
		slog.Bool("resumption", p.ResumptionEnabled()),
		slog.Bool("ha_sync", p.HASyncEnabled()),
		slog.String("state_dir", p.StateDir),
		slog.Any("timers", p.Timers),
		slog.Int("mtu", p.MTU),
	)
	return slog.GroupValue(attrs...)
}

// String summarizes the profile without secrets.
func (p Profile) String() string {
	return fmt.Sprintf("Profile{name=%q gateways=%q remote_id=%q local_id=%q auth=%v}",
		p.Name, p.Gateways, p.RemoteID, p.LocalID, p.Auth)
}

// GoString is String, so that %#v does not print secrets either.
func (p Profile) GoString() string { return p.String() }

const redacted = "[redacted]"

func pemOrPath(s string) string {
	if pemfile.IsInline(s) {
		return "[inline PEM]"
	}
	return s
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// LogValue logs the method and non-secret fields; PSK, password and an
// inline key are redacted.
func (a Auth) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("method", a.Method)}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("psk", redact(a.PSK))
	add("cert", pemOrPath(a.Cert))
	if pemfile.IsInline(a.Key) {
		add("key", redacted)
	} else {
		add("key", a.Key)
	}
	add("username", a.Username)
	add("password", redact(a.Password))
	return slog.GroupValue(attrs...)
}

// String shows the method and non-secret fields; secrets are redacted.
func (a Auth) String() string {
	var b strings.Builder
	b.WriteString("Auth{method=" + strconv.Quote(a.Method))
	for _, at := range a.LogValue().Group()[1:] {
		b.WriteString(" " + at.Key + "=" + strconv.Quote(at.Value.String()))
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v does not print secrets either.
func (a Auth) GoString() string { return a.String() }

// checkJSON reports the first syntax error (with line and column), unknown
// or miscased key, duplicate key, wrong JSON type, or trailing data, judged
// against Profile's type.
func checkJSON(data []byte) error {
	opts := strictjson.Options{Quote: quote, PlainNumbers: true, ShowSyntaxChar: true}
	if e := strictjson.Check(data, reflect.TypeFor[Profile](), opts); e != nil {
		return &ProfileError{Field: e.Field, Line: e.Line, Column: e.Column, Reason: e.Reason}
	}
	return nil
}
