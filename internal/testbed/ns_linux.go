package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireRoot skips the test, loudly, unless it runs as root on a host where
// `ip netns` works. Call it first in every test that uses namespaces.
func RequireRoot(t testing.TB) {
	t.Helper()
	if reason := rootProblem(); reason != "" {
		t.Skip(skipPrefix + reason)
	}
}

// rootProblem says why namespaces cannot be used here, or "" when they can.
func rootProblem() string {
	if os.Geteuid() != 0 {
		return fmt.Sprintf("running as uid %d, not root", os.Geteuid())
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return "kernel without network namespaces: " + err.Error()
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "iproute2 `ip` not found: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "list").CombinedOutput(); err != nil {
		return fmt.Sprintf("`ip netns list` failed: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return ""
}

// NewNS creates a network namespace named prefix-XXXXXX (random suffix),
// brings its lo up and deletes it when the test ends.
func NewNS(t testing.TB, prefix string) *NS {
	t.Helper()
	n := &NS{Name: sanitizeName(prefix) + "-" + randomHex(3)}
	if err := runIP("netns", "add", n.Name); err != nil {
		t.Fatalf("testbed: create namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := runIP("netns", "del", n.Name); err != nil {
			t.Errorf("testbed: delete namespace %s: %v", n.Name, err)
		}
	})
	if err := runIP("-n", n.Name, "link", "set", "lo", "up"); err != nil {
		t.Fatalf("testbed: namespace %s: %v", n.Name, err)
	}
	return n
}

// sanitizeName keeps a namespace prefix short and made of safe characters.
func sanitizeName(prefix string) string {
	var b strings.Builder
	for _, r := range prefix {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		}
		if b.Len() >= 16 {
			break
		}
	}
	if b.Len() == 0 {
		return "tb"
	}
	return b.String()
}

// runIP runs `ip ARGS...` in the host namespace with a timeout, returning an
// error that carries ip's output.
func runIP(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Command returns `ip netns exec NAME name args...`, ready to be started.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Exec runs name with args inside the namespace and returns its combined
// output. On failure the error also quotes the output.
func (n *NS) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in %s: %s %s: %w: %s", n.Name, name, strings.Join(args, " "), err,
			strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Do runs fn on a locked OS thread switched into the namespace and switches
// back afterwards. Sockets created inside fn stay in the namespace for their
// whole life, so a common pattern is to create a socket in Do and use it
// anywhere. Goroutines started inside fn do NOT inherit the namespace (they
// may run on any thread), and fn runs on a goroutine of its own, so it must
// not call t.Fatal; return an error instead. A panic in fn is returned as an
// error.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// This goroutine stays locked unless the original namespace is
		// restored; a goroutine that exits locked takes its thread with it,
		// so a thread in the wrong namespace is never reused.
		runtime.LockOSThread()
		errc <- n.doLocked(fn)
	}()
	return <-errc
}

// doLocked is Do's body on the already-locked thread.
func (n *NS) doLocked(fn func() error) (err error) {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread() // still in the original namespace
		return fmt.Errorf("testbed: open current namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("testbed: open namespace %s: %w", n.Name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("testbed: enter namespace %s: %w", n.Name, err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("testbed: panic in namespace %s: %v", n.Name, r)
		}
		if rerr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); rerr != nil {
			err = errors.Join(err, fmt.Errorf("testbed: leave namespace %s: %w", n.Name, rerr))
			return // stay locked: the thread dies with the goroutine
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// AddLoopbackAddr adds prefix to the namespace's lo, which is how a test
// stands up "hosts behind the gateway" (there is no dummy interface type
// here). Note that on lo the kernel answers for every address in prefix,
// not only for prefix.Addr().
func (n *NS) AddLoopbackAddr(t testing.TB, prefix netip.Prefix) {
	t.Helper()
	if err := addAddr(n, "lo", prefix); err != nil {
		t.Fatalf("testbed: %v", err)
	}
}

// addAddr adds prefix to dev in n; IPv6 addresses skip duplicate address
// detection so they are usable at once.
func addAddr(n *NS, dev string, prefix netip.Prefix) error {
	if !prefix.IsValid() {
		return fmt.Errorf("namespace %s: invalid address %v for %s", n.Name, prefix, dev)
	}
	args := []string{"-n", n.Name, "addr", "add", prefix.String(), "dev", dev}
	if prefix.Addr().Is6() && !prefix.Addr().Is4In6() {
		args = append(args, "nodad")
	}
	return runIP(args...)
}

// SetSysctl writes a sysctl of the namespace, e.g. key
// "net.ipv4.ip_forward" and value "1". Only per-namespace (net.*) keys
// may be used: anything else would change the host.
func (n *NS) SetSysctl(t testing.TB, key, value string) {
	t.Helper()
	if !strings.HasPrefix(key, "net.") || strings.Contains(key, "..") || strings.Contains(key, "/") {
		t.Fatalf("testbed: sysctl %q: only net.* keys are per namespace", key)
	}
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	err := n.Do(func() error { return os.WriteFile(path, []byte(value+"\n"), 0o644) })
	if err != nil {
		t.Fatalf("testbed: namespace %s: sysctl %s=%s: %v", n.Name, key, value, err)
	}
}

// ListenPacket is net.ListenPacket inside the namespace.
func (n *NS) ListenPacket(network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Do(func() (err error) {
		c, err = net.ListenPacket(network, address)
		return err
	})
	return c, err
}

// Listen is net.Listen inside the namespace.
func (n *NS) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() (err error) {
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// DialContext dials from inside the namespace. Use literal IP addresses:
// name resolution could run on other threads, outside the namespace.
func (n *NS) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}
