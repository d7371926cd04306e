package resume

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

var faultSink byte

// TestGuardFault: reading a mapping past the end of its file raises
// SIGBUS, which guard must turn into an error (bbolt reads pages through
// such a mapping when a database file was cut short).
func TestGuardFault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, 4*4096, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer unix.Munmap(m)
	err = guard(func() error { faultSink = m[2*4096]; return nil })
	if _, ok := err.(*corruptError); !ok {
		t.Fatalf("guard = %v, want a corruptError", err)
	}
	// The goroutine's setting is restored.
	if err := guard(func() error { panic("boom") }); err == nil {
		t.Fatal("panic not recovered")
	}
}
