package gateway

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/qcdvpn/qcdvpn/ike"
	"github.com/qcdvpn/qcdvpn/ike/auth"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/internal/fieldcheck"
	"github.com/qcdvpn/qcdvpn/internal/pemfile"
	"github.com/qcdvpn/qcdvpn/internal/strictjson"
)

// The gateway config is one JSON document (see DESIGN.md, "qcdvpn
// gateway"). Parsing is strict: unknown or miscased keys, duplicate keys,
// wrong JSON types and trailing data are errors, and every error is one
// line naming the JSON field, prefixed "gateway config: ". Secrets (PSKs,
// ticket keys, an inline private key) never appear in errors or in the
// String and LogValue output.
//
// Relative paths (auth.cert, auth.key, auth.ca, qcd.secret_file,
// state_dir) are relative to the current directory for ParseConfig and to
// the config file's directory for LoadConfig.

// MaxConfigSize is the largest config document accepted.
const MaxConfigSize = 1 << 20

// Defaults and limits of the config.
const (
	// DefaultListenPort is the port of a listen entry without one: IKE
	// (behind the non-ESP marker) and ESP share the NAT-T port.
	DefaultListenPort = ike.NATTPort
	// DefaultTUNName is the TUN device of data "tun" without a tun field.
	DefaultTUNName = "qcdgw0"
	// DefaultCookieThreshold is the number of half-open IKE SAs from which
	// on cookies are demanded when cookie_threshold is 0.
	DefaultCookieThreshold = 64
	// DefaultQCDReplyRate is the unprotected replies per second and source
	// when qcd.reply_rate is 0.
	DefaultQCDReplyRate = 10
	// DefaultTicketLifetime and MaxTicketLifetime bound tickets.lifetime.
	DefaultTicketLifetime = time.Hour
	MaxTicketLifetime     = 24 * time.Hour
	// DefaultLiveness is timers.liveness when empty.
	DefaultLiveness = 30 * time.Second

	// DataNetstack serves echo and HTTP in-process; DataTUN routes
	// through a TUN device.
	DataNetstack = "netstack"
	DataTUN      = "tun"

	// AuthPSK and AuthPubkey are the values of auth.method.
	AuthPSK    = "psk"
	AuthPubkey = "pubkey"

	maxListen     = 8
	maxProposals  = 32
	maxPrefixes   = 256
	maxDNS        = 8
	maxPSKs       = 4096
	maxTicketKeys = 16
	maxIDLen      = 1024
	maxPathLen    = 4096
	maxTUNName    = 15 // IFNAMSIZ-1 on Linux
	maxTicketID   = 64
	maxReplyRate  = 1e6
	maxCookies    = 1 << 20
)

// DefaultIKEProposals are used when ike_proposals is empty: x25519 with
// ML-KEM-768 (RFC 9370) first, classical groups for clients without it.
func DefaultIKEProposals() []string {
	return []string{"aes256gcm16-prfsha256-x25519-ke1_mlkem768", "aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha384-ecp384", "aes256-sha256-modp2048"}
}

// DefaultESPProposals are used when esp_proposals is empty.
func DefaultESPProposals() []string {
	return []string{"aes256gcm16", "chacha20poly1305", "aes256-sha256"}
}

// Config is the gateway config as written. Use ParseConfig or LoadConfig
// to read one; a Config built in Go should get Validate. The accessors
// return resolved values with defaults applied.
type Config struct {
	// Listen are the addresses to bind: "addr", "addr:port" or
	// "[v6]:port", IP literals only; the default port is 4500. 1..8 entries.
	Listen []string `json:"listen"`
	// ID is the gateway's identity (IDr) in strongSwan syntax: FQDN, IP
	// address, user@fqdn, or a DN. Required.
	ID string `json:"id"`
	// Auth is how the gateway authenticates and verifies clients.
	Auth AuthConfig `json:"auth"`
	// PSKs are per-client PSKs, client identity -> PSK; a client not listed
	// gets auth.psk (if set).
	PSKs map[string]string `json:"psks,omitempty"`
	// Pool are the virtual address pools: at most one IPv4 and one IPv6 prefix.
	Pool []string `json:"pool"`
	// DNS are the DNS server addresses handed out with a virtual address.
	DNS []string `json:"dns,omitempty"`
	// DNSDomains are the split-DNS domains (RFC 8598) the DNS servers
	// resolve; see dns.go.
	DNSDomains []string `json:"dns_domains,omitempty"`
	// DNSZone is a small zone served behind the tunnel; see dns.go.
	DNSZone *DNSZoneConfig `json:"dns_zone,omitempty"`
	// LocalTS are the prefixes the gateway protects (clients' TSr is
	// narrowed to them). Required.
	LocalTS []string `json:"local_ts"`
	// IKEProposals and ESPProposals in strongSwan syntax, most preferred
	// first; default DefaultIKEProposals and DefaultESPProposals.
	IKEProposals []string `json:"ike_proposals"`
	ESPProposals []string `json:"esp_proposals"`
	// QCD configures the RFC 6290 token maker.
	QCD QCDConfig `json:"qcd"`
	// Tickets configures RFC 5723 session resumption tickets.
	Tickets TicketsConfig `json:"tickets"`
	// Redirect configures RFC 5685 redirects.
	Redirect RedirectConfig `json:"redirect"`
	// Data is "netstack" (default: echo and HTTP served in-process) or
	// "tun" (the pool is routed through a TUN device).
	Data string `json:"data"`
	// TUN names the TUN device for data "tun" (default "qcdgw0").
	TUN string `json:"tun,omitempty"`
	// StateDir holds the gateway's state. Required.
	StateDir string `json:"state_dir"`
	// CookieThreshold is the number of half-open IKE SAs from which on
	// IKE_SA_INIT must carry a cookie: 0 means DefaultCookieThreshold, -1
	// never demand cookies.
	CookieThreshold int `json:"cookie_threshold,omitempty"`
	// Timers tune the sessions.
	Timers TimersConfig `json:"timers"`
	// HA configures hot-standby takeover (RFC 6311).
	HA HAConfig `json:"ha,omitzero"`
}

