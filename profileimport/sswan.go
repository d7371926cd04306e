package profileimport

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/sdk"
)

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Limits of the Android client, which a .sswan is written for.
const (
	natKeepaliveMin, natKeepaliveMax = 10, 120
)

// sswan is a .sswan profile, read and checked.
type sswan struct {
	name, typ                string
	addr, remoteID           string
	port                     int
	cert                     []*x509.Certificate // remote.cert
	localID, eapID           string
	p12                      []byte
	ikeProposal, espProposal string
	mtu, keepalive           int
	include, exclude         []string
	warnings                 []string
}

func (s *sswan) warn(format string, args ...any) {
	s.warnings = append(s.warnings, fmt.Sprintf(format, args...))
}

// readSSwan checks the document against the format and collects what is
// ignored as warnings.
func readSSwan(data []byte) (*sswan, error) {
	if err := checkDuplicates(data); err != nil {
		return nil, err
	}
	top, err := newObj("", data)
	if err != nil {
		return nil, err
	}
	s := &sswan{}
	uuid, ok, err := top.str("uuid")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("sswan: uuid: required")
	}
	if !uuidRE.MatchString(uuid) {
		return nil, fmt.Errorf("sswan: uuid: %s is not a UUID (RFC 4122)", short(uuid))
	}
	if s.name, ok, err = top.str("name"); err != nil {
		return nil, err
	} else if !ok || strings.TrimSpace(s.name) == "" {
		return nil, errors.New("sswan: name: required")
	}
	if s.typ, ok, err = top.str("type"); err != nil {
		return nil, err
	} else if !ok {
		return nil, errors.New("sswan: type: required")
	}

	remote, ok, err := top.sub("remote")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("sswan: remote: required")
	}
	if s.addr, ok, err = remote.str("addr"); err != nil {
		return nil, err
	} else if !ok || s.addr == "" {
		return nil, errors.New("sswan: remote.addr: required")
	}
	if s.port, ok, err = remote.integer("port"); err != nil {
		return nil, err
	} else if ok && (s.port < 1 || s.port > 65535) {
		return nil, fmt.Errorf("sswan: remote.port: %d is out of range 1..65535", s.port)
	}
	if s.remoteID, _, err = remote.str("id"); err != nil {
		return nil, err
	}
	if c, ok, err := remote.str("cert"); err != nil {
		return nil, err
	} else if ok && c != "" {
		if s.cert, err = decodeCerts("remote.cert", c); err != nil {
			return nil, err
		}
	}
	if certreq, ok, err := remote.boolean("certreq"); err != nil {
		return nil, err
	} else if ok && !certreq {
		s.warn("remote.certreq: ignored: certificate requests are always sent")
	}
	if rev, ok, err := remote.sub("revocation"); err != nil {
		return nil, err
	} else if ok {
		var on []string
		for _, k := range []string{"crl", "ocsp", "strict"} {
			b, set, err := rev.boolean(k)
			if err != nil {
				return nil, err
			}
			if set && b {
				on = append(on, k)
			}
		}
		if len(on) > 0 {
			s.warn("remote.revocation (%s): ignored: qcdvpn does not check revocation", strings.Join(on, ", "))
		}
		s.unknown(rev)
	}
	s.unknown(remote)

	if local, ok, err := top.sub("local"); err != nil {
		return nil, err
	} else if ok {
		if s.localID, _, err = local.str("id"); err != nil {
			return nil, err
		}
		if s.eapID, _, err = local.str("eap_id"); err != nil {
			return nil, err
		}
		if p, ok, err := local.str("p12"); err != nil {
			return nil, err
		} else if ok && p != "" {
			if s.p12, err = decodeBase64(p); err != nil {
				return nil, fmt.Errorf("sswan: local.p12: %v", err)
			}
		}
		if pss, ok, err := local.boolean("rsa-pss"); err != nil {
			return nil, err
		} else if ok && pss {
			s.warn("local.rsa-pss: ignored: the signature scheme follows the key and the gateway")
		}
		s.unknown(local)
	}

	if s.ikeProposal, _, err = top.str("ike-proposal"); err != nil {
		return nil, err
	}
	if s.ikeProposal != "" {
		if _, err := ikecrypto.ParseProposal(s.ikeProposal, false); err != nil {
			return nil, fmt.Errorf("sswan: ike-proposal: %s", strings.TrimPrefix(err.Error(), "crypto: "))
		}
	}
	if s.espProposal, _, err = top.str("esp-proposal"); err != nil {
		return nil, err
	}
	if s.espProposal != "" {
		if _, err := ikecrypto.ParseProposal(s.espProposal, true); err != nil {
			return nil, fmt.Errorf("sswan: esp-proposal: %s", strings.TrimPrefix(err.Error(), "crypto: "))
		}
	}
	if dns, ok, err := top.list("dns-servers"); err != nil {
		return nil, err
	} else if ok && len(dns) > 0 {
		for i, d := range dns {
			if _, err := netip.ParseAddr(d); err != nil {
				return nil, fmt.Errorf("sswan: dns-servers[%d]: %s is not an IP address", i, short(d))
			}
		}
		s.warn("dns-servers (%s): ignored: qcdvpn uses the DNS servers the gateway assigns", strings.Join(dns, " "))
	}
	if s.mtu, _, err = top.integer("mtu"); err != nil {
		return nil, err
	}
	if ka, ok, err := top.integer("nat-keepalive"); err != nil {
		return nil, err
	} else if ok {
		if ka < natKeepaliveMin || ka > natKeepaliveMax {
			return nil, fmt.Errorf("sswan: nat-keepalive: %d is out of range %d..%d (seconds)", ka, natKeepaliveMin, natKeepaliveMax)
		}
		s.keepalive = ka
	}
	if split, ok, err := top.sub("split-tunneling"); err != nil {
		return nil, err
	} else if ok {
		if s.include, err = subnets(split, "subnets"); err != nil {
			return nil, err
		}
		if s.exclude, err = subnets(split, "excluded"); err != nil {
			return nil, err
		}
		for _, fam := range []string{"4", "6"} {
			b, set, err := split.boolean("block-ipv" + fam)
			if err != nil {
				return nil, err
			}
			if set && b {
				s.warn("split-tunneling.block-ipv%s: ignored: IPv%s traffic outside the tunnel's subnets is not blocked", fam, fam)
			}
		}
		s.unknown(split)
	}
	for _, k := range []string{"apps", "included-apps", "excluded-apps"} {
		if l, ok, err := top.list(k); err != nil {
			return nil, err
		} else if ok && len(l) > 0 {
			s.warn("%s: ignored: per-app routing is Android's", k)
		}
	}
	if _, ok := top.get("proxy"); ok {
		s.warn("proxy: ignored: qcdvpn sets no HTTP proxy")
	}
	s.unknown(top)
	return s, nil
}

