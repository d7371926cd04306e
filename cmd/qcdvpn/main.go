// Command qcdvpn is the qcdvpn VPN client.
//
//	qcdvpn up -p PROFILE                   connect and stay up until SIGINT/SIGTERM or `qcdvpn down`
//	qcdvpn up --service                    wait for a connect over the control socket (desktop app)
//	qcdvpn status [--json]                 the running tunnel's state, over the control socket
//	qcdvpn down                            disconnect and end `qcdvpn up`
//	qcdvpn import FILE [-o OUT]            convert a strongSwan .sswan profile (or check ours)
//	qcdvpn gateway -c GATEWAY.json         run the test/demo gateway (QCD maker, tickets)
//	qcdvpn demo                            crash a gateway on loopback and watch the recovery
//	qcdvpn version                         print the version
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// version is set at link time (-ldflags "-X main.version=..."); else the
// module version from the build info is used.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `qcdvpn — IKEv2/IPsec VPN client

Usage:
  qcdvpn up -p PROFILE [--tun NAME | --netstack] [--events json] [--control PATH]
  qcdvpn up --service [--control-owner USER]
  qcdvpn status [--json]
  qcdvpn down
  qcdvpn import FILE [-o OUT]
  qcdvpn gateway -c GATEWAY.json [--events json]
  qcdvpn demo
  qcdvpn version
  qcdvpn help [COMMAND]

Run 'qcdvpn COMMAND --help' for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "up":
		return cmdUp(args[1:], stdout, stderr)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "down":
		return cmdDown(args[1:], stdout, stderr)
	case "import":
		return cmdImport(args[1:], stdout, stderr)
	case "gateway":
		return cmdGateway(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "version", "--version":
		return cmdVersion(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		if len(args) > 1 && args[1] != "help" {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "qcdvpn: unknown command %q (see 'qcdvpn help')\n", args[0])
		return 2
	}
}

// oneLine keeps an error on one line, as users and scripts expect.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
