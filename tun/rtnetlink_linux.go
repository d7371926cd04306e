package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// nlConn is a NETLINK_ROUTE socket for request/acknowledge exchanges with the kernel. The
// socket stays bound to the network namespace it was opened in, so a Kernel opened in one
// namespace can be closed from any thread.
type nlConn struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte
}

// nlTimeout bounds every wait for the kernel's answer; it answers at once or never.
const nlTimeout = 5 * time.Second

// nlmsgerr payload: int32 error + the original nlmsghdr (16 bytes; NETLINK_CAP_ACK drops
// the echoed payload), then extended-ack attributes.
const nlmsgerrLen = 4 + unix.SizeofNlMsghdr

func openNetlink() (*nlConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("tun: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: netlink bind: %w", err)
	}
	// Both are best effort: older kernels lack them and errors then carry only an errno.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	tv := unix.NsecToTimeval(nlTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: netlink SO_RCVTIMEO: %w", err)
	}
	return &nlConn{fd: fd, seq: uint32(time.Now().UnixNano()), buf: make([]byte, 1<<16)}, nil
}

func (c *nlConn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

// nlError is a negative acknowledgement from the kernel.
type nlError struct {
	errno unix.Errno
	msg   string // extended ack text, if the kernel sent one
}

func (e *nlError) Error() string {
	if e.msg != "" {
		return e.errno.Error() + " (" + e.msg + ")"
	}
	return e.errno.Error()
}

func (e *nlError) Unwrap() error { return e.errno }

// request sends one message with NLM_F_ACK and waits for the kernel's acknowledgement.
func (c *nlConn) request(typ, flags uint16, payload []byte) error {
	return c.exchange(typ, flags|unix.NLM_F_ACK, payload, nil)
}

// dump sends a NLM_F_DUMP request and hands every answer's payload to fn.
func (c *nlConn) dump(typ uint16, payload []byte, fn func(typ uint16, body []byte)) error {
	return c.exchange(typ, unix.NLM_F_DUMP, payload, fn)
}

func (c *nlConn) exchange(typ, flags uint16, payload []byte, fn func(uint16, []byte)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return errors.New("netlink socket closed")
	}
	c.seq++
	seq := c.seq
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(payload))
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(unix.SizeofNlMsghdr+len(payload)))
	ne.PutUint16(msg[4:], typ)
	ne.PutUint16(msg[6:], flags|unix.NLM_F_REQUEST)
	ne.PutUint32(msg[8:], seq)
	msg = append(msg, payload...)
	if err := unix.Sendto(c.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	for {
		n, from, err := unix.Recvfrom(c.fd, c.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN || err == unix.EWOULDBLOCK {
			return fmt.Errorf("netlink: no answer from the kernel within %v", nlTimeout)
		}
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not from the kernel
		}
		done, err := parseAnswers(c.buf[:n], seq, fn)
		if done || err != nil {
			return err
		}
	}
}

// parseAnswers walks the netlink messages in b. It reports done once the answer to seq is
// complete (an ACK, an error, or NLMSG_DONE ending a dump).
func parseAnswers(b []byte, seq uint32, fn func(uint16, []byte)) (done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(ne.Uint32(b[0:]))
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return true, errors.New("netlink: malformed message from the kernel")
		}
		typ, flags, mseq := ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:])
		body := b[unix.SizeofNlMsghdr:l]
		b = b[min(nlAlign(l), len(b)):]
		if mseq != seq {
			continue // stale answer to an earlier, abandoned request
		}
		switch typ {
		case unix.NLMSG_DONE:
			// A dump that failed part way carries the (negative) errno here.
			if len(body) >= 4 {
				if code := int32(ne.Uint32(body)); code < 0 {
					return true, &nlError{errno: unix.Errno(-code)}
				}
			}
			return true, nil
		case unix.NLMSG_ERROR:
			if len(body) < 4 {
				return true, errors.New("netlink: short error message from the kernel")
			}
			code := int32(ne.Uint32(body))
			if code == 0 {
				return true, nil
			}
			e := &nlError{errno: unix.Errno(-code)}
			if flags&unix.NLM_F_ACK_TLVS != 0 && len(body) >= nlmsgerrLen {
				e.msg = extAckMsg(body[nlmsgerrLen:])
			}
			return true, e
		default:
			if fn != nil {
				fn(typ, body)
			}
			if flags&unix.NLM_F_MULTI == 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

// extAckMsg returns the NLMSGERR_ATTR_MSG text of an extended acknowledgement.
func extAckMsg(attrs []byte) string {
	var msg string
	walkAttrs(attrs, func(typ uint16, v []byte) {
		if typ == unix.NLMSGERR_ATTR_MSG {
			msg = unix.ByteSliceToString(v)
		}
	})
	return msg
}

// walkAttrs calls fn for every well-formed rtattr in b.
func walkAttrs(b []byte, fn func(typ uint16, val []byte)) {
	ne := binary.NativeEndian
	for len(b) >= 4 {
		l := int(ne.Uint16(b[0:]))
		if l < 4 || l > len(b) {
			return
		}
		fn(ne.Uint16(b[2:])&^unix.NLA_F_NESTED, b[4:l])
		b = b[min(nlAlign(l), len(b)):]
	}
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

// attrs builds a netlink message body: a fixed header followed by rtattrs.
type attrs struct{ b []byte }

func (a *attrs) raw(b []byte) { a.b = append(a.b, b...) }

func (a *attrs) add(typ uint16, val []byte) {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(4+len(val)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	a.b = append(a.b, h[:]...)
	a.b = append(a.b, val...)
	for len(a.b)%4 != 0 {
		a.b = append(a.b, 0)
	}
}

func (a *attrs) u32(typ uint16, v uint32) {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	a.add(typ, b[:])
}

// isGone reports errors meaning "the object to delete no longer exists".
func isGone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) ||
		errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EADDRNOTAVAIL) ||
		errors.Is(err, os.ErrClosed)
}