// unknown warns about keys of o the format does not define (the Android
// app ignores them too).
func (s *sswan) unknown(o *obj) {
	for _, k := range o.unused() {
		s.warn("%s: unknown key, ignored", k)
	}
}

// subnets reads split-tunneling.KEY: prefixes, addresses and "a-b" ranges,
// as prefixes.
func subnets(o *obj, key string) ([]string, error) {
	items, ok, err := o.list(key)
	if err != nil || !ok {
		return nil, err
	}
	// "10.0.0.1 - 10.0.0.9" written with spaces in one string.
	joined := strings.Join(items, " ")
	joined = regexp.MustCompile(`\s*-\s*`).ReplaceAllString(joined, "-")
	var out []string
	for i, it := range strings.Fields(joined) {
		ps, err := parseSubnet(it)
		if err != nil {
			return nil, fmt.Errorf("sswan: split-tunneling.%s[%d]: %s: %v", key, i, short(it), err)
		}
		for _, p := range ps {
			out = append(out, p.String())
		}
	}
	return out, nil
}

func parseSubnet(s string) ([]netip.Prefix, error) {
	if from, to, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(from)
		b, err2 := netip.ParseAddr(to)
		if err1 != nil || err2 != nil || a.Is4() != b.Is4() || b.Less(a) {
			return nil, errors.New("not a range of addresses of one family, low to high")
		}
		return rangePrefixes(a, b), nil
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return []netip.Prefix{p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, nil
	}
	return nil, errors.New("not a subnet, address or range")
}

