//go:build !unix

package mobile

// closeFD does nothing where TUN descriptors do not exist.
func closeFD(int) {}
