package dnsconfig

import "golang.org/x/sys/unix"

// bindToDevice confines a socket to the interface named link, so that
// queries for the tunnel's servers can only leave through the TUN, never
// by the underlay, whatever the routes say.
func bindToDevice(link string) func(fd int) error {
	return func(fd int) error { return unix.BindToDevice(fd, link) }
}

const supported = true