// rangePrefixes covers a..b (inclusive, same family) with the fewest prefixes.
func rangePrefixes(a, b netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for {
		bits := a.BitLen()
		// The largest prefix starting at a that stays within b.
		for bits > 0 {
			p := netip.PrefixFrom(a, bits-1).Masked()
			if p.Addr() != a || lastAddr(p).Compare(b) > 0 {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(a, bits)
		out = append(out, p)
		last := lastAddr(p)
		if last.Compare(b) >= 0 || !last.Next().IsValid() {
			return out
		}
		a = last.Next()
	}
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// decodeCerts reads remote.cert: base64 of DER or of PEM text.
func decodeCerts(field, s string) ([]*x509.Certificate, error) {
	b, err := decodeBase64(s)
	if err != nil {
		return nil, fmt.Errorf("sswan: %s: %v", field, err)
	}
	if strings.HasPrefix(strings.TrimSpace(string(b)), "-----BEGIN") {
		var certs []*x509.Certificate
		rest := b
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				return nil, fmt.Errorf("sswan: %s: holds a PEM %q block, want CERTIFICATE", field, blk.Type)
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("sswan: %s: not a valid X.509 certificate", field)
			}
			certs = append(certs, c)
		}
		if len(certs) == 0 {
			return nil, fmt.Errorf("sswan: %s: no certificate in its PEM", field)
		}
		return certs, nil
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("sswan: %s: not an X.509 certificate (DER or PEM)", field)
	}
	return []*x509.Certificate{c}, nil
}

// convertSSwan maps a .sswan profile onto a qcdvpn profile.
func convertSSwan(data []byte, opts Options) (*Result, error) {
	s, err := readSSwan(data)
	if err != nil {
		return nil, err
	}
	res := &Result{Format: FormatSSwan}
	name := s.name
	if len(name) > 64 {
		cut := 64
		for !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut]
		s.warn("name: cut to 64 bytes: %q", name)
	}
	p := sdk.Profile{Name: name}
	gw := s.addr
	if s.port != 0 {
		gw = net.JoinHostPort(s.addr, strconv.Itoa(s.port))
	}
	if _, err := sdk.ParseGateway(gw); err != nil {
		return nil, fmt.Errorf("sswan: remote.addr: %s", strings.TrimPrefix(err.Error(), "profile: "))
	}
	p.Gateways = []string{gw}
	// strongSwan's default: the gateway must authenticate as its address.
	p.RemoteID = s.remoteID
	if p.RemoteID == "" {
		p.RemoteID = s.addr
	}
	creds, err := authFor(s, opts)
	if err != nil {
		return nil, err
	}
	p.Auth, p.LocalID = creds.auth, creds.localID

	cas := s.cert
	switch {
	case len(cas) > 0:
		for _, c := range cas {
			if !c.IsCA {
				s.warn("remote.cert: %s is not a CA certificate; it is trusted as one, which works only if it is the gateway's own self-signed certificate", subjectOf(c))
			}
		}
	case len(opts.CA) > 0:
		blocks, err := pemCerts(opts.CA)
		if err != nil {
			return nil, fmt.Errorf("--ca: %v", err)
		}
		cas = blocks
	case len(creds.cas) > 0:
		cas = creds.cas
		s.warn("remote.cert: missing; trusting the CA certificate(s) from local.p12 instead")
	default:
		return nil, errors.New("sswan: remote.cert: missing, and qcdvpn needs the CA certificate that signs the gateway's certificate (the Android app falls back on the system's CAs): give it with --ca FILE")
	}
	base := opts.FileBase
	if base == "" {
		base = fileBase(s.name)
	}
	var caPEM []byte
	for _, c := range cas {
		caPEM = append(caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	put := func(suffix string, data []byte, secret bool) string {
		if opts.Inline {
			return string(data)
		}
		n := base + suffix
		res.Files = append(res.Files, File{Name: n, Data: data, Secret: secret})
		return n
	}
	p.CA = put("-ca.pem", caPEM, false)
	if creds.certPEM != nil {
		p.Auth.Cert = put("-cert.pem", creds.certPEM, false)
		p.Auth.Key = put("-key.pem", creds.keyPEM, true)
	}
	if s.ikeProposal != "" {
		p.IKEProposals = []string{s.ikeProposal}
	}
	if s.espProposal != "" {
		p.ESPProposals = []string{s.espProposal}
	}
	p.Traffic.Include, p.Traffic.Exclude = s.include, s.exclude
	if s.mtu != 0 {
		p.MTU = s.mtu
	}
	if s.keepalive != 0 {
		p.Timers.Keepalive = fmt.Sprintf("%ds", s.keepalive)
	}
	out, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	out = dropEmpty(out)
	// The result must pass the client's own checks, certificates included.
	parsed, err := sdk.ParseProfile(out)
	if err != nil {
		return nil, fmt.Errorf("sswan: the converted profile is not valid: %s", strings.TrimPrefix(err.Error(), "profile: "))
	}
	parsed.CA = string(caPEM)
	if creds.certPEM != nil {
		parsed.Auth.Cert, parsed.Auth.Key = string(creds.certPEM), string(creds.keyPEM)
	}
	if _, err := parsed.LoadCredentials(); err != nil {
		return nil, fmt.Errorf("sswan: the converted credentials do not load: %s", strings.TrimPrefix(err.Error(), "profile: "))
	}
	res.Profile = out
	res.Warnings = s.warnings
	return res, nil
}

func pemCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, errors.New("not a valid X.509 certificate")
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return out, nil
}

// dropEmpty removes the top-level empty objects ("qcd": {}, …) that
// sdk.Profile's encoding always writes, so that the profile shows only
// what was set.
func dropEmpty(indented []byte) []byte {
	lines := strings.Split(string(indented), "\n")
	var out []string
	for _, l := range lines {
		if regexp.MustCompile(`^  "[a-z_]+": \{\},?$`).MatchString(l) {
			if !strings.HasSuffix(l, ",") && len(out) > 0 { // it was the last member
				out[len(out)-1] = strings.TrimSuffix(out[len(out)-1], ",")
			}
			continue
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n") + "\n")
}
