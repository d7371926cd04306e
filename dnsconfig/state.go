package dnsconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// StateFile is the name, in the state directory, of the record of what
// was changed. It is written (and synced) before anything changes, and
// removed once everything is restored; one left behind means a crash.
const StateFile = "dns-state.json"

const stateVersion = 1

// maxStateSize bounds what readState reads (an original resolv.conf plus
// ours, base64-encoded in JSON).
const maxStateSize = 512 << 10

// state is the crash record.
type state struct {
	Version int    `json:"version"`
	PID     int    `json:"pid"`
	Backend string `json:"backend"` // BackendForwarder or BackendResolved
	// Forwarder: the resolver file as it was (Existed, Symlink or
	// Original with Mode) and as we wrote it.
	Path     string      `json:"path,omitempty"`
	Existed  bool        `json:"existed,omitempty"`
	Symlink  string      `json:"symlink,omitempty"`
	Mode     fs.FileMode `json:"mode,omitempty"`
	Original []byte      `json:"original,omitempty"`
	Written  []byte      `json:"written,omitempty"`
	// Resolved: the link whose settings we changed.
	Link string `json:"link,omitempty"`
}

// parseState reads a state record, checking every field it will act on.
func parseState(b []byte) (*state, error) {
	if len(b) > maxStateSize {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", StateFile, len(b), maxStateSize)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %v", StateFile, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%s: version %d, want %d", StateFile, st.Version, stateVersion)
	}
	switch st.Backend {
	case BackendForwarder:
		if st.Path == "" || !filepath.IsAbs(st.Path) {
			return nil, fmt.Errorf("%s: path %q is not absolute", StateFile, st.Path)
		}
		if st.Mode&^fs.ModePerm != 0 {
			return nil, fmt.Errorf("%s: mode %v is not a plain file's", StateFile, st.Mode)
		}
		if st.Symlink != "" && (!st.Existed || len(st.Original) > 0) {
			return nil, fmt.Errorf("%s: a symlink with contents", StateFile)
		}
	case BackendResolved:
		if !validLinkName(st.Link) {
			return nil, fmt.Errorf("%s: link %q is not an interface name", StateFile, st.Link)
		}
	default:
		return nil, fmt.Errorf("%s: unknown backend %q", StateFile, st.Backend)
	}
	return &st, nil
}

func validLinkName(s string) bool {
	if s == "" || len(s) > 15 {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c == '/' || c == 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// saveState writes st to dir durably: a temporary file, fsync, rename,
// fsync of the directory. Only then may the system be changed.
func saveState(dir string, st *state) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dnsconfig: state directory: %w", err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, StateFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("dnsconfig: recording DNS state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, StateFile))
	}
	if err != nil {
		return fmt.Errorf("dnsconfig: recording DNS state: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// readState returns the record in dir, nil if there is none.
func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dnsconfig: %w", err)
	}
	return parseState(b)
}

func removeState(dir string) error {
	if err := os.Remove(filepath.Join(dir, StateFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dnsconfig: %w", err)
	}
	return syncDir(dir)
}

// ErrBusy is returned when the DNS state belongs to a qcdvpn process that
// is still running.
var ErrBusy = errors.New("dnsconfig: the DNS configuration is managed by another running qcdvpn")

// RestoreLeftover undoes what a qcdvpn that did not exit cleanly (kill -9,
// a power cut) left in the DNS configuration recorded in stateDir: the
// resolver file's original bytes and mode, or systemd-resolved's link
// settings. It does nothing without a record, and returns ErrBusy if the
// process that wrote the record still runs. run may be nil (exec).
func RestoreLeftover(stateDir string, run Runner, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := readState(stateDir)
	if err != nil || st == nil {
		if err != nil {
			// A record we cannot read is one we cannot act on; keep it
			// for a human, but do not stop the client.
			log.Warn("unreadable DNS state record; not restoring", "err", err)
		}
		return nil
	}
	if alive(st.PID) {
		return fmt.Errorf("%w (pid %d)", ErrBusy, st.PID)
	}
	log.Info("restoring DNS configuration left by an earlier run", "backend", st.Backend, "pid", st.PID)
	if err := restore(st, run, log); err != nil {
		return err
	}
	return removeState(stateDir)
}

// restore undoes st.
func restore(st *state, run Runner, log *slog.Logger) error {
	switch st.Backend {
	case BackendResolved:
		if run == nil {
			run = execRunner
		}
		// The link may be gone with its TUN; resolved then forgot it.
		if err := revertLink(run, st.Link); err != nil {
			log.Info("reverting systemd-resolved link", "link", st.Link, "err", err)
		}
		return nil
	default:
		return restoreFile(st, log)
	}
}
