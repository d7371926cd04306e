package sdk

import (
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// TestClientDNSChoices: the system's DNS is managed only with a kernel TUN
// on Linux and dns.use on; gateway names go to the app's servers first,
// else to those of the resolver file.
func TestClientDNSChoices(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	newClient := func(edits []any, opts Options) *Client {
		t.Helper()
		p, err := ParseProfile(doc(t, edits...))
		if err != nil {
			t.Fatal(err)
		}
		opts.StateDir = t.TempDir() // one store per client
		opts.DNS.ResolvConf = conf
		c, err := NewClient(p, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := newClient(nil, Options{})
	if got := c.dns.res.Servers(); !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}) {
		t.Errorf("servers from the resolver file: %v", got)
	}
	if (c.dns.mgr != nil) != (runtime.GOOS == "linux") {
		t.Errorf("kernel TUN: manager %v on %s", c.dns.mgr != nil, runtime.GOOS)
	}
	if c := newClient([]any{"dns.use", false}, Options{}); c.dns.mgr != nil {
		t.Error("dns.use false: the system's DNS would be changed")
	}
	if c := newClient(nil, Options{DNS: DNSOptions{Backend: "off"}}); c.dns.mgr != nil {
		t.Error("backend off: the system's DNS would be changed")
	}
	c = newClient(nil, Options{DataPlane: DataPlaneNetstack, DNS: DNSOptions{NetworkServers: []netip.AddrPort{
		netip.MustParseAddrPort("[::ffff:198.51.100.1]:0"), netip.MustParseAddrPort("198.51.100.2:5353")}}})
	if c.dns.mgr != nil {
		t.Error("netstack: the system's DNS would be changed")
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:53"), netip.MustParseAddrPort("198.51.100.2:5353")}
	if got := c.dns.res.Servers(); !slices.Equal(got, want) {
		t.Errorf("app's servers: %v, want %v", got, want)
	}
	if err := RestoreSystemDNS(nil, Options{}); err == nil {
		t.Error("RestoreSystemDNS(nil)")
	}
}

func TestFullTunnelIgnoresDomains(t *testing.T) {
	for _, tc := range []struct {
		include []any
		full    bool
	}{{[]any{"10.0.0.0/8"}, false}, {[]any{"10.0.0.0/8", "0.0.0.0/0"}, true}, {[]any{"::/0"}, true}} {
		p, err := ParseProfile(doc(t, "traffic.include", tc.include))
		if err != nil {
			t.Fatal(err)
		}
		r, _ := p.Resolve()
		if fullTunnel(r) != tc.full {
			t.Errorf("include %v: full tunnel %v", tc.include, !tc.full)
		}
	}
}
