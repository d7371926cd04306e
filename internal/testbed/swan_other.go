//go:build !linux

package testbed

import "testing"

// StartStrongSwan fails the test with ErrNotLinux.
func StartStrongSwan(t testing.TB, ns *NS, cfg SwanConfig) *StrongSwan {
	t.Helper()
	t.Fatal(ErrNotLinux)
	return nil
}

// Kill does nothing: charon cannot run here.
func (s *StrongSwan) Kill() {}

// Running reports false: charon cannot run here.
func (s *StrongSwan) Running() bool { return false }

// RequireSwanPlugin skips: charon cannot run here.
func RequireSwanPlugin(t testing.TB, name, pkg string) {
	t.Helper()
	t.Skip(skipPrefix + ErrNotLinux.Error())
}
