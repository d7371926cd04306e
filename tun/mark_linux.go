package tun

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// SetMark sets SO_MARK on a socket (e.g. a *net.UDPConn) so that its packets bypass the
// tunnel's routing table; use Kernel.FwMark as mark. It needs CAP_NET_ADMIN.
func SetMark(c syscall.Conn, mark uint32) error {
	if c == nil {
		return errors.New("tun: SetMark: nil connection")
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("tun: SetMark: %w", err)
	}
	return SetMarkRaw(rc, mark)
}

// SetMarkRaw is SetMark for a syscall.RawConn, as handed to net.ListenConfig.Control.
func SetMarkRaw(rc syscall.RawConn, mark uint32) error {
	if rc == nil {
		return errors.New("tun: SetMark: nil connection")
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
	}); err != nil {
		return fmt.Errorf("tun: SetMark: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("tun: SetMark: SO_MARK %#x: %w", mark, serr)
	}
	return nil
}
