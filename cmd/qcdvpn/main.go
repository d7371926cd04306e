// Command qcdvpn is the qcdvpn VPN client.
//
//	qcdvpn up -p PROFILE [--events json]   connect and stay up until SIGINT/SIGTERM
//	qcdvpn gateway -c GATEWAY.json         run the test/demo gateway (QCD maker, tickets)
//	qcdvpn demo                            crash a gateway on loopback and watch the recovery
//	qcdvpn version                         print the version
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `qcdvpn — IKEv2/IPsec VPN client

Usage:
  qcdvpn up -p PROFILE [--events json] [--log-level LEVEL]
  qcdvpn gateway -c GATEWAY.json [--events json]
  qcdvpn demo
  qcdvpn version
  qcdvpn help

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
	case "gateway":
		return cmdGateway(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "qcdvpn %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "qcdvpn: unknown command %q (see 'qcdvpn help')\n", args[0])
		return 2
	}
}

func cmdUp(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("up", "Usage: qcdvpn up -p PROFILE [--tun NAME | --netstack [--forward LISTEN=TARGET]...] [--events json] [--log-level LEVEL]\n\nConnects and stays up until SIGINT or SIGTERM.\n\n", stderr)
	profilePath := fs.String("p", "", "profile JSON file (required)")
	fs.StringVar(profilePath, "profile", "", "same as -p")
	events := fs.String("events", "text", "event output: text (human lines on stderr) or json (one object per line on stdout)")
	logLevel := fs.String("log-level", "warn", "log level on stderr: debug, info, warn, error")
	tunName := fs.String("tun", "qcd0", "name of the kernel TUN interface to create (needs root)")
	applyDNS := dnsFlags(fs)
	useNetstack := fs.Bool("netstack", false, "rootless: run the tunnel in an in-process network stack instead of a kernel TUN")
	var forwards forwardList
	fs.Var(&forwards, "forward", "with --netstack: LISTEN=TARGET forwards local TCP port LISTEN (host:port) through the tunnel to TARGET; repeatable")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if !noArgs(fs, stderr) {
		return 2
	}
	if *profilePath == "" {
		fmt.Fprintln(stderr, "qcdvpn up: -p PROFILE is required")
		return 2
	}
	if !checkEvents("up", *events, stderr) {
		return 2
	}
	if len(forwards) > 0 && !*useNetstack {
		fmt.Fprintln(stderr, "qcdvpn up: --forward needs --netstack")
		return 2
	}
	level, ok := parseLevel("up", *logLevel, stderr)
	if !ok {
		return 2
	}
	dnsOpts, ok := applyDNS(stderr)
	if !ok {
		return 2
	}
	p, err := sdk.LoadProfile(*profilePath)
	if err != nil {
		fmt.Fprintf(stderr, "qcdvpn: %s\n", oneLine(err))
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts := sdk.Options{Logger: log, OnEvent: eventPrinter(*events, stdout, stderr, humanEvent), TUNName: *tunName}
	opts.DNS = dnsOpts
	if *useNetstack {
		opts.DataPlane = sdk.DataPlaneNetstack
	}
	c, err := sdk.NewClient(p, opts)
	if err != nil {
		fmt.Fprintf(stderr, "qcdvpn: %s\n", oneLine(err))
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.Connect(ctx); err != nil {
		c.Close()
		if ctx.Err() != nil {
			return 130
		}
		fmt.Fprintf(stderr, "qcdvpn: %s\n", oneLine(err))
		return 1
	}
	for _, f := range forwards {
		if err := f.start(ctx, c, log); err != nil {
			c.Close()
			fmt.Fprintf(stderr, "qcdvpn: --forward %s: %s\n", f, oneLine(err))
			return 1
		}
	}
	defer c.Close() // also delivers the last events before we exit
	if err := c.Wait(ctx); err != nil && ctx.Err() == nil {
		c.Close()
		fmt.Fprintf(stderr, "qcdvpn: %s\n", oneLine(err))
		return 1
	}
	return 0
}

// oneLine keeps an error on one line, as users and scripts expect.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

func humanEvent(e sdk.Event) string {
	switch e.Type {
	case sdk.EventConnecting:
		return fmt.Sprintf("connecting to %s…", e.Gateway)
	case sdk.EventConnected:
		return fmt.Sprintf("connected to %s as %s in %d ms (%s, %s)", e.Gateway, e.VirtualIP, e.Elapsed.Milliseconds(), e.IKESuite, e.ESPSuite)
	case sdk.EventConnectFailed:
		return fmt.Sprintf("%s failed: %s", e.Gateway, e.Error)
	case sdk.EventDisconnected:
		return fmt.Sprintf("disconnected from %s: %s", e.Gateway, e.Reason)
	default:
		b, _ := json.Marshal(e)
		return string(b)
	}
}
