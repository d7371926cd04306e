//go:build linux

package mobile

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openTUN opens a new Linux TUN interface and returns its descriptor, as
// a VpnService's establish() would; skips without the privilege.
func openTUN(t *testing.T) int {
	t.Helper()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no /dev/net/tun: %v", err)
	}
	ifr, err := unix.NewIfreq("qcdm%d")
	if err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		t.Skipf("cannot create a TUN (needs CAP_NET_ADMIN): %v", err)
	}
	return fd
}

// TestTunnelFromFD runs a tunnel over a TUN descriptor (the Android and
// iOS path) and checks that Stop closes the descriptor it was given.
func TestTunnelFromFD(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a TUN")
	}
	fd := openTUN(t)
	gw := startGateway(t)
	p := newFakePlatform(t)
	tn, err := NewTunnel(profileJSON(t, gw), int32(fd), p)
	if err != nil {
		t.Fatalf("NewTunnel(fd %d): %v", fd, err)
	}
	defer tn.Stop()
	if err := tn.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	p.waitEvent(t, "connected", 5*time.Second)
	if st := statusOf(t, tn); st["state"] != StateConnected {
		t.Fatalf("status = %v", st)
	}
	tn.Stop()
	p.waitEvent(t, "disconnected", 5*time.Second)
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
		// The number may have been reused by now; only a TUN under it
		// would mean ours is still open.
		ifr, _ := unix.NewIfreq("")
		if unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr) == nil && len(ifr.Name()) > 4 && ifr.Name()[:4] == "qcdm" {
			t.Errorf("descriptor %d (%s) still open after Stop", fd, ifr.Name())
		}
	}
}

// TestNewTunnelClosesFDOnError: a profile error still closes the
// descriptor NewTunnel was given.
func TestNewTunnelClosesFDOnError(t *testing.T) {
	fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTunnel(`{"bogus":1}`, int32(fd), newFakePlatform(t)); err == nil {
		t.Fatal("NewTunnel accepted a bad profile")
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
		t.Errorf("descriptor %d still open after NewTunnel failed", fd)
	}
}

// TestTunnelAttachLater is the Android flow: connect first, then attach
// the TUN built with the assigned address; a second descriptor (after a
// reconnect) replaces the first, which is closed.
func TestTunnelAttachLater(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a TUN")
	}
	gw := startGateway(t)
	p := newFakePlatform(t)
	tn, err := NewTunnel(profileJSON(t, gw), TUNLater, p)
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()
	if err := tn.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	p.waitEvent(t, "connected", 5*time.Second)
	fd1 := openTUN(t)
	if err := tn.AttachTUN(int32(fd1)); err != nil {
		t.Fatalf("AttachTUN: %v", err)
	}
	name1 := tunName(fd1)
	fd2 := openTUN(t)
	if err := tn.AttachTUN(int32(fd2)); err != nil {
		t.Fatalf("second AttachTUN: %v", err)
	}
	if name1 != "" && tunName(fd1) == name1 {
		t.Errorf("the replaced descriptor %d (%s) is still open", fd1, name1)
	}
	if st := statusOf(t, tn); st["state"] != StateConnected {
		t.Errorf("status = %v", st)
	}
	tn.Stop()
	if n := tunName(fd2); n != "" && n[:4] == "qcdm" {
		t.Errorf("descriptor %d (%s) still open after Stop", fd2, n)
	}
	if err := tn.AttachTUN(int32(openTUN(t))); err == nil {
		t.Error("AttachTUN after Stop succeeded")
	}
	// Without TUNLater, AttachTUN is refused (and closes what it got).
	other, err := NewTunnel(profileJSON(t, gw), TUNNetstack, p)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Stop()
	if err := other.AttachTUN(int32(openTUN(t))); err == nil {
		t.Error("AttachTUN on a netstack tunnel succeeded")
	}
}

// tunName is the TUN interface behind fd, "" if fd is none.
func tunName(fd int) string {
	ifr, err := unix.NewIfreq("")
	if err != nil || unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr) != nil {
		return ""
	}
	return ifr.Name()
}
