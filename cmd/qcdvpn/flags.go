package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// The flag handling the commands share. Every problem is reported on
// stderr as "qcdvpn CMD: ..." and ends the command with exit code 2.

// newFlags returns the flag set of command name: errors and --help go to
// stderr, --help prints usage and then the flags.
func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs (named after the command). When it
// returns false the command ends with code: 0 after --help, 2 after a bad
// flag (the flag package has said why).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}

// noArgs reports whether fs was left without positional arguments, and
// names the first one on stderr if not.
func noArgs(fs *flag.FlagSet, stderr io.Writer) bool {
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "qcdvpn %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return false
	}
	return true
}

// checkEvents reports whether s is a valid --events value, json or text.
func checkEvents(cmd, s string, stderr io.Writer) bool {
	if s != "json" && s != "text" {
		fmt.Fprintf(stderr, "qcdvpn %s: --events: %q is not one of json, text\n", cmd, s)
		return false
	}
	return true
}

// eventPrinter returns the OnEvent func for an --events value: with json
// one JSON object per line on stdout, else human(e) as a line on stderr.
// Calls are serialized.
func eventPrinter[E any](events string, stdout, stderr io.Writer, human func(E) string) func(E) {
	var mu sync.Mutex
	return func(e E) {
		mu.Lock()
		defer mu.Unlock()
		if events == "json" {
			b, _ := json.Marshal(e)
			fmt.Fprintf(stdout, "%s\n", b)
			return
		}
		fmt.Fprintln(stderr, human(e))
	}
}

// parseLevel parses a --log-level value.
func parseLevel(cmd, s string, stderr io.Writer) (slog.Level, bool) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		fmt.Fprintf(stderr, "qcdvpn %s: --log-level: %q is not one of debug, info, warn, error\n", cmd, s)
		return 0, false
	}
	return level, true
}
