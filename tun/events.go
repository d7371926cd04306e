package tun

import wgtun "golang.zx2c4.com/wireguard/tun"

// eventBuffer is how many device events are kept for a consumer that is slow or absent.
const eventBuffer = 16

// drainEvents wraps a wireguard-go device whose monitor goroutines block on an unread
// Events channel (and then never exit, even after Close). The wrapper forwards events to a
// channel of its own, dropping those nobody collects, so that callers may ignore Events.
func drainEvents(dev Device) Device {
	in := dev.Events()
	if in == nil {
		return dev
	}
	out := make(chan wgtun.Event, eventBuffer)
	go func() {
		defer close(out)
		for ev := range in { // ends when the device closes its channel on Close
			select {
			case out <- ev:
			default: // nobody is listening: drop
			}
		}
	}()
	return &eventDevice{Device: dev, events: out}
}

// eventDevice is a Device whose Events come through drainEvents.
type eventDevice struct {
	Device
	events chan wgtun.Event
}

// Events returns the device's up/down/MTU events; unread events beyond a small buffer are
// dropped.
func (d *eventDevice) Events() <-chan wgtun.Event { return d.events }
