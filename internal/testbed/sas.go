package testbed

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SA is one IKE SA as `swanctl --list-sas` reports it. Fields absent from
// the output stay zero; Raw has every scalar field as printed.
type SA struct {
	// Name is the connection name; UniqueID its #N.
	Name, UniqueID string
	// Version is "1" or "2"; State e.g. "ESTABLISHED", "CONNECTING".
	Version, State string
	// LocalHost, RemoteHost are the IKE endpoints' addresses.
	LocalHost, RemoteHost string
	// LocalPort, RemotePort are the IKE ports (4500 after NAT-T/encap).
	LocalPort, RemotePort int
	// LocalID, RemoteID are the authenticated identities.
	LocalID, RemoteID string
	// RemoteEAPID is the EAP identity of the peer, if any.
	RemoteEAPID string
	// Initiator is true when this charon initiated the IKE SA.
	Initiator bool
	// InitiatorSPI, ResponderSPI are the IKE SPIs in hex.
	InitiatorSPI, ResponderSPI string
	// NATLocal, NATRemote, NATFake, NATAny are the NAT detection results.
	NATLocal, NATRemote, NATFake, NATAny bool
	// EncrAlg (e.g. "AES_GCM_16"), EncrKeysize (e.g. 256) are the IKE cipher.
	EncrAlg     string
	EncrKeysize int
	// IntegAlg is empty for AEAD ciphers.
	IntegAlg string
	// PRFAlg e.g. "PRF_HMAC_SHA2_256"; DHGroup e.g. "ECP_256", "CURVE_25519".
	PRFAlg, DHGroup string
	// LocalVIPs, RemoteVIPs are virtual IPs assigned to us / to the peer.
	LocalVIPs, RemoteVIPs []netip.Addr
	// Children are the CHILD SAs of this IKE SA.
	Children []ChildSA
	// Raw holds every scalar field by its vici name.
	Raw map[string]string
}

// ChildSA is one CHILD SA of an SA.
type ChildSA struct {
	// Name is the child config name; UniqueID, ReqID as printed.
	Name, UniqueID, ReqID string
	// State e.g. "INSTALLED", "REKEYED"; Mode e.g. "TUNNEL".
	State, Mode string
	// Protocol is "ESP" or "AH".
	Protocol string
	// Encap is true for UDP encapsulation (RFC 3948).
	Encap bool
	// SPIIn, SPIOut are the SPIs in hex.
	SPIIn, SPIOut string
	// EncrAlg, EncrKeysize, IntegAlg, DHGroup as for SA (DHGroup only when
	// PFS was used).
	EncrAlg     string
	EncrKeysize int
	IntegAlg    string
	DHGroup     string
	// BytesIn etc. are the traffic counters.
	BytesIn, PacketsIn, BytesOut, PacketsOut uint64
	// LocalTS, RemoteTS are traffic selectors as printed, e.g. "10.0.0.0/24".
	LocalTS, RemoteTS []string
	// Raw holds every scalar field by its vici name.
	Raw map[string]string
}

// viciSection is one `name { ... }` block of swanctl's pretty output.
type viciSection struct {
	name  string
	kv    map[string]string
	lists map[string][]string
	subs  []*viciSection
}

func newSection(name string) *viciSection {
	return &viciSection{name: name, kv: map[string]string{}, lists: map[string][]string{}}
}

// parseVICIPretty parses swanctl's --pretty dump (`key = value`,
// `key = [` items `]`, `name {` ... `}`) into a tree. Lines that fit none of
// these (stray warnings) are skipped; unbalanced braces are errors.
func parseVICIPretty(out string) (*viciSection, error) {
	root := newSection("")
	stack := []*viciSection{root}
	list := "" // name of the list being read, if any
	for i, raw := range strings.Split(out, "\n") {
		line := strings.TrimSpace(raw)
		cur := stack[len(stack)-1]
		switch {
		case line == "":
		case list != "":
			if line == "]" {
				list = ""
			} else {
				cur.lists[list] = append(cur.lists[list], line)
			}
		case line == "}":
			if len(stack) == 1 {
				return nil, fmt.Errorf("swanctl output line %d: unbalanced '}'", i+1)
			}
			stack = stack[:len(stack)-1]
		case isKV(line):
			k, v, _ := strings.Cut(line, " = ")
			if v == "[" {
				list = k
				cur.lists[k] = []string{}
			} else {
				cur.kv[k] = v
			}
		case strings.HasSuffix(line, "{"):
			s := newSection(strings.TrimSpace(strings.TrimSuffix(line, "{")))
			cur.subs = append(cur.subs, s)
			stack = append(stack, s)
		}
	}
	if len(stack) != 1 || list != "" {
		return nil, fmt.Errorf("swanctl output: truncated (unclosed section or list)")
	}
	return root, nil
}

