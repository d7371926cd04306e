package sdk

import "golang.org/x/sys/unix"

func setMarkFD(fd int, mark uint32) error {
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark))
}
