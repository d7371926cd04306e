package resolver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// DefaultResolvConf is where the system's resolvers are configured on
// Linux and the BSDs.
const DefaultResolvConf = "/etc/resolv.conf"

// SystemdResolvedUpstream lists the servers systemd-resolved itself uses;
// where /etc/resolv.conf names only resolved's stub (127.0.0.53), these are
// the underlying network's resolvers.
const SystemdResolvedUpstream = "/run/systemd/resolve/resolv.conf"

// maxResolvConf bounds what ParseResolvConf reads: real files are a few
// hundred bytes.
const maxResolvConf = 64 << 10

// Conf is what matters of a resolv.conf: the servers, in order, with port
// 53, and the search and options lines as written.
type Conf struct {
	Servers []netip.AddrPort
	Search  []string
	Options []string
}

// ParseResolvConf reads resolv.conf(5) text. Lines it does not know are
// skipped, as the C library does; a nameserver that is not an IP address
// is an error naming the line, so a broken file is not mistaken for one
// without servers.
func ParseResolvConf(b []byte) (*Conf, error) {
	if len(b) > maxResolvConf {
		return nil, fmt.Errorf("resolv.conf: %d bytes, more than %d", len(b), maxResolvConf)
	}
	c := &Conf{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1024), maxResolvConf)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				return nil, fmt.Errorf("resolv.conf: line %d: nameserver without an address", n)
			}
			a, err := netip.ParseAddr(f[1])
			if err != nil {
				return nil, fmt.Errorf("resolv.conf: line %d: nameserver %q is not an IP address", n, f[1])
			}
			c.Servers = append(c.Servers, netip.AddrPortFrom(a.Unmap(), 53))
		case "search", "domain":
			// The last search or domain line wins (resolv.conf(5)).
			c.Search = append(c.Search[:0], f[1:]...)
		case "options":
			c.Options = append(c.Options, f[1:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("resolv.conf: %w", err)
	}
	return c, nil
}

// ReadResolvConf reads and parses the file at path.
func ReadResolvConf(path string) (*Conf, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseResolvConf(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// SystemServers returns the underlying network's resolvers as configured
// in path (DefaultResolvConf if empty). When it names only
// systemd-resolved's stub, the servers resolved forwards to are returned
// instead, so that lookups do not follow resolved's per-link routing
// (which may point into a tunnel).
func SystemServers(path string) ([]netip.AddrPort, error) {
	if path == "" {
		path = DefaultResolvConf
	}
	c, err := ReadResolvConf(path)
	if err != nil {
		return nil, err
	}
	if onlyStub(c.Servers) {
		if up, err := ReadResolvConf(SystemdResolvedUpstream); err == nil && len(up.Servers) > 0 && !onlyStub(up.Servers) {
			return up.Servers, nil
		}
	}
	if len(c.Servers) == 0 {
		return nil, errors.New(path + ": no nameserver")
	}
	return c.Servers, nil
}

var resolvedStub = netip.MustParseAddr("127.0.0.53")

func onlyStub(s []netip.AddrPort) bool {
	if len(s) == 0 {
		return false
	}
	for _, a := range s {
		if a.Addr() != resolvedStub {
			return false
		}
	}
	return true
}
