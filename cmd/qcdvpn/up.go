package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"syscall"

	"github.com/qcdvpn/qcdvpn/control"
	"github.com/qcdvpn/qcdvpn/sdk"
)

const upUsage = `Usage: qcdvpn up -p PROFILE [flags]
       qcdvpn up --service [flags]

Connects with the profile and keeps the tunnel up (failing over between its
gateways) until SIGINT, SIGTERM or 'qcdvpn down'. It serves a control socket
for 'qcdvpn status', 'qcdvpn down' and the desktop app; with --service it
starts without a profile and waits for one over that socket.

Examples:
  sudo qcdvpn up -p corp.json
  qcdvpn up -p corp.json --netstack --forward 127.0.0.1:8080=10.200.0.1:80
  sudo qcdvpn up --service --control-owner alice

Flags:
`

func cmdUp(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("up", upUsage, stderr)
	profilePath := fs.String("p", "", "profile JSON file (required unless --service)")
	fs.StringVar(profilePath, "profile", "", "same as -p")
	service := fs.Bool("service", false, "run as a service: no profile needed, connect and disconnect come over the control socket, and the end of a tunnel does not end the command")
	events := fs.String("events", "auto", "event output: auto (human lines, on stdout if it is a terminal, else on stderr), text (human lines on stderr) or json (one object per line on stdout)")
	logLevel := fs.String("log-level", "warn", "log level on stderr: debug, info, warn, error")
	tunName := fs.String("tun", "qcd0", "name of the kernel TUN interface to create (needs root)")
	applyDNS := dnsFlags(fs)
	useNetstack := fs.Bool("netstack", false, "rootless: run the tunnel in an in-process network stack instead of a kernel TUN")
	var forwards forwardList
	fs.Var(&forwards, "forward", "with --netstack: LISTEN=TARGET forwards local TCP port LISTEN (host:port) through the tunnel to TARGET; repeatable")
	ctlPath := fs.String("control", "", "control socket path (default "+control.DefaultPath()+", or $QCDVPN_CONTROL)")
	ctlOwner := fs.String("control-owner", "", "user (name or uid) who may use the control socket besides root and the caller (default: $SUDO_UID under sudo)")
	noControl := fs.Bool("no-control", false, "serve no control socket")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if !noArgs(fs, stderr) {
		return 2
	}
	if *profilePath == "" && !*service {
		fmt.Fprintln(stderr, "qcdvpn up: -p PROFILE is required (or --service to wait for one over the control socket)")
		return 2
	}
	if *events != "auto" && !checkEvents("up", *events, stderr) {
		return 2
	}
	if len(forwards) > 0 && !*useNetstack {
		fmt.Fprintln(stderr, "qcdvpn up: --forward needs --netstack")
		return 2
	}
	if *noControl && (*ctlPath != "" || *ctlOwner != "") {
		fmt.Fprintln(stderr, "qcdvpn up: --no-control excludes --control and --control-owner")
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
	owners, err := controlOwners(*ctlOwner)
	if err != nil {
		fmt.Fprintf(stderr, "qcdvpn up: --control-owner: %s\n", oneLine(err))
		return 2
	}
	var p *sdk.Profile
	if *profilePath != "" {
		if p, err = sdk.LoadProfile(*profilePath); err != nil {
			fmt.Fprintf(stderr, "qcdvpn: %s\n", oneLine(err))
			return 1
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ended := make(chan error, 1)
	opts := control.EngineOptions{Options: sdk.Options{Logger: log, OnEvent: upPrinter(*events, stdout, stderr), TUNName: *tunName, DNS: dnsOpts}}
	if *useNetstack {
		opts.DataPlane = sdk.DataPlaneNetstack
	}
	if !*service {
		opts.OnEnd = func(err error) {
			select {
			case ended <- err:
			default:
			}
		}
	}
	if wd, err := os.Getwd(); err == nil {
		opts.ProfileDir = wd
	}
	engine := control.NewEngine(opts)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reportRuntimeOnSignal(ctx, stderr)
	if !*noControl {
		srv, err := control.Listen(*ctlPath, control.ServerOptions{AllowUIDs: owners, Log: log})
		switch {
		case errors.Is(err, control.ErrInUse) && *ctlPath == "":
			// Another `up` owns the default socket: this one still
			// works, only without status and down.
			fmt.Fprintf(stderr, "qcdvpn: %s; running without a control socket (choose one with --control PATH)\n", oneLine(err))
		case err != nil:
			fmt.Fprintf(stderr, "qcdvpn: %s\n", oneLine(err))
			return 1
		default:
			fmt.Fprintf(stderr, "qcdvpn: control socket %s\n", srv.Path())
			served := make(chan struct{})
			go func() {
				defer close(served)
				if err := srv.Serve(context.Background(), engine); err != nil {
					log.Warn("control socket stopped", "err", err)
				}
			}()
			defer func() { srv.Close(); <-served }()
		}
	}
	if p != nil {
		if err := engine.ConnectProfile(ctx, p); err != nil {
			down := engine.ShuttingDown() // `qcdvpn down` during the connect
			engine.Shutdown()
			if ctx.Err() != nil {
				return 130
			}
			if down {
				return 0
			}
			fmt.Fprintf(stderr, "qcdvpn: %s\n", oneLine(err))
			return 1
		}
	}
	for _, f := range forwards {
		if err := f.start(ctx, engine.Client, log); err != nil {
			engine.Shutdown()
			fmt.Fprintf(stderr, "qcdvpn: --forward %s: %s\n", f, oneLine(err))
			return 1
		}
	}
	select {
	case <-ctx.Done():
		engine.Shutdown() // delivers the last events before we exit
		return 0
	case <-engine.Done(): // qcdvpn down
		return 0
	case err := <-ended:
		engine.Shutdown()
		fmt.Fprintf(stderr, "qcdvpn: %s\n", oneLine(err))
		return 1
	}
}

// controlOwners resolves --control-owner (a user name or uid), or under
// sudo the invoking user.
func controlOwners(s string) ([]int, error) {
	if s == "" {
		if os.Geteuid() == 0 {
			if su := os.Getenv("SUDO_UID"); su != "" {
				if uid, err := strconv.Atoi(su); err == nil && uid > 0 {
					return []int{uid}, nil
				}
			}
		}
		return nil, nil
	}
	if uid, err := strconv.Atoi(s); err == nil {
		if uid < 0 {
			return nil, fmt.Errorf("%d is not a uid", uid)
		}
		return []int{uid}, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return nil, fmt.Errorf("no user %q", s)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %q has no numeric uid on this OS", s)
	}
	return []int{uid}, nil
}
