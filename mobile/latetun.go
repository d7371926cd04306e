package mobile

import (
	"os"
	"sync"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/qcdvpn/qcdvpn/tun"
)

// lateTUN is the tunnel's device when the app hands its TUN over only
// after the gateway assigned the addresses (TUNLater, Tunnel.AttachTUN):
// Android's VpnService.Builder needs them before establish(). Until a
// descriptor is attached reads wait and writes are dropped, so nothing
// leaves outside the tunnel. A new descriptor replaces the old one, which
// is closed; a read blocked on the old one goes on with the new one.
type lateTUN struct {
	mtu    int
	mu     sync.Mutex
	dev    tun.Device
	ready  chan struct{} // closed once a device is attached or on Close
	closed bool
	events chan wgtun.Event
}

func newLateTUN(mtu int) *lateTUN {
	return &lateTUN{mtu: mtu, ready: make(chan struct{}), events: make(chan wgtun.Event)}
}

// attach makes dev the device, closing the one it replaces.
func (l *lateTUN) attach(dev tun.Device) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		dev.Close()
		return os.ErrClosed
	}
	old := l.dev
	l.dev = dev
	if old == nil {
		close(l.ready)
	}
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// current is the attached device, nil while none is or after Close.
func (l *lateTUN) current() tun.Device {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	return l.dev
}

func (l *lateTUN) File() *os.File {
	if d := l.current(); d != nil {
		return d.File()
	}
	return nil
}

func (l *lateTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	<-l.ready
	for {
		d := l.current()
		if d == nil {
			return 0, os.ErrClosed
		}
		n, err := d.Read(bufs, sizes, offset)
		if err != nil && l.current() != d {
			continue // replaced (or closed) while reading
		}
		return n, err
	}
}

func (l *lateTUN) Write(bufs [][]byte, offset int) (int, error) {
	d := l.current()
	if d == nil {
		return len(bufs), nil // not attached yet: dropped
	}
	return d.Write(bufs, offset)
}

func (l *lateTUN) MTU() (int, error) {
	if d := l.current(); d != nil {
		return d.MTU()
	}
	return l.mtu, nil
}

func (l *lateTUN) Name() (string, error) {
	if d := l.current(); d != nil {
		return d.Name()
	}
	return "tun", nil
}

func (l *lateTUN) Events() <-chan wgtun.Event { return l.events }

func (l *lateTUN) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	d := l.dev
	if d == nil {
		close(l.ready)
	}
	l.mu.Unlock()
	if d != nil {
		return d.Close()
	}
	return nil
}

// BatchSize is 1: the descriptors of Android and iOS read one packet at a
// time, and the engine asks before any is attached.
func (l *lateTUN) BatchSize() int { return 1 }
