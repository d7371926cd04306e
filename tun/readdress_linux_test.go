package tun

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestKernelSetAddresses: new addresses replace the old ones on the same
// interface while its routes and rules stay (what keeps a full tunnel
// closed during a failover to a gateway with another pool); a family the
// interface had no address of is refused without a change; Close removes
// the new addresses too.
func TestKernelSetAddresses(t *testing.T) {
	ns := enterNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k, err := Create(ctx, Config{Name: "qcdr%d", Addresses: pfx("10.100.3.1/32"), MTU: 1380, Include: pfx("0.0.0.0/0")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	name, tbl := k.Name(), fmt.Sprint(k.Table())
	if err := k.SetAddresses(pfx("10.101.7.9/32")); err != nil {
		t.Fatal(err)
	}
	addr := ns.mustIP(t, "addr", "show", "dev", name)
	contains(t, "addr", addr, "inet 10.101.7.9/32")
	if strings.Contains(addr, "10.100.3.1") {
		t.Errorf("old address still there:\n%s", addr)
	}
	contains(t, "IPv4 table", ns.mustIP(t, "-4", "route", "show", "table", tbl), "default dev "+name)
	contains(t, "rules", ns.mustIP(t, "-4", "rule", "show"), "lookup "+tbl)
	// Unchanged addresses stay, new ones join.
	if err := k.SetAddresses(pfx("10.101.7.9/32", "10.101.7.10/32")); err != nil {
		t.Fatal(err)
	}
	contains(t, "addr", ns.mustIP(t, "addr", "show", "dev", name), "inet 10.101.7.9/32", "inet 10.101.7.10/32")
	if err := k.SetAddresses(pfx("fd00:101::9/128")); err == nil {
		t.Error("an IPv6 address on an IPv4-only tunnel was accepted")
	}
	contains(t, "addr", ns.mustIP(t, "addr", "show", "dev", name), "inet 10.101.7.9/32")
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := ns.ip(t, "addr", "show", "dev", name); err == nil {
		t.Errorf("interface still there after Close:\n%s", out)
	}
	if err := k.SetAddresses(pfx("10.101.7.9/32")); err == nil {
		t.Error("SetAddresses after Close succeeded")
	}
}
