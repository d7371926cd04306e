package tun

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netns is a throw-away network namespace; the calling goroutine's locked OS thread is
// switched into it so that the host's network is never touched.
type netns struct {
	name string
}

// enterNetns skips (loudly) unless the test can create namespaces, creates one and moves
// the test goroutine's thread into it until the test ends.
func enterNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create a network namespace and a TUN device")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIP: needs the iproute2 `ip` command to create and inspect the test namespace")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("SKIP: needs /dev/net/tun")
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	ns := &netns{name: "qcdtun-" + hex.EncodeToString(rnd[:])}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Skipf("SKIP: cannot create a network namespace (ip netns add): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns.name).Run() })

	nsf, err := os.Open("/run/netns/" + ns.name)
	if err != nil {
		t.Fatal(err)
	}
	defer nsf.Close()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net") // this (now locked) thread's namespace
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	if err := unix.Setns(int(nsf.Fd()), unix.CLONE_NEWNET); err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("setns: %v", err)
	}
	t.Cleanup(func() {
		// Only a thread back in its own namespace may return to the pool; otherwise it
		// stays locked and the runtime discards it when the test goroutine ends.
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	})
	return ns
}

// ip runs `ip netns exec NS ip ARGS...` and returns its output.
func (ns *netns) ip(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.name, "ip"}, args...)...).CombinedOutput()
	return string(out), err
}

func (ns *netns) mustIP(t *testing.T, args ...string) string {
	t.Helper()
	out, err := ns.ip(t, args...)
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// contains checks that every want appears in out.
func contains(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: missing %q in:\n%s", what, w, out)
		}
	}
}

func absent(t *testing.T, what, out string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(out, b) {
			t.Errorf("%s: still has %q in:\n%s", what, b, out)
		}
	}
}

