//go:build !linux

package desktop

import "os"

// Privileged reports whether this process may create a TUN: root.
func Privileged() bool { return os.Geteuid() == 0 }
