//go:build unix

package mobile

import "golang.org/x/sys/unix"

// closeFD closes a descriptor the tunnel was given but could not use.
func closeFD(fd int) { _ = unix.Close(fd) }
