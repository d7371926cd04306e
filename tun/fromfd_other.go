//go:build !linux && !darwin

package tun

// FromFD is only available on Linux, Android, macOS and iOS; elsewhere it returns an error
// and leaves fd alone.
func FromFD(fd int, mtu int) (Device, error) {
	return nil, errUnsupported("FromFD")
}
