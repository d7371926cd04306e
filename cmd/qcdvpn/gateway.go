package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/qcdvpn/qcdvpn/gateway"
)

// cmdGateway runs the test/demo responder until SIGINT or SIGTERM (a
// graceful stop that deletes every IKE SA); kill -9 is the crash drill.
func cmdGateway(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("gateway", "Usage: qcdvpn gateway -c GATEWAY.json [--events json] [--control] [--log-level LEVEL]\n\nRuns the qcdvpn IKEv2 gateway (QCD token maker, resumption tickets) until SIGINT or SIGTERM.\n\nExample:\n  sudo qcdvpn gateway -c gateway.json --events json\n\nFlags:\n", stderr)
	cfgPath := fs.String("c", "", "gateway config JSON file (required)")
	fs.StringVar(cfgPath, "config", "", "same as -c")
	events := fs.String("events", "text", "event output: text (human lines on stderr) or json (one object per line on stdout)")
	logLevel := fs.String("log-level", "warn", "log level on stderr: debug, info, warn, error")
	control := fs.Bool("control", false, "read commands from stdin, one per line: \"redirect TARGET\" (RFC 5685, every connected client), \"stop\"")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if !noArgs(fs, stderr) {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "qcdvpn gateway: -c GATEWAY.json is required")
		return 2
	}
	if !checkEvents("gateway", *events, stderr) {
		return 2
	}
	level, ok := parseLevel("gateway", *logLevel, stderr)
	if !ok {
		return 2
	}
	cfg, err := gateway.LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "qcdvpn: %s\n", oneLine(err))
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	onEvent := eventPrinter(*events, stdout, stderr, func(e gateway.Event) string {
		b, _ := json.Marshal(e)
		return "gateway: " + string(b)
	})
	g, err := gateway.New(cfg, gateway.Options{Logger: log, OnEvent: onEvent})
	if err != nil {
		fmt.Fprintf(stderr, "qcdvpn: %s\n", oneLine(err))
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *control {
		go controlLoop(os.Stdin, g, stop, log)
	}
	if err := g.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "qcdvpn: %s\n", oneLine(err))
		return 1
	}
	return 0
}

// controlLoop runs the gateway's stdin commands.
func controlLoop(in io.Reader, g *gateway.Gateway, stop func(), log *slog.Logger) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0:
		case f[0] == "redirect" && len(f) == 2:
			n, err := g.RedirectAll(f[1])
			if err != nil {
				log.Warn("control: redirect", "err", err)
				continue
			}
			log.Info("control: redirected", "clients", n, "to", f[1])
		case f[0] == "stop" && len(f) == 1:
			stop()
			return
		default:
			log.Warn("control: unknown command (want \"redirect TARGET\" or \"stop\")", "line", sc.Text())
		}
	}
}
