// Package echotraffic is the steady traffic of the demo and the recovery
// tests: numbered UDP datagrams sent at a fixed rate through a client's
// netstack to an echo service behind the gateway, with the time each
// answer came back, so outages and losses can be measured.
package echotraffic

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"
)

// Traffic is one running sender.
type Traffic struct {
	stack  func() *netstack.Net
	target netip.AddrPort

	mu     sync.Mutex
	sent   int
	answer map[uint32]time.Time
	done   chan struct{}
	exited chan struct{}
	once   sync.Once
}

// Start sends rate datagrams a second to target through the network stack
// stack returns; each tick counts as sent, also while there is no stack
// (the tunnel is down). A new stack (a new tunnel) gets a new socket.
func Start(stack func() *netstack.Net, target netip.AddrPort, rate int) *Traffic {
	t := &Traffic{stack: stack, target: target, answer: map[uint32]time.Time{},
		done: make(chan struct{}), exited: make(chan struct{})}
	go t.run(time.Second / time.Duration(rate))
	return t
}

func (t *Traffic) run(every time.Duration) {
	defer close(t.exited)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var conn net.Conn
	var cur *netstack.Net
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for seq := uint32(0); ; seq++ {
		select {
		case <-t.done:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		t.sent++
		t.mu.Unlock()
		n := t.stack()
		if n == nil {
			continue
		}
		if n != cur || conn == nil {
			if conn != nil {
				conn.Close()
			}
			uc, err := n.DialUDPAddrPort(netip.AddrPort{}, t.target)
			if err != nil {
				continue
			}
			conn, cur = uc, n
			go t.read(uc)
		}
		var b [8]byte
		binary.BigEndian.PutUint32(b[:], seq)
		_, _ = conn.Write(b[:])
	}
}

func (t *Traffic) read(c net.Conn) {
	buf := make([]byte, 64)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if n >= 4 {
			now := time.Now()
			seq := binary.BigEndian.Uint32(buf)
			t.mu.Lock()
			if _, dup := t.answer[seq]; !dup {
				t.answer[seq] = now
			}
			t.mu.Unlock()
		}
	}
}

// Stop ends the sender and waits (at most 5 s) until it has.
func (t *Traffic) Stop() {
	t.once.Do(func() { close(t.done) })
	select {
	case <-t.exited:
	case <-time.After(5 * time.Second):
	}
}

// Sent is how many datagrams were due so far.
func (t *Traffic) Sent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent
}

// Answered is how many distinct datagrams came back.
func (t *Traffic) Answered() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.answer)
}

// FirstAnsweredAfter is when the first answer after at arrived (zero:
// none yet).
func (t *Traffic) FirstAnsweredAfter(at time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var first time.Time
	for _, a := range t.answer {
		if a.After(at) && (first.IsZero() || a.Before(first)) {
			first = a
		}
	}
	return first
}
