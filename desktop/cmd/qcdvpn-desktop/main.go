// Command qcdvpn-desktop is the qcdvpn desktop app (Fyne).
//
//	qcdvpn-desktop [--engine auto|attach|inprocess] [--socket PATH] [--tun NAME]
//	               [--profiles DIR] [--connect NAME] [--ready FILE.json]
//
// It runs unprivileged and attaches to a privileged `qcdvpn up --service`
// over its control socket; with root or CAP_NET_ADMIN it can run the
// engine in-process instead. --ready is for tests and the README
// screenshot: once connected for a while with samples in the traffic
// graph, it writes what the window shows (desktop.Snapshot) to FILE.json,
// and keeps it current; the test takes the screenshot from the X server
// and ends the app with SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/qcdvpn/qcdvpn/control"
	"github.com/qcdvpn/qcdvpn/desktop"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// appID names the app's preferences and its desktop entry.
const appID = "org.qcdvpn.desktop"

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("qcdvpn-desktop", flag.ContinueOnError)
	mode := fs.String("engine", desktop.ModeAuto, "auto (attach if the control socket answers, else in-process if privileged), attach, or inprocess")
	socket := fs.String("socket", control.DefaultPath(), "control socket of `qcdvpn up --service`")
	tunName := fs.String("tun", "qcd0", "in-process engine: name of the TUN interface")
	profiles := fs.String("profiles", "", "directory of the stored profiles (default: qcdvpn/profiles in the user config directory)")
	connect := fs.String("connect", "", "connect the stored profile NAME at start")
	ready := fs.String("ready", "", "test hook: once connected, write what the window shows to this JSON file, and keep it current")
	readyAfter := fs.Duration("ready-after", 4*time.Second, "with --ready: how long to stay connected first (graph samples)")
	logLevel := fs.String("log-level", "warn", "log level on stderr: debug, info, warn, error")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "qcdvpn-desktop: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "qcdvpn-desktop: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	dir := *profiles
	if dir == "" {
		d, err := desktop.DefaultStoreDir()
		if err != nil {
			fmt.Fprintf(os.Stderr, "qcdvpn-desktop: %v\n", err)
			return 1
		}
		dir = d
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	backend, desc, err := desktop.Open(ctx, desktop.OpenOptions{Mode: *mode, Socket: *socket,
		Engine: control.EngineOptions{Options: sdk.Options{Logger: log, TUNName: *tunName}}})
	noBackend := ""
	if err != nil {
		if *mode != desktop.ModeAuto && *mode != "" && *mode != desktop.ModeAttach && *mode != desktop.ModeInProcess {
			fmt.Fprintf(os.Stderr, "qcdvpn-desktop: %v\n", err)
			return 2
		}
		noBackend = "No engine: " + err.Error()
		log.Warn("desktop: " + noBackend)
	}

	a := app.NewWithID(appID)
	a.SetIcon(desktop.AppIcon)
	u := desktop.New(a, desktop.Options{Backend: backend, NoBackend: noBackend, Mode: desc,
		Store: desktop.NewStore(dir), Logger: log, NoTray: !trayAvailable()})
	u.Start()
	go func() {
		<-ctx.Done()
		fyne.Do(a.Quit)
	}()
	if *connect != "" {
		fyne.Do(func() {
			if err := u.Select(*connect); err != nil {
				fmt.Fprintf(os.Stderr, "qcdvpn-desktop: --connect: %v\n", err)
				return
			}
			u.Connect()
		})
	}
	if *ready != "" {
		go func() {
			if err := writeWhenReady(ctx, u, *ready, *readyAfter); err != nil {
				fmt.Fprintf(os.Stderr, "qcdvpn-desktop: --ready: %v\n", err)
			}
		}()
	}
	u.Window().ShowAndRun()
	u.Stop()
	if backend != nil {
		backend.Close()
	}
	return 0
}

// writeWhenReady waits until the window shows a tunnel that has been
// connected for after, with samples in the traffic graph, then writes the
// window's Snapshot to file, and again every half second after that, so a
// test can follow what happens next (atomically: the test polls for it).
func writeWhenReady(ctx context.Context, u *desktop.UI, file string, after time.Duration) error {
	var since time.Time
	ready := false
	for {
		var s desktop.Snapshot
		fyne.DoAndWait(func() { s = u.Snapshot() })
		if !ready {
			if s.State != desktop.StateConnected {
				since = time.Time{}
			} else if since.IsZero() {
				since = time.Now()
			} else if time.Since(since) >= after && s.GraphSamples >= 3 {
				ready = true
				// Let the last refresh reach the screen.
				time.Sleep(300 * time.Millisecond)
				fyne.DoAndWait(func() { s = u.Snapshot() })
			}
		}
		if ready {
			b, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				return err
			}
			if err := os.WriteFile(file+".tmp", append(b, '\n'), 0o644); err != nil {
				return err
			}
			if err := os.Rename(file+".tmp", file); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}