// AuthConfig is the gateway's authentication. Method "psk" needs psk (or
// the top-level psks) and takes no cert, key or ca. Method "pubkey" needs
// cert, key and ca (ca is optional with eap); psk and psks are optional
// and then also let PSK clients in (a PSK answers a PSK); eap also lets
// EAP-MSCHAPv2 (and with eap.tls EAP-TLS) clients in, to whom the gateway
// authenticates with cert.
type AuthConfig struct {
	// Method is "psk" or "pubkey".
	Method string `json:"method"`
	// PSK is the PSK for every client not in psks. As in strongSwan, "0x"
	// starts hex and "0s" base64; anything else is used as bytes.
	PSK string `json:"psk,omitempty"`
	// Cert is inline PEM or a PEM file: the gateway certificate, leaf first,
	// optionally followed by intermediates. Its SANs must hold id.
	Cert string `json:"cert,omitempty"`
	// Key is inline PEM or a PEM file: Cert's unencrypted private key.
	Key string `json:"key,omitempty"`
	// CA is inline PEM or a PEM file: the CAs that sign client certificates.
	// Optional with eap unless eap.tls (then only EAP and PSK clients get
	// in).
	CA string `json:"ca,omitempty"`
	// EAP lets clients authenticate with EAP-MSCHAPv2 or EAP-TLS (method
	// "pubkey" only: towards EAP clients the gateway proves itself with
	// cert).
	EAP *EAPConfig `json:"eap,omitempty"`
}

// QCDConfig configures the QCD token maker.
type QCDConfig struct {
	// SecretFile holds the token secret, kept across restarts so that
	// tokens still verify after a crash; default state_dir/qcd.secret.
	SecretFile string `json:"secret_file"`
	// Rollover is how often the secret is replaced (a Go duration,
	// 1m..8760h); empty means never.
	Rollover string `json:"rollover,omitempty"`
	// ReplyRate bounds unprotected replies per second per source address
	// (0 < rate <= 1e6); 0 means DefaultQCDReplyRate.
	ReplyRate float64 `json:"reply_rate,omitempty"`
}

// TicketsConfig configures resumption tickets. Without keys no tickets
// are issued.
type TicketsConfig struct {
	// Keys seal tickets: the first one seals new tickets, all of them open.
	Keys []TicketKeyEntry `json:"keys"`
	// Lifetime of a ticket (a Go duration, 1s..24h); default "1h".
	Lifetime string `json:"lifetime"`
}

// TicketKeyEntry is one ticket key as written.
type TicketKeyEntry struct {
	// ID names the key inside tickets: 1..64 of [A-Za-z0-9._:-].
	ID string `json:"id"`
	// KeyHex is the 32-byte key as 64 hex digits.
	KeyHex string `json:"key_hex"`
}

// TicketKeyConfig is a ticket key decoded.
type TicketKeyConfig struct {
	ID  string
	Key [32]byte
}

// RedirectConfig names gateways to redirect clients to (RFC 5685): an IP
// address or a DNS name, without port. Empty means no redirect.
type RedirectConfig struct {
	// InitTo redirects in the IKE_SA_INIT response.
	InitTo string `json:"init_to,omitempty"`
	// AuthTo redirects in the IKE_AUTH response.
	AuthTo string `json:"auth_to,omitempty"`
}

