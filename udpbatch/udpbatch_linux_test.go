package udpbatch

import (
	"net"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// groControl builds the control message a UDP_GRO read carries.
func groControl(seg uint16) []byte {
	b := make([]byte, ControlSpace)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_GRO
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = seg
	return b
}

func TestSegmentControl(t *testing.T) {
	if got := SegmentSize(groControl(1452)); got != 1452 {
		t.Errorf("SegmentSize(GRO 1452) = %d", got)
	}
	oob, err := PutSegment(make([]byte, 0, ControlSpace), 1400)
	if err != nil {
		t.Fatal(err)
	}
	h, data, _, err := unix.ParseOneSocketControlMessage(oob)
	if err != nil || h.Level != unix.SOL_UDP || h.Type != unix.UDP_SEGMENT || *(*uint16)(unsafe.Pointer(&data[0])) != 1400 {
		t.Errorf("PutSegment wrote %+v %x (%v)", h, data, err)
	}
	if SegmentSize(oob) != 0 {
		t.Error("a UDP_SEGMENT message read as a GRO size")
	}
	if _, err := PutSegment(make([]byte, 0, 4), 1400); err != ErrNoControl {
		t.Errorf("PutSegment into 4 bytes: %v", err)
	}
	if SegmentSize(nil) != 0 || SegmentSize([]byte{1, 2, 3}) != 0 {
		t.Error("garbage read as a GRO size")
	}
}

// TestTune: on a loopback socket, root gets its buffers and GRO is on.
func TestTune(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	gro, gso := Tune(c)
	t.Logf("gro %v gso %v", gro, gso)
	rc, _ := c.SyscallConn()
	var rcv int
	_ = rc.Control(func(fd uintptr) { rcv, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	if unix.Geteuid() == 0 && rcv < SocketBuffer {
		t.Errorf("SO_RCVBUF %d after Tune as root, want >= %d", rcv, SocketBuffer)
	}
}

// FuzzSegmentSize: any control buffer gives a size or 0, never a panic.
func FuzzSegmentSize(f *testing.F) {
	f.Add(groControl(1400))
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n := SegmentSize(b); n < 0 || n > 65535 {
			t.Fatalf("size %d", n)
		}
	})
}
