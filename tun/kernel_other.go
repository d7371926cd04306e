//go:build !linux

package tun

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
)

// Kernel is a kernel TUN interface with its addresses and routes; it exists only on Linux.
// Elsewhere Create returns an error and the methods return zero values.
type Kernel struct{}

// errUnsupported names the OS so that the caller's message is self-explanatory.
func errUnsupported(what string) error {
	return fmt.Errorf("tun: %s is not supported on %s", what, runtime.GOOS)
}

// Create is only implemented on Linux; elsewhere it returns an error (use FromFD or
// CreateNetstack).
func Create(ctx context.Context, cfg Config, log *slog.Logger) (*Kernel, error) {
	if _, err := plan(cfg); err != nil {
		return nil, err
	}
	return nil, errUnsupported("kernel TUN set-up (Create)")
}

// Device returns nil: there is no kernel TUN on this OS.
func (k *Kernel) Device() Device { return nil }

// Name returns "".
func (k *Kernel) Name() string { return "" }

// Table returns 0.
func (k *Kernel) Table() uint32 { return 0 }

// FwMark returns 0.
func (k *Kernel) FwMark() uint32 { return 0 }

// Close does nothing.
func (k *Kernel) Close() error { return nil }

// SetMark is only implemented on Linux (SO_MARK); elsewhere it returns an error.
func SetMark(c syscall.Conn, mark uint32) error { return errUnsupported("SetMark (SO_MARK)") }

// SetMarkRaw is only implemented on Linux (SO_MARK); elsewhere it returns an error.
func SetMarkRaw(rc syscall.RawConn, mark uint32) error { return errUnsupported("SetMark (SO_MARK)") }
