package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/qcdvpn/qcdvpn/control"
	"github.com/qcdvpn/qcdvpn/internal/pemfile"
	"github.com/qcdvpn/qcdvpn/profileimport"
	"github.com/qcdvpn/qcdvpn/sdk"
)

const importUsage = `Usage: qcdvpn import FILE [-o OUT] [flags]

Converts a strongSwan Android VPN profile (.sswan) into a qcdvpn profile, or
checks a qcdvpn profile. Certificates and keys in the .sswan go to files
next to OUT (mode 0600) that the profile names; what qcdvpn cannot use is
named on stderr, and what it cannot do without is an error.

Examples:
  qcdvpn import corp.sswan -o corp.json --p12-password-file p12pass.txt
  qcdvpn import office.sswan --password-file eap-password.txt
  qcdvpn import mine.json        (only checks it)

Flags:
`

func cmdImport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("import", importUsage, stderr)
	out := fs.String("o", "", "output profile (default: FILE's name with .json in the current directory; - for stdout, with the PEM inline)")
	force := fs.Bool("force", false, "overwrite existing output files")
	inline := fs.Bool("inline", false, "put certificates and keys into the profile instead of files next to it")
	passwordFile := fs.String("password-file", "", "file holding the EAP password (type ikev2-eap; a .sswan never holds it)")
	p12PasswordFile := fs.String("p12-password-file", "", "file holding the password of the PKCS#12 container (local.p12)")
	caFile := fs.String("ca", "", "PEM file with the CA certificate(s), for a .sswan without remote.cert")
	pos, code, ok := parseInterleaved(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "qcdvpn import: want one FILE (see qcdvpn import --help)")
		return 2
	}
	in := pos[0]
	fail := func(err error) int {
		fmt.Fprintf(stderr, "qcdvpn import: %s\n", oneLine(err))
		return 1
	}
	data, err := pemfile.ReadFile(in, profileimport.MaxInputSize)
	if err != nil {
		return fail(fmt.Errorf("%s: %v", in, readReason(err)))
	}
	opts := profileimport.Options{Inline: *inline || *out == "-"}
	for _, s := range []struct {
		flag, path string
		dst        *string
	}{{"--password-file", *passwordFile, &opts.Password}, {"--p12-password-file", *p12PasswordFile, &opts.P12Password}} {
		if s.path == "" {
			continue
		}
		if *s.dst, err = readSecret(s.path); err != nil {
			return fail(fmt.Errorf("%s: %v", s.flag, err))
		}
	}
	if *caFile != "" {
		if opts.CA, err = pemfile.ReadFile(*caFile, 1<<20); err != nil {
			return fail(fmt.Errorf("--ca: %s: %v", *caFile, readReason(err)))
		}
	}
	outPath := *out
	if outPath == "" {
		outPath = strings.TrimSuffix(filepath.Base(in), filepath.Ext(in)) + ".json"
	}
	if outPath != "-" {
		opts.FileBase = strings.TrimSuffix(filepath.Base(outPath), filepath.Ext(outPath))
	}
	res, err := profileimport.Convert(data, opts)
	if err != nil {
		return fail(fmt.Errorf("%s: %v", in, err))
	}
	if res.Format == profileimport.FormatQCDVPN {
		// Ours: the files it names must load, from its own directory.
		if _, err := control.ParseProfileIn(data, filepath.Dir(in)); err != nil {
			return fail(fmt.Errorf("%s: %v", in, err))
		}
		if *out == "" || sameFile(in, outPath) {
			fmt.Fprintf(stderr, "qcdvpn import: %s is a valid qcdvpn profile\n", in)
			return 0
		}
		if outPath != "-" && filepath.Dir(absPath(in)) != filepath.Dir(absPath(outPath)) && hasRelativePaths(res.Profile) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the profile names files relative to %s; the copy is elsewhere", filepath.Dir(in)))
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "qcdvpn import: warning: %s\n", w)
	}
	if outPath == "-" {
		stdout.Write(res.Profile)
		return 0
	}
	dir := filepath.Dir(outPath)
	var written []string
	undo := func() {
		for _, p := range written {
			os.Remove(p)
		}
	}
	for _, f := range res.Files {
		p := filepath.Join(dir, f.Name)
		if err := writeNew(p, f.Data, *force); err != nil {
			undo()
			return fail(err)
		}
		written = append(written, p)
	}
	if err := writeNew(outPath, res.Profile, *force); err != nil {
		undo()
		return fail(err)
	}
	msg := fmt.Sprintf("qcdvpn import: wrote %s", outPath)
	if len(res.Files) > 0 {
		var names []string
		for _, f := range res.Files {
			names = append(names, f.Name)
		}
		msg += " and " + strings.Join(names, ", ")
	}
	fmt.Fprintln(stderr, msg)
	return 0
}

// parseInterleaved parses flags that may come before or after the
// positional arguments ("import FILE -o OUT").
func parseInterleaved(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if code, ok := parseFlags(fs, args); !ok {
			return nil, code, false
		}
		if fs.NArg() == 0 {
			return pos, 0, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// writeNew writes a profile or key file, 0600, refusing to replace one
// unless force.
func writeNew(path string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists (--force replaces it)", path)
	}
	if err != nil {
		return fmt.Errorf("%s: %v", path, readReason(err))
	}
	if force {
		f.Chmod(0o600) // an older file may have been wider
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("%s: %v", path, err)
	}
	return f.Close()
}

// readSecret reads a one-line secret file (trailing newline dropped).
func readSecret(path string) (string, error) {
	b, err := pemfile.ReadFile(path, 4096)
	if err != nil {
		return "", fmt.Errorf("%s: %v", path, readReason(err))
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s has more than one line", path)
	}
	return s, nil
}

func readReason(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// hasRelativePaths reports whether a qcdvpn profile names files by
// relative paths.
func hasRelativePaths(profile []byte) bool {
	p, err := sdk.ParseProfile(profile)
	if err != nil {
		return false
	}
	for _, s := range []string{p.CA, p.Auth.Cert, p.Auth.Key, p.StateDir} {
		if s != "" && !pemfile.IsInline(s) && !filepath.IsAbs(s) {
			return true
		}
	}
	return false
}
