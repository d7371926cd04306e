package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

const versionUsage = `Usage: qcdvpn version

Prints the version, the source revision it was built from and the Go
toolchain.

Example:
  qcdvpn version

`

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", versionUsage, stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if !noArgs(fs, stderr) {
		return 2
	}
	fmt.Fprintln(stdout, versionString(debug.ReadBuildInfo))
	return 0
}

// versionString is "qcdvpn VERSION (REVISION[+dirty] TIME) GO OS/ARCH":
// the link-time version if set, else the module's; the VCS stamp when the
// build had one (go build in a checkout, without -buildvcs=false).
func versionString(read func() (*debug.BuildInfo, bool)) string {
	v := version
	var rev, at string
	dirty := false
	if bi, ok := read(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "qcdvpn %s", v)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		if at != "" {
			rev += " " + at
		}
		fmt.Fprintf(&b, " (%s)", rev)
	}
	fmt.Fprintf(&b, " %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}
