package tun

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func pfx(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, x := range s {
		out[i] = netip.MustParsePrefix(x)
	}
	return out
}

func TestPlan(t *testing.T) {
	p, err := plan(Config{
		Addresses: pfx("10.100.3.1/32", "fd00::1/128"),
		Include:   pfx("10.200.0.7/24", "0.0.0.0/0", "::/0", "10.200.0.0/24", "172.16.5.0/24", "::ffff:10.9.0.0/112"),
		Exclude:   pfx("10.200.0.128/25", "172.16.0.0/16", "2001:db8::/32", "192.168.0.0/16"),
		Gateway:   netip.MustParseAddr("::ffff:203.0.113.7"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.name != DefaultName || p.mtu != DefaultMTU || p.prio != DefaultRulePriority || p.table != 0 {
		t.Errorf("defaults: name %q mtu %d prio %d table %d", p.name, p.mtu, p.prio, p.table)
	}
	if want := pfx("10.200.0.0/24", "0.0.0.0/0", "::/0", "10.9.0.0/16"); !reflect.DeepEqual(p.include, want) {
		t.Errorf("include = %v, want %v", p.include, want)
	}
	if want := pfx("172.16.5.0/24"); !reflect.DeepEqual(p.dropped, want) {
		t.Errorf("dropped = %v, want %v", p.dropped, want)
	}
	want := pfx("10.200.0.128/25", "172.16.0.0/16", "2001:db8::/32", "192.168.0.0/16", "203.0.113.7/32")
	if !reflect.DeepEqual(p.throw, want) {
		t.Errorf("throw = %v, want %v", p.throw, want)
	}
	if !reflect.DeepEqual(p.families, []int{4, 6}) {
		t.Errorf("families = %v", p.families)
	}
}

func TestPlanFamilies(t *testing.T) {
	// IPv4-only includes: IPv6 excludes and gateway are pointless and left out.
	p, err := plan(Config{
		Addresses: pfx("10.100.3.1/32"),
		Include:   pfx("10.0.0.0/8"),
		Exclude:   pfx("2001:db8::/32"),
		Gateway:   netip.MustParseAddr("2001:db8::1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.throw) != 0 || !reflect.DeepEqual(p.families, []int{4}) {
		t.Errorf("throw %v families %v", p.throw, p.families)
	}
	// No includes: addresses only, no rules.
	p, err = plan(Config{Addresses: pfx("10.100.3.1/32")})
	if err != nil || len(p.families) != 0 {
		t.Errorf("no includes: %v %v", p, err)
	}
}

func TestPlanErrors(t *testing.T) {
	ok := Config{Addresses: pfx("10.100.3.1/32")}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no address", func(c *Config) { c.Addresses = nil }, "Config.Addresses"},
		{"zero address", func(c *Config) { c.Addresses = []netip.Prefix{{}} }, "Config.Addresses[0]"},
		{"unspecified", func(c *Config) { c.Addresses = pfx("0.0.0.0/32") }, "not a unicast"},
		{"duplicate", func(c *Config) { c.Addresses = pfx("10.0.0.1/32", "10.0.0.1/24") }, "duplicate"},
		{"mtu low", func(c *Config) { c.MTU = 100 }, "Config.MTU"},
		{"mtu high", func(c *Config) { c.MTU = 70000 }, "Config.MTU"},
		{"mtu v6", func(c *Config) { c.MTU = 1200; c.Include = pfx("::/0") }, "IPv6"},
		{"name long", func(c *Config) { c.Name = "abcdefghijklmnopq" }, "Config.Name"},
		{"name slash", func(c *Config) { c.Name = "a/b" }, "Config.Name"},
		{"name template", func(c *Config) { c.Name = "a%s" }, "Config.Name"},
		{"include", func(c *Config) { c.Include = []netip.Prefix{{}} }, "Config.Include[0]"},
		{"exclude", func(c *Config) { c.Exclude = []netip.Prefix{{}} }, "Config.Exclude[0]"},
		{"mapped short", func(c *Config) { c.Include = pfx("::ffff:0.0.0.0/80") }, "Config.Include[0]"},
		{"gateway", func(c *Config) { c.Gateway = netip.IPv4Unspecified() }, "Config.Gateway"},
		{"table", func(c *Config) { c.Table = 254 }, "Config.Table"},
		{"prio", func(c *Config) { c.RulePriority = 32765 }, "Config.RulePriority"},
	}
	for _, tc := range cases {
		c := ok
		tc.mod(&c)
		_, err := plan(c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want mention of %q", tc.name, err, tc.want)
		}
	}
}
