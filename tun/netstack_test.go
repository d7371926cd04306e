package tun

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// link wires two Devices back to back like a cable: per direction one goroutine reads
// batches (at an offset, as the data plane does) into a queue and another writes them out.
// Reading and writing are decoupled because a netstack may answer synchronously from inside
// Write, which would deadlock a single read-then-write loop; a full queue drops packets,
// as a real link would.
type link struct {
	stop    chan struct{}
	writers sync.WaitGroup
	readers sync.WaitGroup
}

const pumpOffset = 32

func newLink(a, b Device) *link {
	l := &link{stop: make(chan struct{})}
	l.pump(a, b)
	l.pump(b, a)
	return l
}

func (l *link) pump(from, to Device) {
	q := make(chan []byte, 256)
	l.readers.Add(1)
	go func() {
		defer l.readers.Done()
		n := max(from.BatchSize(), 1)
		bufs, sizes := make([][]byte, n), make([]int, n)
		for i := range bufs {
			bufs[i] = make([]byte, pumpOffset+65535)
		}
		for {
			got, err := from.Read(bufs, sizes, pumpOffset)
			if err != nil {
				return
			}
			for i := range got {
				pkt := make([]byte, pumpOffset+sizes[i])
				copy(pkt[pumpOffset:], bufs[i][pumpOffset:pumpOffset+sizes[i]])
				select {
				case q <- pkt:
				default: // queue full: drop
				}
			}
		}
	}()
	l.writers.Add(1)
	go func() {
		defer l.writers.Done()
		for {
			select {
			case <-l.stop:
				return
			case pkt := <-q:
				batch := [][]byte{pkt}
				for len(batch) < 64 && len(q) > 0 {
					batch = append(batch, <-q)
				}
				if _, err := to.Write(batch, pumpOffset); err != nil {
					return
				}
			}
		}
	}()
}

// shutdown stops writing first, then closes the devices (which ends the readers): a netstack
// must not be written to once closed, and must be drained while it closes.
func (l *link) shutdown(devs ...Device) {
	close(l.stop)
	l.writers.Wait()
	for _, d := range devs {
		d.Close()
	}
	l.readers.Wait()
}

func TestNetstackTCPEcho(t *testing.T) {
	before := runtime.NumGoroutine()

	addrA, addrB := netip.MustParseAddr("10.100.3.1"), netip.MustParseAddr("10.200.0.1")
	devA, netA, err := CreateNetstack([]netip.Addr{addrA, netip.MustParseAddr("fd00::1")}, nil, 1400)
	if err != nil {
		t.Fatal(err)
	}
	devB, netB, err := CreateNetstack([]netip.Addr{addrB, netip.MustParseAddr("fd00::2")}, nil, 0)
	if err != nil {
		devA.Close()
		t.Fatal(err)
	}
	l := newLink(devA, devB)

	for _, dst := range []netip.AddrPort{
		netip.AddrPortFrom(addrB, 7),
		netip.MustParseAddrPort("[fd00::2]:7"),
	} {
		ln, err := netB.ListenTCPAddrPort(dst)
		if err != nil {
			t.Fatal(err)
		}
		srvDone := make(chan struct{})
		go func() { // echo server
			defer close(srvDone)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			io.Copy(c, c)
		}()

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := netA.DialContextTCPAddrPort(ctx, dst)
		cancel()
		if err != nil {
			t.Fatalf("dial %v: %v", dst, err)
		}
		if got := c.LocalAddr().String(); !strings.HasPrefix(got, "10.100.3.1:") && !strings.HasPrefix(got, "[fd00::1]:") {
			t.Errorf("local address %s", got)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := make([]byte, 256<<10) // many segments: exercises batching and flow control
		rand.Read(msg)
		werr := make(chan error, 1)
		go func() { _, err := c.Write(msg); werr <- err }()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("echo read via %v: %v", dst, err)
		}
		if err := <-werr; err != nil {
			t.Fatalf("echo write via %v: %v", dst, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("echo via %v: data differs", dst)
		}
		c.Close()
		ln.Close()
		<-srvDone
	}

	l.shutdown(devA, devB)
	if err := devA.Close(); err != nil { // second Close must be harmless
		t.Errorf("second Close: %v", err)
	}

	// Goroutine leak check: give the stacks' timers and workers a moment to wind down.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutine leak: %d before, %d after\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

func TestCreateNetstackErrors(t *testing.T) {
	v4 := netip.MustParseAddr("10.0.0.1")
	cases := []struct {
		name  string
		addrs []netip.Addr
		dns   []netip.Addr
		mtu   int
		want  string
	}{
		{"no addrs", nil, nil, 1400, "at least one"},
		{"zero addr", []netip.Addr{{}}, nil, 1400, "address 0"},
		{"unspecified", []netip.Addr{netip.IPv4Unspecified()}, nil, 1400, "unicast"},
		{"duplicate", []netip.Addr{v4, netip.MustParseAddr("::ffff:10.0.0.1")}, nil, 1400, "duplicate"},
		{"mtu", []netip.Addr{v4}, nil, 10, "MTU"},
		{"mtu v6", []netip.Addr{netip.MustParseAddr("fd00::1")}, nil, 1000, "IPv6"},
		{"dns", []netip.Addr{v4}, []netip.Addr{{}}, 1400, "DNS"},
	}
	for _, tc := range cases {
		dev, _, err := CreateNetstack(tc.addrs, tc.dns, tc.mtu)
		if err == nil {
			dev.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want mention of %q", tc.name, err, tc.want)
		}
	}
}
