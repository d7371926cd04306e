package tun

import (
	"fmt"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// FromFD adopts the TUN file descriptor of an Android VpnService (ParcelFileDescriptor
// detachFd). The MTU is the one VpnService.Builder.setMtu configured; mtu is only checked
// for sanity (0 means "as configured"). The device is unmonitored: apps may not listen to
// rtnetlink. FromFD takes ownership of fd: it is closed with the Device, or on error.
func FromFD(fd int, mtu int) (Device, error) {
	if fd < 0 {
		return nil, fmt.Errorf("tun: FromFD: invalid file descriptor %d", fd)
	}
	if mtu != 0 && (mtu < minMTU || mtu > maxMTU) {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: FromFD: MTU %d out of range [%d, %d]", mtu, minMTU, maxMTU)
	}
	// Check that fd is a TUN before wireguard-go wraps it in an *os.File it would leak
	// (with the fd) on failure; after this check its constructor does not fail in practice.
	ifr, err := unix.NewIfreq("")
	if err == nil {
		err = unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: FromFD: descriptor %d is not a TUN device: %w", fd, err)
	}
	dev, _, err := wgtun.CreateUnmonitoredTUNFromFD(fd)
	if err != nil {
		return nil, fmt.Errorf("tun: FromFD: %w", err)
	}
	return dev, nil
}