// isKV reports whether line is `key = ...` with a key without spaces.
func isKV(line string) bool {
	k, _, ok := strings.Cut(line, " = ")
	return ok && k != "" && !strings.ContainsAny(k, " \t{}")
}

// ParseListSAs parses the output of `swanctl --list-sas --pretty` (one
// `list-sa event { NAME { ... } }` block per IKE SA).
func ParseListSAs(out string) ([]SA, error) {
	root, err := parseVICIPretty(out)
	if err != nil {
		return nil, err
	}
	var sas []SA
	for _, ev := range root.subs {
		if ev.name != "list-sa event" {
			continue
		}
		for _, s := range ev.subs {
			sa, err := saFromSection(s)
			if err != nil {
				return nil, fmt.Errorf("IKE SA %q: %w", s.name, err)
			}
			sas = append(sas, sa)
		}
	}
	return sas, nil
}

// fieldReader converts scalar fields, remembering the first bad one.
type fieldReader struct {
	kv  map[string]string
	err error
}

func (r *fieldReader) str(k string) string { return r.kv[k] }

func (r *fieldReader) yes(k string) bool { return r.kv[k] == "yes" }

func (r *fieldReader) uint(k string) uint64 {
	v, ok := r.kv[k]
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("field %s: %q is not a number", k, v)
	}
	return n
}

func (r *fieldReader) int(k string) int {
	n := r.uint(k)
	if n > 1<<31 && r.err == nil {
		r.err = fmt.Errorf("field %s: %d out of range", k, n)
	}
	return int(n)
}

// addrs parses a list of addresses.
func addrs(list []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range list {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("virtual IP %q: %w", s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func saFromSection(s *viciSection) (SA, error) {
	r := &fieldReader{kv: s.kv}
	sa := SA{
		Name: s.name, UniqueID: r.str("uniqueid"), Version: r.str("version"), State: r.str("state"),
		LocalHost: r.str("local-host"), RemoteHost: r.str("remote-host"),
		LocalPort: r.int("local-port"), RemotePort: r.int("remote-port"),
		LocalID: r.str("local-id"), RemoteID: r.str("remote-id"), RemoteEAPID: r.str("remote-eap-id"),
		Initiator:    r.yes("initiator"),
		InitiatorSPI: r.str("initiator-spi"), ResponderSPI: r.str("responder-spi"),
		NATLocal: r.yes("nat-local"), NATRemote: r.yes("nat-remote"),
		NATFake: r.yes("nat-fake"), NATAny: r.yes("nat-any"),
		EncrAlg: r.str("encr-alg"), EncrKeysize: r.int("encr-keysize"),
		IntegAlg: r.str("integ-alg"), PRFAlg: r.str("prf-alg"), DHGroup: r.str("dh-group"),
		Raw: s.kv,
	}
	if r.err != nil {
		return SA{}, r.err
	}
	var err error
	if sa.LocalVIPs, err = addrs(s.lists["local-vips"]); err != nil {
		return SA{}, err
	}
	if sa.RemoteVIPs, err = addrs(s.lists["remote-vips"]); err != nil {
		return SA{}, err
	}
	for _, sub := range s.subs {
		if sub.name != "child-sas" {
			continue
		}
		for _, c := range sub.subs {
			child, err := childFromSection(c)
			if err != nil {
				return SA{}, fmt.Errorf("CHILD SA %q: %w", c.name, err)
			}
			sa.Children = append(sa.Children, child)
		}
	}
	return sa, nil
}

func childFromSection(s *viciSection) (ChildSA, error) {
	r := &fieldReader{kv: s.kv}
	c := ChildSA{
		Name: r.str("name"), UniqueID: r.str("uniqueid"), ReqID: r.str("reqid"),
		State: r.str("state"), Mode: r.str("mode"), Protocol: r.str("protocol"),
		Encap: r.yes("encap"), SPIIn: r.str("spi-in"), SPIOut: r.str("spi-out"),
		EncrAlg: r.str("encr-alg"), EncrKeysize: r.int("encr-keysize"),
		IntegAlg: r.str("integ-alg"), DHGroup: r.str("dh-group"),
		BytesIn: r.uint("bytes-in"), PacketsIn: r.uint("packets-in"),
		BytesOut: r.uint("bytes-out"), PacketsOut: r.uint("packets-out"),
		LocalTS: s.lists["local-ts"], RemoteTS: s.lists["remote-ts"],
		Raw: s.kv,
	}
	if c.Name == "" {
		// Older output names the section NAME-UNIQUEID only.
		c.Name = s.name
	}
	return c, r.err
}

// Child returns the first CHILD SA named name, if any.
func (sa SA) Child(name string) (ChildSA, bool) {
	for _, c := range sa.Children {
		if c.Name == name {
			return c, true
		}
	}
	return ChildSA{}, false
}
