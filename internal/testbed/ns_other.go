//go:build !linux

package testbed

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"testing"
)

// RequireRoot skips the test: network namespaces need Linux.
func RequireRoot(t testing.TB) {
	t.Helper()
	t.Skip(skipPrefix + ErrNotLinux.Error())
}

// RequireStrongSwan skips the test: network namespaces need Linux.
func RequireStrongSwan(t testing.TB) {
	t.Helper()
	t.Skip(skipPrefix + ErrNotLinux.Error())
}

// NewNS fails the test with ErrNotLinux.
func NewNS(t testing.TB, prefix string) *NS {
	t.Helper()
	t.Fatal(ErrNotLinux)
	return nil
}

// Exec returns ErrNotLinux.
func (n *NS) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	return nil, ErrNotLinux
}

// Command returns a command whose Start and Run report ErrNotLinux.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return &exec.Cmd{Path: name, Args: append([]string{name}, args...), Err: ErrNotLinux}
}

// Do returns ErrNotLinux without calling fn.
func (n *NS) Do(fn func() error) error { return ErrNotLinux }

// AddLoopbackAddr fails the test with ErrNotLinux.
func (n *NS) AddLoopbackAddr(t testing.TB, prefix netip.Prefix) {
	t.Helper()
	t.Fatal(ErrNotLinux)
}

// SetSysctl fails the test with ErrNotLinux.
func (n *NS) SetSysctl(t testing.TB, key, value string) {
	t.Helper()
	t.Fatal(ErrNotLinux)
}

// ListenPacket returns ErrNotLinux.
func (n *NS) ListenPacket(network, address string) (net.PacketConn, error) {
	return nil, ErrNotLinux
}

// Listen returns ErrNotLinux.
func (n *NS) Listen(network, address string) (net.Listener, error) {
	return nil, ErrNotLinux
}

// DialContext returns ErrNotLinux.
func (n *NS) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return nil, ErrNotLinux
}

// Ping returns ErrNotLinux.
func (n *NS) Ping(ctx context.Context, dst netip.Addr) error { return ErrNotLinux }

// Connect fails the test with ErrNotLinux.
func Connect(t testing.TB, a, b *NS, aAddr, bAddr netip.Prefix) *Link {
	t.Helper()
	t.Fatal(ErrNotLinux)
	return nil
}

// NewPair fails the test with ErrNotLinux.
func NewPair(t testing.TB) *Pair {
	t.Helper()
	t.Fatal(ErrNotLinux)
	return nil
}

// AnotherGateway fails the test with ErrNotLinux.
func (p *Pair) AnotherGateway(t testing.TB) *Pair {
	t.Helper()
	t.Fatal(ErrNotLinux)
	return nil
}