// TimersConfig holds session timings as Go durations.
type TimersConfig struct {
	// Liveness is the idle time before a liveness check (1s..1h, default 30s).
	Liveness string `json:"liveness,omitempty" want:"a duration such as \"30s\""`
	// IKELifetime and ChildLifetime are when the gateway rekeys
	// (10s..168h); empty or "0s" leaves rekeying to the clients.
	IKELifetime   string `json:"ike_lifetime,omitempty" want:"a duration such as \"4h\""`
	ChildLifetime string `json:"child_lifetime,omitempty" want:"a duration such as \"1h\""`
}

// ConfigError is the error of everything in this file. File is set by
// LoadConfig; Field is the JSON path ("listen[1]", "auth.psk") or empty;
// Line and Column are set for JSON syntax errors.
type ConfigError struct {
	File   string
	Field  string
	Line   int
	Column int
	Reason string
}

// Error returns one line: "gateway config: [file: ][line L, column C: ][field: ]reason".
func (e *ConfigError) Error() string {
	return fieldcheck.Message("gateway config: ", e.File, e.Line, e.Column, e.Field, e.Reason)
}

func fieldErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// reasonErr puts a reason from internal/fieldcheck or internal/pemfile on
// field; nil stays nil.
func reasonErr(field string, err error) error {
	if err == nil {
		return nil
	}
	return fieldErr(field, "%s", err)
}

// style and pemRules are the config's wording and limits for the checks
// it shares with client profiles.
var (
	style    = fieldcheck.Style{QuoteLen: 64}
	pemRules = pemfile.Rules{QuoteLen: style.QuoteLen, MaxPathLen: maxPathLen, MaxSize: MaxConfigSize}
)

// LoadConfig reads and parses the config file at path, makes the relative
// paths in it relative to the file's directory, and loads the credentials
// of method "pubkey". Errors name the file.
func LoadConfig(path string) (*Config, error) {
	withFile := func(err error) error {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.File = path
			return ce
		}
		return &ConfigError{File: path, Reason: err.Error()}
	}
	data, err := pemfile.ReadFile(path, MaxConfigSize)
	if err != nil {
		return nil, withFile(fieldErr("", "cannot read: %s", pemfile.PathErrReason(err)))
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, withFile(err)
	}
	dir := filepath.Dir(path)
	rel := func(s string) string { return pemfile.Rel(dir, s) }
	c.Auth.Cert, c.Auth.Key, c.Auth.CA = rel(c.Auth.Cert), rel(c.Auth.Key), rel(c.Auth.CA)
	c.QCD.SecretFile, c.StateDir = rel(c.QCD.SecretFile), rel(c.StateDir)
	c.HA.ExportFile, c.HA.ImportFile = rel(c.HA.ExportFile), rel(c.HA.ImportFile)
	if _, _, _, err := c.Credentials(); err != nil {
		return nil, withFile(err)
	}
	return c, nil
}

