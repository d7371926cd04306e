package tun

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// FromFD adopts a utun file descriptor, as an iOS NEPacketTunnelProvider or a privileged
// macOS helper provides it. mtu 0 keeps the MTU the system configured (on iOS the
// NEPacketTunnelNetworkSettings' MTU); otherwise it must be in [576, 65535]. FromFD takes
// ownership of fd: it is closed with the Device, or before FromFD returns an error.
func FromFD(fd int, mtu int) (Device, error) {
	if fd < 0 {
		return nil, fmt.Errorf("tun: FromFD: invalid file descriptor %d", fd)
	}
	if mtu != 0 && (mtu < minMTU || mtu > maxMTU) {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: FromFD: MTU %d out of range [%d, %d]", mtu, minMTU, maxMTU)
	}
	// Non-blocking before os.NewFile, so the runtime poller manages it and Close unblocks Read.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: FromFD: set non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), "/dev/tun")
	dev, err := wgtun.CreateTUNFromFile(f, mtu)
	if err != nil {
		f.Close() // may already be closed by wireguard-go; os.File makes this safe
		return nil, fmt.Errorf("tun: FromFD: %w", err)
	}
	return drainEvents(dev), nil
}
