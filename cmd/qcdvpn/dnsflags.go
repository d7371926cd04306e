package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// dnsFlags adds up's DNS flags to fs; the returned func checks them after
// parsing (false: the problem is on stderr).
func dnsFlags(fs *flag.FlagSet) func(stderr io.Writer) (sdk.DNSOptions, bool) {
	backend := fs.String("dns", "auto", "apply the gateway's DNS servers and split domains: auto (systemd-resolved if it runs, else a local forwarder), resolved, forwarder, or off")
	resolvConf := fs.String("resolv-conf", "", "resolver file to read the network's DNS servers from and, with the forwarder, to point at it while connected (default /etc/resolv.conf)")
	return func(stderr io.Writer) (sdk.DNSOptions, bool) {
		switch *backend {
		case "auto", "resolved", "forwarder", "off":
		default:
			fmt.Fprintf(stderr, "qcdvpn up: --dns: %q is not one of auto, resolved, forwarder, off\n", *backend)
			return sdk.DNSOptions{}, false
		}
		return sdk.DNSOptions{Backend: *backend, ResolvConf: *resolvConf}, true
	}
}
