//go:build !linux

package testbed

import "testing"

// RequireNFTables skips the test: network namespaces need Linux.
func RequireNFTables(t testing.TB) {
	t.Helper()
	t.Skip(skipPrefix + ErrNotLinux.Error())
}

// NewNATChain fails the test with ErrNotLinux.
func NewNATChain(t testing.TB) *NATChain {
	t.Helper()
	t.Fatal(ErrNotLinux)
	return nil
}

// FlushNAT fails the test with ErrNotLinux.
func (c *NATChain) FlushNAT(t testing.TB) {
	t.Helper()
	t.Fatal(ErrNotLinux)
}

// SetLoss fails the test with ErrNotLinux.
func SetLoss(t testing.TB, ns *NS, percent int, udpPorts ...uint16) {
	t.Helper()
	t.Fatal(ErrNotLinux)
}
