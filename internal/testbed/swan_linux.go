package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// RequireStrongSwan is RequireRoot plus a check that charon, swanctl, the
// kernel-libipsec and openssl plugins (DefaultPlugins does its crypto through
// OpenSSL) and /dev/net/tun are there; it skips loudly if not.
func RequireStrongSwan(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	for _, p := range []string{CharonPath, "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so",
		"/usr/lib/ipsec/plugins/libstrongswan-openssl.so", "/dev/net/tun"} {
		if _, err := os.Stat(p); err != nil {
			t.Skip(skipPrefix + "strongSwan with kernel-libipsec and openssl is needed " +
				"(Debian: strongswan-charon libstrongswan-standard-plugins libcharon-extra-plugins strongswan-swanctl): " + err.Error())
		}
	}
	for _, tool := range []string{"swanctl", "unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(skipPrefix + tool + " not found: " + err.Error())
		}
	}
}

// RequireSwanPlugin is RequireStrongSwan plus a check that charon's plugin
// NAME (e.g. "eap-mschapv2") is installed; it skips loudly if not, naming
// the Debian package when pkg is not empty.
func RequireSwanPlugin(t testing.TB, name, pkg string) {
	t.Helper()
	RequireStrongSwan(t)
	p := "/usr/lib/ipsec/plugins/libstrongswan-" + name + ".so"
	if _, err := os.Stat(p); err != nil {
		hint := ""
		if pkg != "" {
			hint = " (Debian: " + pkg + ")"
		}
		t.Skip(skipPrefix + "strongSwan plugin " + name + " is needed" + hint + ": " + err.Error())
	}
}

// charonStartTimeout bounds how long charon may take to answer on vici;
// it usually takes well under a second.
const charonStartTimeout = 15 * time.Second

// StartStrongSwan writes a self-contained strongswan.conf and swanctl.conf
// (plus cfg.Files) under a test temporary directory, starts charon inside
// ns with a private /run (so instances never share pid files or sockets),
// waits until vici answers and loads the configuration with
// `swanctl --load-all`. Cleanup kills charon's whole process group and,
// if the test failed, logs the last 100 lines of charon's log.
func StartStrongSwan(t testing.TB, ns *NS, cfg SwanConfig) *StrongSwan {
	t.Helper()
	dir := t.TempDir()
	// unix socket paths are limited to 108 bytes and t.TempDir paths can
	// be long, so the socket gets a short directory of its own.
	sockDir, err := os.MkdirTemp("", "tbsw-")
	if err != nil {
		t.Fatalf("testbed: StartStrongSwan: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "charon.vici")
	s := &StrongSwan{
		NS:         ns,
		Dir:        dir,
		SwanctlDir: filepath.Join(dir, "swanctl"),
		ConfPath:   filepath.Join(dir, "strongswan.conf"),
		LogPath:    filepath.Join(dir, "charon.log"),
		VICI:       "unix://" + sock,
		exited:     make(chan struct{}),
	}
	if err := s.writeConfig(cfg, sock); err != nil {
		t.Fatalf("testbed: StartStrongSwan: %v", err)
	}

	outPath := filepath.Join(dir, "charon.out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatalf("testbed: StartStrongSwan: %v", err)
	}
	defer out.Close() // the child has its own copy
	// ip netns exec, unshare and sh all exec in turn, so the process we
	// start ends up being charon itself.
	s.cmd = exec.Command("ip", "netns", "exec", ns.Name,
		"unshare", "--mount", "--propagation", "private",
		"sh", "-c", `mount -t tmpfs -o mode=0755 tmpfs /run && exec "$0"`, CharonPath)
	s.cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+s.ConfPath)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.Dir = dir
	// Own process group, so Kill reaches anything charon spawned; die with
	// the test binary even if cleanup never runs.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("testbed: start charon in %s: %v", ns.Name, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("charon in %s: last 100 lines of %s:\n%s", ns.Name, s.LogPath, tail(s.Log(), 100))
			if b, err := os.ReadFile(outPath); err == nil && len(b) > 0 {
				t.Logf("charon in %s: stdout/stderr:\n%s", ns.Name, tail(string(b), 30))
			}
		}
	})

	if err := s.waitVICI(); err != nil {
		b, _ := os.ReadFile(outPath)
		t.Fatalf("testbed: charon in %s: %v\nstdout/stderr:\n%s\nlog %s:\n%s",
			ns.Name, err, b, s.LogPath, tail(s.Log(), 40))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.LoadAll(ctx); err != nil {
		t.Fatalf("testbed: charon in %s: %v", ns.Name, err) // err quotes swanctl's output
	}
	return s
}

// writeConfig lays out strongswan.conf, the swanctl directory and files.
func (s *StrongSwan) writeConfig(cfg SwanConfig, sock string) error {
	if err := os.WriteFile(s.ConfPath, []byte(renderStrongswanConf(cfg, sock, s.LogPath)), 0o600); err != nil {
		return err
	}
	for _, sub := range swanctlSubdirs {
		if err := os.MkdirAll(filepath.Join(s.SwanctlDir, sub), 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(s.SwanctlDir, "swanctl.conf"), []byte(renderSwanctlConf(cfg)), 0o600); err != nil {
		return err
	}
	return writeSwanFiles(s.SwanctlDir, cfg.Files)
}

// waitVICI polls `swanctl --stats` until charon answers, exits or
// charonStartTimeout passes.
func (s *StrongSwan) waitVICI() error {
	deadline := time.Now().Add(charonStartTimeout)
	var lastOut []byte
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("charon exited during start-up (%v)", s.cmd.ProcessState)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		out, err := s.swanctlCmd(ctx, "--stats").CombinedOutput()
		cancel()
		if err == nil {
			return nil
		}
		lastOut = out
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("vici at %s did not answer within %v; last swanctl output: %s",
		s.VICI, charonStartTimeout, lastOut)
}

// Kill sends SIGKILL to charon's process group and waits until charon has
// exited: a crash drill (no DELETE reaches the peer). Its TUN device and
// routes vanish with it. Safe to call more than once.
func (s *StrongSwan) Kill() {
	s.killOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
	}
}

// Running reports whether charon is still running.
func (s *StrongSwan) Running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}
