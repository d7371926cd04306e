package dnsconfig

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"
)

// systemd-resolved backend: per-link DNS servers and routing domains on
// the TUN, set with resolvectl (which speaks org.freedesktop.resolve1 on
// D-Bus: SetLinkDNS, SetLinkDomains, SetLinkDefaultRoute, RevertLink).
// Nothing in the file system changes, and resolved forgets a link's
// settings when the TUN disappears, so a crash leaves nothing behind.
//
// It is unit-tested against a fake Runner only: the CI machines run no
// systemd-resolved.

// Runner runs a command and returns its combined output; tests pass a
// fake.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

func execRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// resolvedRunning reports whether systemd-resolved serves this system
// (its runtime directory exists) and resolvectl can be run.
func resolvedRunning() bool {
	if _, err := os.Stat("/run/systemd/resolve/io.systemd.Resolve"); err != nil {
		if _, err := os.Stat("/run/systemd/resolve/resolv.conf"); err != nil {
			return false
		}
	}
	_, err := exec.LookPath("resolvectl")
	return err == nil
}

// resolvedArgs are the resolvectl calls that apply s to link: the
// servers, the split domains as routing-only domains ("~corp.test"), or
// "~." and the default route when everything goes to the tunnel.
func resolvedArgs(link string, s Settings) [][]string {
	dns := []string{"dns", link}
	for _, a := range s.Servers {
		dns = append(dns, a.String())
	}
	dom := []string{"domain", link}
	if s.All {
		dom = append(dom, "~.")
	} else {
		for _, d := range s.Domains {
			dom = append(dom, "~"+d)
		}
	}
	def := "no"
	if s.All {
		def = "yes"
	}
	return [][]string{dns, dom, {"default-route", link, def}}
}

func applyResolved(run Runner, link string, s Settings) error {
	for _, args := range resolvedArgs(link, s) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := run(ctx, "resolvectl", args...)
		cancel()
		if err != nil {
			return fmt.Errorf("dnsconfig: systemd-resolved: %w", err)
		}
	}
	return nil
}

func revertLink(run Runner, link string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := run(ctx, "resolvectl", "revert", link)
	return err
}

// serverStrings formats servers for logs.
func serverStrings(s []netip.Addr) []string {
	out := make([]string, len(s))
	for i, a := range s {
		out[i] = a.String()
	}
	return out
}
