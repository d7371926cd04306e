package udpbatch

import (
	"errors"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ControlSpace is the OOB room one message needs for UDP_SEGMENT or UDP_GRO.
var ControlSpace = unix.CmsgSpace(2)

// Tune sets large socket buffers (the FORCE variants first, which root
// may use past net.core.[rw]mem_max) and turns UDP_GRO on. It returns
// whether GRO and GSO are available on c; failures only lose speed.
func Tune(c *net.UDPConn) (gro, gso bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, false
	}
	_ = rc.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], SocketBuffer) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], SocketBuffer)
			}
		}
		gro = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		// UDP_SEGMENT is readable where the kernel knows it (Linux 4.18+).
		_, serr := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		gso = serr == nil
	})
	return gro, gso
}

// PutSegment writes a UDP_SEGMENT control message asking the kernel to
// split the send into datagrams of seg bytes; oob needs cap >= ControlSpace.
func PutSegment(oob []byte, seg uint16) ([]byte, error) {
	if cap(oob) < ControlSpace {
		return oob[:0], ErrNoControl
	}
	oob = oob[:ControlSpace]
	clear(oob)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&oob[unix.CmsgLen(0)])) = seg // host byte order
	return oob, nil
}

// SegmentSize returns the GRO segment size a read's control messages
// carry, or 0 if the read is one datagram.
func SegmentSize(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rem, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= 2 {
			return int(*(*uint16)(unsafe.Pointer(&data[0])))
		}
		oob = rem
	}
	return 0
}

// DisableGSO reports whether a send error means the route cannot segment
// (no checksum offload on the device: udp_send_skb returns EIO), so the
// caller should stop using UDP_SEGMENT and resend without.
func DisableGSO(err error) bool { return errors.Is(err, unix.EIO) }
