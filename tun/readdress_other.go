//go:build !linux

package tun

import "net/netip"

// SetAddresses exists only on Linux, as Create does.
func (k *Kernel) SetAddresses([]netip.Prefix) error { return errUnsupported("SetAddresses") }
