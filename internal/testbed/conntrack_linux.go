package testbed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// ipctnlMsgCtDelete is IPCTNL_MSG_CT_DELETE from linux/netfilter/
// nfnetlink_conntrack.h (golang.org/x/sys does not define it).
const ipctnlMsgCtDelete = 2

// flushConntrack deletes every conntrack entry of the current thread's
// network namespace, like `conntrack -F`, by sending a ctnetlink
// IPCTNL_MSG_CT_DELETE without a tuple. Done in Go so that the harness
// needs no conntrack tool. Call it inside NS.Do.
func flushConntrack(family uint8) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("conntrack flush: netfilter netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("conntrack flush: bind: %w", err)
	}
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("conntrack flush: receive timeout: %w", err)
	}

	const seq = 1
	// nlmsghdr (16 bytes) then nfgenmsg: family, version, res_id (be16).
	msg := make([]byte, unix.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.NFNL_SUBSYS_CTNETLINK<<8|ipctnlMsgCtDelete)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	msg[unix.NLMSG_HDRLEN] = family
	msg[unix.NLMSG_HDRLEN+1] = unix.NFNETLINK_V0
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("conntrack flush: send: %w", err)
	}

	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("conntrack flush: no answer from the kernel: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("conntrack flush: malformed answer: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return errors.New("conntrack flush: truncated netlink ack")
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return fmt.Errorf("conntrack flush: %w", unix.Errno(-code))
			}
			return nil
		}
	}
}