func TestKernelCreateClose(t *testing.T) {
	ns := enterNetns(t)
	// An uplink with a default route in main, to check where lookups really go. A
	// persistent TUN serves, as the dummy driver is not always available.
	uplink := true
	if out, err := ns.ip(t, "tuntap", "add", "dev", "up0", "mode", "tun"); err != nil {
		uplink = false
		t.Logf("NOTE: no uplink device (%v: %s); skipping the route-lookup checks", err, out)
	} else {
		ns.mustIP(t, "addr", "add", "192.0.2.1/24", "dev", "up0")
		ns.mustIP(t, "link", "set", "up0", "up")
		ns.mustIP(t, "route", "add", "default", "via", "192.0.2.254")
	}

	cfg := Config{
		Name:      "qcdt%d",
		Addresses: pfx("10.100.3.1/32", "fd00:100::1/128"),
		MTU:       1380,
		Include:   pfx("10.200.0.0/24", "0.0.0.0/0", "::/0"),
		Exclude:   pfx("10.200.0.128/25", "198.51.100.0/24", "fd00:dead::/32"),
		Gateway:   netip.MustParseAddr("203.0.113.7"),
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k, err := Create(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			k.Close()
		}
	}()
	name, table, mark := k.Name(), k.Table(), k.FwMark()
	if !strings.HasPrefix(name, "qcdt") || table < BaseTable || mark != table {
		t.Fatalf("name %q table %d mark %d", name, table, mark)
	}
	tbl := fmt.Sprint(table)

	contains(t, "addr", ns.mustIP(t, "-d", "addr", "show", "dev", name),
		"mtu 1380", "state UNKNOWN", "tun type tun", "inet 10.100.3.1/32", "inet6 fd00:100::1/128")
	contains(t, "IPv4 table", ns.mustIP(t, "-4", "route", "show", "table", tbl),
		"default dev "+name, "10.200.0.0/24 dev "+name, "throw 10.200.0.128/25",
		"throw 198.51.100.0/24", "throw 203.0.113.7")
	contains(t, "IPv6 table", ns.mustIP(t, "-6", "route", "show", "table", tbl),
		"default dev "+name, "throw fd00:dead::/32")
	for _, fam := range []string{"-4", "-6"} {
		contains(t, "rules "+fam, ns.mustIP(t, fam, "rule", "show"),
			"32764:\tfrom all lookup main suppress_prefixlength 0",
			fmt.Sprintf("32765:\tnot from all fwmark %#x lookup %d", mark, table))
	}
	if uplink {
		for dst, want := range map[string]string{
			"8.8.8.8":                          "dev " + name,
			"10.200.0.5":                       "dev " + name,
			"10.200.0.200":                     "dev up0", // excluded
			"203.0.113.7":                      "dev up0", // the gateway
			"192.0.2.9":                        "dev up0", // on-link in main: suppress rule keeps it
			"8.8.8.8 mark " + fmt.Sprint(mark): "dev up0", // marked IKE/ESP socket
		} {
			contains(t, "route get "+dst, ns.mustIP(t, append([]string{"route", "get"}, strings.Fields(dst)...)...), want)
		}
	}
	contains(t, "route get 2001:db8::1", ns.mustIP(t, "route", "get", "2001:db8::1"), "dev "+name)

	// The fwmark reaches a socket (SetMark), in this namespace.
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err == nil {
		if err := SetMark(uc, mark); err != nil {
			t.Errorf("SetMark: %v", err)
		}
		rc, _ := uc.SyscallConn()
		var got int
		rc.Control(func(fd uintptr) { got, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) })
		if uint32(got) != mark {
			t.Errorf("SO_MARK = %#x, want %#x", got, mark)
		}
		uc.Close()
	}

	pingThroughTUN(t, k.Device())

	if err := k.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closed = true
	if err := k.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if out, err := ns.ip(t, "link", "show", "dev", name); err == nil {
		t.Errorf("interface %s still present:\n%s", name, out)
	}
	for _, fam := range []string{"-4", "-6"} {
		if out := ns.mustIP(t, fam, "route", "show", "table", tbl); strings.TrimSpace(out) != "" {
			t.Errorf("table %s %s not empty after Close:\n%s", tbl, fam, out)
		}
		absent(t, "rules "+fam+" after Close", ns.mustIP(t, fam, "rule", "show"), "suppress_prefixlength", "lookup "+tbl)
	}
	// The device's monitor goroutines must be gone even though nobody read its Events.
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutine leak: %d before, %d after\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// pingThroughTUN writes an ICMP echo request from a tunnel-side host to the virtual IP into
// the device and expects the kernel's echo reply to come back out through the tunnel.
func pingThroughTUN(t *testing.T, dev Device) {
	t.Helper()
	const off = 16 // room for the virtio header wireguard-go prepends
	id := uint16(0x5143)
	req := icmpEcho(netip.MustParseAddr("10.200.0.5"), netip.MustParseAddr("10.100.3.1"), id)
	buf := append(make([]byte, off), req...)
	if _, err := dev.Write([][]byte{buf}, off); err != nil {
		t.Fatalf("TUN write: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		n := max(dev.BatchSize(), 1)
		bufs, sizes := make([][]byte, n), make([]int, n)
		for i := range bufs {
			bufs[i] = make([]byte, off+65535)
		}
		for {
			c, err := dev.Read(bufs, sizes, off)
			if err != nil {
				got <- err
				return
			}
			for i := range c {
				p := bufs[i][off : off+sizes[i]]
				// IPv4, ICMP, from the virtual IP, echo reply (type 0) with our id.
				if len(p) >= 28 && p[0]>>4 == 4 && p[9] == 1 && netip.AddrFrom4([4]byte(p[12:16])) == netip.MustParseAddr("10.100.3.1") &&
					p[20] == 0 && binary.BigEndian.Uint16(p[24:]) == id {
					got <- nil
					return
				}
			}
		}
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("TUN read: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("no ICMP echo reply came out of the TUN")
	}
}

// icmpEcho builds an IPv4 ICMP echo request.
func icmpEcho(src, dst netip.Addr, id uint16) []byte {
	p := make([]byte, 20+8+16)
	p[0], p[8], p[9] = 0x45, 64, 1
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], inetChecksum(p[:20]))
	p[20] = 8 // echo request
	binary.BigEndian.PutUint16(p[24:], id)
	binary.BigEndian.PutUint16(p[26:], 1)
	copy(p[28:], "qcdvpn tun test!")
	binary.BigEndian.PutUint16(p[22:], inetChecksum(p[20:]))
	return p
}

func inetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// TestKernelCreateFailsCleanly makes the last set-up step fail (a conflicting rule already
// exists) and checks that everything done before it was undone.
func TestKernelCreateFailsCleanly(t *testing.T) {
	ns := enterNetns(t)
	ns.mustIP(t, "rule", "add", "pref", "101", "not", "fwmark", "51999", "table", "51999")
	_, err := Create(context.Background(), Config{
		Name:         "qcdfail0",
		Addresses:    pfx("10.100.3.1/32"),
		Include:      pfx("10.200.0.0/24"),
		Exclude:      pfx("10.200.0.128/25"),
		Table:        51999,
		FwMark:       51999,
		RulePriority: 100,
	}, nil)
	if err == nil || !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "not fwmark") {
		t.Fatalf("Create error = %v, want EEXIST on the fwmark rule", err)
	}
	t.Logf("expected failure: %v", err)
	if out, err := ns.ip(t, "link", "show", "dev", "qcdfail0"); err == nil {
		t.Errorf("interface left behind:\n%s", out)
	}
	if out := ns.mustIP(t, "route", "show", "table", "51999"); strings.TrimSpace(out) != "" {
		t.Errorf("routes left behind:\n%s", out)
	}
	rules := ns.mustIP(t, "rule", "show")
	absent(t, "rules", rules, "100:")
	contains(t, "rules", rules, "101:\tnot from all fwmark 0xcb1f lookup 51999") // not ours: kept
}

func TestCreateInvalidConfig(t *testing.T) {
	// Validation happens before anything is touched, so this needs no privileges.
	if _, err := Create(context.Background(), Config{}, nil); err == nil || !strings.Contains(err.Error(), "Config.Addresses") {
		t.Errorf("Create(empty) error = %v", err)
	}
}