// ParseConfig decodes a config strictly and validates it. It does no I/O:
// files it names are read by Credentials (and by the gateway).
func ParseConfig(b []byte) (*Config, error) {
	if len(b) > MaxConfigSize {
		return nil, fieldErr("", "too large (%d bytes; the limit is %d)", len(b), MaxConfigSize)
	}
	if err := checkJSON(b); err != nil {
		return nil, err
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		// checkJSON has seen every key and type; this is a backstop.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fieldErr(te.Field, "want %s, got JSON %s", te.Type, te.Value)
		}
		return nil, fieldErr("", "invalid JSON")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks every field without I/O and returns the first problem.
func (c *Config) Validate() error {
	if _, err := c.ListenAddrs(); err != nil {
		return err
	}
	if _, err := c.Identity(); err != nil {
		return err
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if _, _, err := c.Pools(); err != nil {
		return err
	}
	if _, err := c.DNSServers(); err != nil {
		return err
	}
	if _, err := c.DNSDomainList(); err != nil {
		return err
	}
	if _, err := c.Zone(); err != nil {
		return err
	}
	if len(c.LocalTS) == 0 {
		return fieldErr("local_ts", "required (the prefixes the gateway protects, such as \"10.200.0.0/24\")")
	}
	if _, err := parsePrefixes("local_ts", c.LocalTS); err != nil {
		return err
	}
	if _, _, err := c.Proposals(); err != nil {
		return err
	}
	if err := c.validateQCD(); err != nil {
		return err
	}
	if _, err := c.TicketKeys(); err != nil {
		return err
	}
	if _, err := c.ticketLifetime(); err != nil {
		return err
	}
	if err := checkRedirect("redirect.init_to", c.Redirect.InitTo); err != nil {
		return err
	}
	if err := checkRedirect("redirect.auth_to", c.Redirect.AuthTo); err != nil {
		return err
	}
	switch c.Data {
	case "", DataNetstack:
		if c.TUN != "" {
			return fieldErr("tun", "only used with data \"tun\"")
		}
	case DataTUN:
		if err := checkTUNName(c.TUN); err != nil {
			return err
		}
	default:
		return fieldErr("data", "unknown mode %s (want \"netstack\" or \"tun\")", quote(c.Data))
	}
	if c.StateDir == "" {
		return fieldErr("state_dir", "required")
	}
	if err := checkPath("state_dir", c.StateDir); err != nil {
		return err
	}
	if c.CookieThreshold < -1 || c.CookieThreshold > maxCookies {
		return fieldErr("cookie_threshold", "%d is out of range (want -1 for never, 0 for the default %d, or 1..%d)",
			c.CookieThreshold, DefaultCookieThreshold, maxCookies)
	}
	if _, err := c.sessionTimers(); err != nil {
		return err
	}
	return c.validateHA()
}

// ListenAddrs returns the addresses to bind, default port applied.
func (c *Config) ListenAddrs() ([]netip.AddrPort, error) {
	switch {
	case len(c.Listen) == 0:
		return nil, fieldErr("listen", "required (one or more IP addresses, such as \"192.0.2.1\")")
	case len(c.Listen) > maxListen:
		return nil, fieldErr("listen", "more than %d addresses", maxListen)
	}
	out := make([]netip.AddrPort, 0, len(c.Listen))
	for i, s := range c.Listen {
		f := fmt.Sprintf("listen[%d]", i)
		ap, err := parseListen(s)
		if err != nil {
			return nil, fieldErr(f, "%s", err.Error())
		}
		if j := slices.Index(out, ap); j >= 0 {
			return nil, fieldErr(f, "duplicate of listen[%d]", j)
		}
		out = append(out, ap)
	}
	return out, nil
}

func parseListen(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), DefaultListenPort), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		host := s
		if h, _, ok := strings.Cut(s, ":"); ok && strings.Count(s, ":") == 1 {
			host = h
		}
		if _, err := netip.ParseAddr(host); err != nil && host != "" && checkHostname(host) == "" {
			return netip.AddrPort{}, fmt.Errorf("%s is a host name; want an IP address to bind", quote(host))
		}
		return netip.AddrPort{}, fmt.Errorf("invalid address %s (want \"addr\", \"addr:port\" or \"[v6]:port\")", quote(s))
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("invalid address %s: port 0", quote(s))
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// Identity returns id parsed.
func (c *Config) Identity() (auth.Identity, error) {
	return parseIdentityField("id", c.ID)
}

func (c *Config) validateAuth() error {
	a := c.Auth
	switch a.Method {
	case "":
		return fieldErr("auth.method", "required (\"psk\" or \"pubkey\")")
	case AuthPSK:
		if a.PSK == "" && len(c.PSKs) == 0 {
			return fieldErr("auth.psk", "required for method \"psk\" (or per-client keys in psks)")
		}
		for _, f := range []struct{ name, v string }{{"cert", a.Cert}, {"key", a.Key}, {"ca", a.CA}} {
			if f.v != "" {
				return fieldErr("auth."+f.name, "not used with method \"psk\"")
			}
		}
	case AuthPubkey:
		for _, f := range []struct{ name, v string }{{"cert", a.Cert}, {"key", a.Key}, {"ca", a.CA}} {
			if f.v == "" && (f.name != "ca" || a.EAP == nil) {
				return fieldErr("auth."+f.name, "required for method \"pubkey\"")
			}
		}
	default:
		return fieldErr("auth.method", "unknown method %s (want \"psk\" or \"pubkey\")", quote(a.Method))
	}
	if a.PSK != "" {
		if _, err := decodePSK("auth.psk", a.PSK); err != nil {
			return err
		}
	}
	if err := checkPEMOrPath("auth.cert", a.Cert, false); err != nil {
		return err
	}
	if err := checkPEMOrPath("auth.key", a.Key, true); err != nil {
		return err
	}
	if err := checkPEMOrPath("auth.ca", a.CA, false); err != nil {
		return err
	}
	if err := c.validateEAP(); err != nil {
		return err
	}
	_, err := c.pskTable()
	return err
}

// pskEntry is one per-client PSK.
type pskEntry struct {
	id  auth.Identity
	psk []byte
}

// pskTable parses psks, in key order so errors are deterministic.
func (c *Config) pskTable() ([]pskEntry, error) {
	if len(c.PSKs) > maxPSKs {
		return nil, fieldErr("psks", "more than %d entries", maxPSKs)
	}
	keys := make([]string, 0, len(c.PSKs))
	for k := range c.PSKs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]pskEntry, 0, len(keys))
	for _, k := range keys {
		f := "psks[" + quote(k) + "]"
		id, err := parseIdentityField(f, k)
		if err != nil {
			return nil, err
		}
		for _, e := range out {
			if e.id.Equal(id) {
				return nil, fieldErr(f, "same identity as another entry")
			}
		}
		psk, err := decodePSK(f, c.PSKs[k])
		if err != nil {
			return nil, err
		}
		out = append(out, pskEntry{id: id, psk: psk})
	}
	return out, nil
}

