package control

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets TestSocketRefusesOtherUsers re-run this test binary as
// another user: with QCDVPN_CONTROL_CHILD set to a socket path, it asks
// for the status there and prints "ok STATE" or "err MESSAGE".
func TestMain(m *testing.M) {
	if path := os.Getenv("QCDVPN_CONTROL_CHILD"); path != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := Dial(ctx, path)
		if err == nil {
			var st Status
			st, err = c.Status(ctx)
			if err == nil {
				fmt.Printf("ok %s\n", st.State)
				os.Exit(0)
			}
		}
		fmt.Printf("err %s\n", err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// asUser runs the status query as uid (and gid) in a child process.
func asUser(t *testing.T, exe, path string, uid int) string {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "QCDVPN_CONTROL_CHILD="+path, "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as uid %d: %v: %s", uid, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestSocketRefusesOtherUsers: the socket's permissions keep other users
// out, and when they are opened anyway the peer-credential check does;
// the owner given in AllowUIDs gets in.
func TestSocketRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root to run a child process as other users")
	}
	const nobody, owner = 65534, 64321
	// A tree every user can traverse: /tmp/x (0755) holding a copy of
	// this test binary and the socket's directory.
	base, err := os.MkdirTemp("", "qcdvpn-permtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	exe := filepath.Join(base, "control.test")
	copyFile(t, exe)
	path := filepath.Join(base, "qcdvpn", "control.sock")
	s, err := Listen(path, ServerOptions{AllowUIDs: []int{owner}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), newFake()) }()
	t.Cleanup(func() { s.Close(); <-done })

	if got := asUser(t, exe, path, owner); got != "ok connected" {
		t.Errorf("owner uid %d: %q, want ok", owner, got)
	}
	if got := asUser(t, exe, path, nobody); !strings.Contains(got, "permission denied") {
		t.Errorf("nobody through the 0700 directory: %q, want permission denied", got)
	}
	// Open the file permissions: the peer-credential check still refuses.
	os.Chmod(filepath.Dir(path), 0o755)
	os.Chmod(path, 0o666)
	if got := asUser(t, exe, path, nobody); got != fmt.Sprintf("err refused: uid %d may not use this control socket", nobody) {
		t.Errorf("nobody with open permissions: %q, want refused", got)
	}
	if got := asUser(t, exe, path, owner); got != "ok connected" {
		t.Errorf("owner with open permissions: %q, want ok", got)
	}
	// Root always gets in.
	if got := asUser(t, exe, path, 0); got != "ok connected" {
		t.Errorf("root: %q", got)
	}
	// The directory belonged to the owner; a later root run without an
	// owner takes it back.
	if uid := ownerOf(t, filepath.Dir(path)); uid != owner {
		t.Errorf("directory owned by %d, want %d", uid, owner)
	}
	s.Close()
	<-done
	s2, err := Listen(path, ServerOptions{})
	if err != nil {
		t.Fatalf("Listen again as root: %v", err)
	}
	defer s2.Close()
	if uid := ownerOf(t, filepath.Dir(path)); uid != 0 {
		t.Errorf("directory owned by %d after a root run, want 0", uid)
	}
	done <- nil // for the cleanup
}

func ownerOf(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

func copyFile(t *testing.T, dst string) {
	t.Helper()
	src, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
