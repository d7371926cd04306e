package dnsconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"strings"

	"github.com/qcdvpn/qcdvpn/resolver"
)

// snapshot records the resolver file at path as it is now.
func snapshot(path string) (*state, error) {
	st := &state{Version: stateVersion, PID: os.Getpid(), Backend: BackendForwarder, Path: path}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return st, nil
	case err != nil:
		return nil, fmt.Errorf("dnsconfig: %w", err)
	}
	st.Existed = true
	if fi.Mode()&fs.ModeSymlink != 0 {
		if st.Symlink, err = os.Readlink(path); err != nil {
			return nil, fmt.Errorf("dnsconfig: %w", err)
		}
		return st, nil
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("dnsconfig: %s is not a regular file", path)
	}
	st.Mode = fi.Mode().Perm()
	if st.Original, err = os.ReadFile(path); err != nil {
		return nil, fmt.Errorf("dnsconfig: %w", err)
	}
	if st.Original == nil {
		st.Original = []byte{}
	}
	return st, nil
}

// resolvConfFor is the file that sends every query to the forwarder at
// listen, keeping the original search and options lines.
func resolvConfFor(listen netip.AddrPort, orig []byte) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by qcdvpn while its tunnel is up; the original is restored when it exits.\n")
	fmt.Fprintf(&b, "nameserver %s\n", listen.Addr())
	if c, err := resolver.ParseResolvConf(orig); err == nil {
		if len(c.Search) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(c.Search, " "))
		}
		var opts []string
		for _, o := range c.Options {
			// One server: rotation means nothing; keep the rest.
			if o != "rotate" {
				opts = append(opts, o)
			}
		}
		if len(opts) > 0 {
			fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
		}
	}
	return b.Bytes()
}

// writeFile replaces the contents of path in place, so that the file
// keeps its inode, owner and mode (and a bind mount, as `ip netns exec`
// makes of /etc/netns/NAME/resolv.conf, stays valid). A symlink is
// replaced by a regular file; a missing file is created with mode.
func writeFile(st *state, data []byte) error {
	if st.Symlink != "" {
		if err := os.Remove(st.Path); err != nil {
			return fmt.Errorf("dnsconfig: %w", err)
		}
	}
	mode := st.Mode
	if mode == 0 {
		mode = 0o644
	}
	f, err := os.OpenFile(st.Path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("dnsconfig: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dnsconfig: writing %s: %w", st.Path, err)
	}
	return nil
}

// restoreFile puts the resolver file back as st recorded it, unless
// someone else (a DHCP client, the admin) rewrote it since we did: their
// newer file is kept.
func restoreFile(st *state, log *slog.Logger) error {
	cur, err := os.ReadFile(st.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dnsconfig: %w", err)
	}
	if err == nil && st.Written != nil && !bytes.Equal(cur, st.Written) {
		log.Warn("the resolver file changed since qcdvpn wrote it; keeping the new one", "path", st.Path)
		return nil
	}
	switch {
	case !st.Existed:
		if err := os.Remove(st.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("dnsconfig: %w", err)
		}
	case st.Symlink != "":
		if err := os.Remove(st.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("dnsconfig: %w", err)
		}
		if err := os.Symlink(st.Symlink, st.Path); err != nil {
			return fmt.Errorf("dnsconfig: %w", err)
		}
	default:
		if err := writeFile(st, st.Original); err != nil {
			return err
		}
		// O_CREATE's mode applies only to a new file; set it either way.
		if err := os.Chmod(st.Path, st.Mode); err != nil {
			return fmt.Errorf("dnsconfig: %w", err)
		}
	}
	return nil
}