// PSKFunc returns the PSK lookup for ike.ResponderConfig.PSK: the client's
// entry in psks, else auth.psk, else nil (unknown client). It returns a
// nil func when no PSK is configured (method "pubkey" alone).
func (c *Config) PSKFunc() (func(peer auth.Identity) []byte, error) {
	table, err := c.pskTable()
	if err != nil {
		return nil, err
	}
	var def []byte
	if c.Auth.PSK != "" {
		if def, err = decodePSK("auth.psk", c.Auth.PSK); err != nil {
			return nil, err
		}
	}
	if len(table) == 0 && def == nil {
		return nil, nil
	}
	return func(peer auth.Identity) []byte {
		for _, e := range table {
			if e.id.Equal(peer) {
				return bytes.Clone(e.psk)
			}
		}
		return bytes.Clone(def)
	}, nil
}

// decodePSK decodes "0x" + hex, "0s" + base64, else the bytes as written.
// Errors never quote the value.
func decodePSK(field, s string) ([]byte, error) {
	b, err := fieldcheck.PSK(s)
	return b, reasonErr(field, err)
}

// Credentials reads (when they are paths) and parses auth.key, auth.cert
// and auth.ca for method "pubkey": the gateway's signer, its chain (DER,
// leaf first) and the client CAs. It checks that the key matches the
// certificate and that the certificate holds id. For method "psk" it
// returns nothing.
func (c *Config) Credentials() (signer crypto.Signer, chain [][]byte, cas []*x509.Certificate, err error) {
	if c.Auth.Method != AuthPubkey {
		return nil, nil, nil, nil
	}
	certs, err := loadCerts("auth.cert", c.Auth.Cert)
	if err != nil {
		return nil, nil, nil, err
	}
	if signer, err = loadKey("auth.key", c.Auth.Key); err != nil {
		return nil, nil, nil, err
	}
	if !pemfile.KeyMatches(signer, certs[0]) {
		return nil, nil, nil, fieldErr("auth.key", "does not match the public key of auth.cert")
	}
	id, err := c.Identity()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := auth.CertMatchesIdentity(certs[0], id); err != nil {
		return nil, nil, nil, fieldErr("auth.cert", "does not hold id %s (clients check it): %s", quote(c.ID), strings.TrimPrefix(err.Error(), "auth: "))
	}
	if c.Auth.CA != "" || c.Auth.EAP == nil {
		if cas, err = loadCerts("auth.ca", c.Auth.CA); err != nil {
			return nil, nil, nil, err
		}
	}
	for _, cert := range certs {
		chain = append(chain, cert.Raw)
	}
	return signer, chain, cas, nil
}

// Pools returns the IPv4 and IPv6 pools; the zero Prefix means none.
func (c *Config) Pools() (v4, v6 netip.Prefix, err error) {
	if len(c.Pool) > 2 {
		return v4, v6, fieldErr("pool", "more than two prefixes (at most one IPv4 and one IPv6)")
	}
	ps, err := parsePrefixes("pool", c.Pool)
	if err != nil {
		return v4, v6, err
	}
	for i, p := range ps {
		f := fmt.Sprintf("pool[%d]", i)
		if p.Addr().Is4() {
			if v4.IsValid() {
				return netip.Prefix{}, netip.Prefix{}, fieldErr(f, "second IPv4 pool (at most one of each family)")
			}
			v4 = p
		} else {
			if v6.IsValid() {
				return netip.Prefix{}, netip.Prefix{}, fieldErr(f, "second IPv6 pool (at most one of each family)")
			}
			v6 = p
		}
	}
	return v4, v6, nil
}

// DNSServers returns dns parsed.
func (c *Config) DNSServers() ([]netip.Addr, error) {
	if len(c.DNS) > maxDNS {
		return nil, fieldErr("dns", "more than %d servers", maxDNS)
	}
	out := make([]netip.Addr, 0, len(c.DNS))
	for i, s := range c.DNS {
		f := fmt.Sprintf("dns[%d]", i)
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil:
			return nil, fieldErr(f, "invalid IP address %s", quote(s))
		case a.Zone() != "":
			return nil, fieldErr(f, "zoned address %s is not supported", quote(s))
		case a.IsUnspecified() || a.IsMulticast():
			return nil, fieldErr(f, "%s is not a unicast address", quote(s))
		}
		a = a.Unmap()
		if j := slices.Index(out, a); j >= 0 {
			return nil, fieldErr(f, "duplicate of dns[%d]", j)
		}
		out = append(out, a)
	}
	return out, nil
}

