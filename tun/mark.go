package tun

import "syscall"

// MarkControl returns a net.ListenConfig / net.Dialer Control function that sets SO_MARK=mark
// on the socket before it is bound, so that the socket never uses the tunnel.
func MarkControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error { return SetMarkRaw(c, mark) }
}
