package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qcdvpn/qcdvpn/control"
	"github.com/qcdvpn/qcdvpn/sdk"
)

const statusUsage = `Usage: qcdvpn status [--json] [--control PATH]

Shows the state of the running 'qcdvpn up': gateway, virtual IP, uptime,
algorithms and traffic, asked over its control socket.

Examples:
  qcdvpn status
  qcdvpn status --json | jq .virtual_ip

Flags:
`

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", statusUsage, stderr)
	asJSON := fs.Bool("json", false, "print the status as one JSON object")
	ctlPath := fs.String("control", "", "control socket path (default "+control.DefaultPath()+", or $QCDVPN_CONTROL)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if !noArgs(fs, stderr) {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, err := control.Dial(ctx, *ctlPath)
	if err != nil {
		fmt.Fprintf(stderr, "qcdvpn status: %s\n", oneLine(err))
		return 1
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "qcdvpn status: %s\n", oneLine(err))
		return 1
	}
	if *asJSON {
		b, _ := json.Marshal(st)
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	printStatus(stdout, st, time.Now())
	return 0
}

// printStatus writes the human summary of st.
func printStatus(w io.Writer, st control.Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t"+format+"\n", append([]any{k}, args...)...)
	}
	line("state", "%s", st.State)
	if st.Profile != "" {
		line("profile", "%s", st.Profile)
	}
	if len(st.Gateways) > 0 {
		var gws []string
		for _, g := range st.Gateways {
			if g.Active {
				gws = append(gws, g.Address+" (active)")
			} else {
				gws = append(gws, g.Address)
			}
		}
		line("gateways", "%s", strings.Join(gws, ", "))
	}
	if st.Gateway != "" {
		line("gateway", "%s", st.Gateway)
	}
	if st.VirtualIP != "" {
		line("virtual IP", "%s", st.VirtualIP)
	}
	if len(st.DNS) > 0 {
		line("DNS", "%s", strings.Join(st.DNS, ", "))
	}
	if !st.ConnectedSince.IsZero() {
		line("uptime", "%s (since %s)", now.Sub(st.ConnectedSince).Round(time.Second), st.ConnectedSince.Local().Format(time.DateTime))
	}
	if st.IKESuite != "" {
		how := "full exchange"
		if st.Resumed {
			how = "resumed with a ticket"
		}
		line("algorithms", "IKE %s, ESP %s (%s)", st.IKESuite, st.ESPSuite, how)
	}
	if st.IKESPIi != "" {
		line("IKE SA", "%s_i %s_r", st.IKESPIi, st.IKESPIr)
	}
	line("recovery", "QCD %s, resumption %s", onOff(st.QCD), onOff(st.Resumption))
	s := st.Stats
	line("traffic", "in %d packets (%s), out %d packets (%s), %d dropped", s.PacketsIn, bytesHuman(s.BytesIn), s.PacketsOut, bytesHuman(s.BytesOut), drops(s))
	if st.LastError != "" {
		line("last error", "%s", st.LastError)
	}
	tw.Flush()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

const downUsage = `Usage: qcdvpn down [--control PATH] [-p PROFILE]

Disconnects the running 'qcdvpn up' (the gateway is told) and ends it;
returns once it has exited. When no 'qcdvpn up' answers and -p names its
profile, it restores the DNS configuration a crashed 'up' of that profile
left behind (as recorded in the profile's state directory).

Example:
  qcdvpn down

Flags:
`

func cmdDown(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("down", downUsage, stderr)
	ctlPath := fs.String("control", "", "control socket path (default "+control.DefaultPath()+", or $QCDVPN_CONTROL)")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait for 'qcdvpn up' to exit")
	profilePath := fs.String("p", "", "profile of the 'up' to end; with no 'up' running, restore the DNS configuration it left")
	fs.StringVar(profilePath, "profile", "", "same as -p")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if !noArgs(fs, stderr) {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, err := control.Dial(ctx, *ctlPath)
	if err != nil && *profilePath != "" {
		return restoreLeftoverDNS(*profilePath, err, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "qcdvpn down: %s\n", oneLine(err))
		return 1
	}
	defer c.Close()
	if err := c.Down(ctx); err != nil {
		fmt.Fprintf(stderr, "qcdvpn down: %s\n", oneLine(err))
		return 1
	}
	return 0
}

// restoreLeftoverDNS is `down -p` with no `up` answering: what a crashed
// `up` of that profile left in the resolver configuration is put back.
func restoreLeftoverDNS(profilePath string, dialErr error, stderr io.Writer) int {
	p, err := sdk.LoadProfile(profilePath)
	if err != nil {
		fmt.Fprintf(stderr, "qcdvpn down: %s\n", oneLine(err))
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := sdk.RestoreSystemDNS(p, sdk.Options{Logger: log}); err != nil {
		fmt.Fprintf(stderr, "qcdvpn down: %s\n", oneLine(err))
		return 1
	}
	fmt.Fprintf(stderr, "qcdvpn down: no qcdvpn up answers (%s); DNS configuration left by profile %s restored if any\n", oneLine(dialErr), profilePath)
	return 0
}