// LocalPrefixes returns local_ts parsed (nil if invalid; Validate says why).
func (c *Config) LocalPrefixes() []netip.Prefix {
	ps, err := parsePrefixes("local_ts", c.LocalTS)
	if err != nil {
		return nil
	}
	return ps
}

// Proposals returns the IKE and ESP proposals parsed, defaults applied.
func (c *Config) Proposals() (ikeProps, espProps []ikecrypto.Proposal, err error) {
	if ikeProps, err = parseProposals("ike_proposals", c.IKEProposals, DefaultIKEProposals(), false); err != nil {
		return nil, nil, err
	}
	if espProps, err = parseProposals("esp_proposals", c.ESPProposals, DefaultESPProposals(), true); err != nil {
		return nil, nil, err
	}
	return ikeProps, espProps, nil
}

func parseProposals(field string, list, def []string, esp bool) ([]ikecrypto.Proposal, error) {
	if len(list) == 0 {
		list = def
	}
	out, f, err := style.Proposals(field, list, maxProposals, esp)
	if err != nil {
		return nil, reasonErr(f, err)
	}
	return out, nil
}

func (c *Config) validateQCD() error {
	if err := checkPath("qcd.secret_file", c.QCD.SecretFile); err != nil {
		return err
	}
	if _, err := parseDuration("qcd.rollover", c.QCD.Rollover, time.Minute, 8760*time.Hour, false); err != nil {
		return err
	}
	r := c.QCD.ReplyRate
	if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 || r > maxReplyRate {
		return fieldErr("qcd.reply_rate", "%g is out of range (want 0 for the default %d, or more than 0 up to %g per second)",
			r, DefaultQCDReplyRate, float64(maxReplyRate))
	}
	return nil
}

// QCDSecretFile returns qcd.secret_file, default state_dir/qcd.secret.
func (c *Config) QCDSecretFile() string {
	if c.QCD.SecretFile != "" {
		return c.QCD.SecretFile
	}
	return filepath.Join(c.StateDir, "qcd.secret")
}

// QCDRollover returns qcd.rollover; 0 means the secret is never replaced.
func (c *Config) QCDRollover() time.Duration {
	d, err := parseDuration("qcd.rollover", c.QCD.Rollover, time.Minute, 8760*time.Hour, false)
	if err != nil {
		return 0
	}
	return d
}

// QCDReplyRate returns qcd.reply_rate, or DefaultQCDReplyRate.
func (c *Config) QCDReplyRate() float64 {
	if r := c.QCD.ReplyRate; r > 0 && r <= maxReplyRate {
		return r
	}
	return DefaultQCDReplyRate
}

// TicketKeys returns the ticket keys decoded, in order (the first seals).
func (c *Config) TicketKeys() ([]TicketKeyConfig, error) {
	if len(c.Tickets.Keys) > maxTicketKeys {
		return nil, fieldErr("tickets.keys", "more than %d keys", maxTicketKeys)
	}
	out := make([]TicketKeyConfig, 0, len(c.Tickets.Keys))
	for i, k := range c.Tickets.Keys {
		f := fmt.Sprintf("tickets.keys[%d]", i)
		if err := checkTicketID(f+".id", k.ID); err != nil {
			return nil, err
		}
		for j, o := range out {
			if o.ID == k.ID {
				return nil, fieldErr(f+".id", "duplicate of tickets.keys[%d].id", j)
			}
		}
		var tk TicketKeyConfig
		tk.ID = k.ID
		// Length first, so that the key never reaches an error message.
		if len(k.KeyHex) != 2*len(tk.Key) {
			return nil, fieldErr(f+".key_hex", "want 64 hex digits")
		}
		if _, err := hex.Decode(tk.Key[:], []byte(k.KeyHex)); err != nil {
			return nil, fieldErr(f+".key_hex", "want 64 hex digits")
		}
		if tk.Key == ([32]byte{}) {
			return nil, fieldErr(f+".key_hex", "all zeros; use a random key")
		}
		out = append(out, tk)
	}
	return out, nil
}

func checkTicketID(field, s string) error {
	if s == "" {
		return fieldErr(field, "required")
	}
	if len(s) > maxTicketID {
		return fieldErr(field, "longer than %d bytes", maxTicketID)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:-", c) >= 0) {
			return fieldErr(field, "invalid character %q (want letters, digits and . _ : -)", rune(c))
		}
	}
	return nil
}

// TicketLifetime returns tickets.lifetime, or DefaultTicketLifetime.
func (c *Config) TicketLifetime() time.Duration {
	d, err := c.ticketLifetime()
	if err != nil {
		return DefaultTicketLifetime
	}
	return d
}

func (c *Config) ticketLifetime() (time.Duration, error) {
	if c.Tickets.Lifetime == "" {
		return DefaultTicketLifetime, nil
	}
	return parseDuration("tickets.lifetime", c.Tickets.Lifetime, time.Second, MaxTicketLifetime, false)
}

func checkRedirect(field, s string) error {
	if s == "" {
		return nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			return fieldErr(field, "%s is not a unicast address without zone", quote(s))
		}
		return nil
	}
	if reason := checkHostname(s); reason != "" {
		return fieldErr(field, "want an IP address or a DNS name without port: %s", reason)
	}
	return nil
}

// checkHostname returns why s is not a DNS name (RFC 1123 labels; the
// last one not all digits, so that a mistyped IPv4 address is no name).
func checkHostname(s string) string {
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > 253 {
		return fmt.Sprintf("invalid host name %s", quote(s))
	}
	labels := strings.Split(name, ".")
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Sprintf("invalid host name %s", quote(s))
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Sprintf("invalid host name %s", quote(s))
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Sprintf("invalid host name %s", quote(s))
			}
		}
	}
	return ""
}

func checkTUNName(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > maxTUNName {
		return fieldErr("tun", "name longer than %d bytes", maxTUNName)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fieldErr("tun", "invalid character %q in name (want letters, digits and . _ -)", rune(c))
		}
	}
	return nil
}

// DataMode returns data, default DataNetstack.
func (c *Config) DataMode() string {
	if c.Data == "" {
		return DataNetstack
	}
	return c.Data
}

// TUNName returns tun, default DefaultTUNName.
func (c *Config) TUNName() string {
	if c.TUN == "" {
		return DefaultTUNName
	}
	return c.TUN
}

// EffectiveCookieThreshold returns the value for
// ike.ResponderConfig.CookieThreshold: 0 (never) for -1, the default for 0.
func (c *Config) EffectiveCookieThreshold() int {
	switch {
	case c.CookieThreshold == 0:
		return DefaultCookieThreshold
	case c.CookieThreshold < 0:
		return 0
	}
	return c.CookieThreshold
}

// SessionTimers returns the timers for ike.ResponderConfig.Timers (with
// defaults for fields that are empty or invalid).
func (c *Config) SessionTimers() ike.Timers {
	t, err := c.sessionTimers()
	if err != nil {
		return ike.Timers{Liveness: DefaultLiveness}
	}
	return t
}

func (c *Config) sessionTimers() (ike.Timers, error) {
	const week = 7 * 24 * time.Hour
	t := ike.Timers{Liveness: DefaultLiveness}
	var err error
	if c.Timers.Liveness != "" {
		if t.Liveness, err = parseDuration("timers.liveness", c.Timers.Liveness, time.Second, time.Hour, false); err != nil {
			return ike.Timers{}, err
		}
	}
	// Short lifetimes are allowed so that rekeying can be rehearsed.
	if t.IKELifetime, err = parseDuration("timers.ike_lifetime", c.Timers.IKELifetime, 10*time.Second, week, true); err != nil {
		return ike.Timers{}, err
	}
	if t.ChildLifetime, err = parseDuration("timers.child_lifetime", c.Timers.ChildLifetime, 10*time.Second, week, true); err != nil {
		return ike.Timers{}, err
	}
	return t, nil
}

// parseDuration parses an optional Go duration within [lo, hi]; "" is 0,
// and so is "0s" when zeroOK.
func parseDuration(field, s string, lo, hi time.Duration, zeroOK bool) (time.Duration, error) {
	d, err := style.Duration(s, lo, hi, zeroOK)
	return d, reasonErr(field, err)
}

func parsePrefixes(field string, list []string) ([]netip.Prefix, error) {
	out, f, err := style.Prefixes(field, list, maxPrefixes)
	if err != nil {
		return nil, reasonErr(f, err)
	}
	return out, nil
}

// parseIdentityField parses a required identity with ike/auth, the parser
// the engine uses, and rejects wildcards.
func parseIdentityField(field, s string) (auth.Identity, error) {
	id, err := style.Identity(s, maxIDLen)
	return id, reasonErr(field, err)
}

// checkPEMOrPath parses inline PEM or checks a path's syntax (no I/O).
func checkPEMOrPath(field, s string, isKey bool) error {
	return reasonErr(field, pemRules.Check(s, isKey))
}

func checkPath(field, s string) error {
	return reasonErr(field, fieldcheck.Path(s, maxPathLen))
}

// loadCerts reads (when it is a path) and parses the required certificates s.
func loadCerts(field, s string) ([]*x509.Certificate, error) {
	if s == "" {
		return nil, fieldErr(field, "required")
	}
	certs, err := pemRules.Certs(s)
	return certs, reasonErr(field, err)
}

// loadKey reads (when it is a path) and parses the required private key s.
func loadKey(field, s string) (crypto.Signer, error) {
	if s == "" {
		return nil, fieldErr(field, "required")
	}
	k, err := pemRules.Key(s)
	return k, reasonErr(field, err)
}

// quote quotes s for an error message, shortened if long.
func quote(s string) string { return style.Quote(s) }

const redacted = "[redacted]"

// LogValue logs the config with secrets redacted: PSKs, ticket keys and an
// inline private key.
func (c Config) LogValue() slog.Value {
	psks := make([]string, 0, len(c.PSKs))
	for id := range c.PSKs {
		psks = append(psks, id)
	}
	slices.Sort(psks)
	keyIDs := make([]string, 0, len(c.Tickets.Keys))
	for _, k := range c.Tickets.Keys {
		keyIDs = append(keyIDs, k.ID)
	}
	authAttrs := []slog.Attr{slog.String("method", c.Auth.Method)}
	if c.Auth.PSK != "" {
		authAttrs = append(authAttrs, slog.String("psk", redacted))
	}
	for _, f := range []struct{ k, v string }{{"cert", c.Auth.Cert}, {"key", c.Auth.Key}, {"ca", c.Auth.CA}} {
		switch {
		case f.v == "":
		case f.k == "key" && pemfile.IsInline(f.v):
			authAttrs = append(authAttrs, slog.String(f.k, redacted))
		case pemfile.IsInline(f.v):
			authAttrs = append(authAttrs, slog.String(f.k, "[inline PEM]"))
		default:
			authAttrs = append(authAttrs, slog.String(f.k, f.v))
		}
	}
	if c.Auth.EAP != nil {
		authAttrs = append(authAttrs, slog.Any("eap_users", c.Auth.EAP.userNames())) // names only
	}
	return slog.GroupValue(
		slog.Any("listen", c.Listen),
		slog.String("id", c.ID),
		slog.Attr{Key: "auth", Value: slog.GroupValue(authAttrs...)},
		slog.Any("psks", psks), // identities only
		slog.Any("pool", c.Pool),
		slog.Any("dns", c.DNS),
		slog.Any("local_ts", c.LocalTS),
		slog.Any("ike_proposals", c.IKEProposals),
		slog.Any("esp_proposals", c.ESPProposals),
		slog.Group("qcd", slog.String("secret_file", c.QCD.SecretFile), slog.String("rollover", c.QCD.Rollover), slog.Float64("reply_rate", c.QCD.ReplyRate)),
		slog.Group("tickets", slog.Any("key_ids", keyIDs), slog.String("lifetime", c.Tickets.Lifetime)),
		slog.Group("redirect", slog.String("init_to", c.Redirect.InitTo), slog.String("auth_to", c.Redirect.AuthTo)),
		slog.String("data", c.Data),
		slog.String("tun", c.TUN),
		slog.String("state_dir", c.StateDir),
		slog.Int("cookie_threshold", c.CookieThreshold),
		slog.Group("timers", slog.String("liveness", c.Timers.Liveness), slog.String("ike_lifetime", c.Timers.IKELifetime), slog.String("child_lifetime", c.Timers.ChildLifetime)),
		slog.Group("ha", slog.String("export_file", c.HA.ExportFile), slog.String("import_file", c.HA.ImportFile),
			slog.String("export_interval", c.HA.ExportInterval), slog.Int("counter_skip", c.HA.CounterSkip)), // never the key
	)
}

// String summarizes the config without secrets.
func (c Config) String() string {
	return fmt.Sprintf("gateway.Config{listen=%q id=%q auth=%q data=%q state_dir=%q}", c.Listen, c.ID, c.Auth.Method, c.DataMode(), c.StateDir)
}

// GoString is String, so that %#v does not print secrets either.
func (c Config) GoString() string { return c.String() }

// String shows the method and non-secret fields.
func (a AuthConfig) String() string {
	return fmt.Sprintf("AuthConfig{method=%q}", a.Method)
}

// GoString is String, so that %#v does not print secrets either.
func (a AuthConfig) GoString() string { return a.String() }

// String shows the key id only.
func (k TicketKeyEntry) String() string { return fmt.Sprintf("TicketKeyEntry{id=%q}", k.ID) }

// GoString is String, so that %#v does not print the key either.
func (k TicketKeyEntry) GoString() string { return k.String() }

// String shows the key id only.
func (k TicketKeyConfig) String() string { return fmt.Sprintf("TicketKeyConfig{id=%q}", k.ID) }

// GoString is String, so that %#v does not print the key either.
func (k TicketKeyConfig) GoString() string { return k.String() }

// checkJSON reports the first syntax error (with line and column), unknown
// or miscased key, duplicate key, wrong JSON type, or trailing data, judged
// against Config's type. Syntax errors do not show the offending character:
// it may sit inside a PSK.
func checkJSON(data []byte) error {
	if e := strictjson.Check(data, reflect.TypeFor[Config](), strictjson.Options{Quote: quote}); e != nil {
		return &ConfigError{Field: e.Field, Line: e.Line, Column: e.Column, Reason: e.Reason}
	}
	return nil
}
