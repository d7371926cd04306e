package interop

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// pinger sends ICMP echo requests at a steady rate from a namespace and
// records which were answered, and when.
type pinger struct {
	conn    *icmp.PacketConn
	dst     *net.IPAddr
	id      int
	mu      sync.Mutex
	sentAt  map[int]time.Time
	replies map[int]time.Time
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startPinger(t *testing.T, ns *testbed.NS, dst netip.Addr, every time.Duration) *pinger {
	t.Helper()
	p := &pinger{dst: &net.IPAddr{IP: dst.AsSlice()}, id: rand.IntN(0xffff), sentAt: map[int]time.Time{},
		replies: map[int]time.Time{}, stop: make(chan struct{})}
	if err := ns.Do(func() error {
		var err error
		p.conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		t.Fatalf("pinger socket: %v", err)
	}
	p.wg.Add(2)
	go p.send(every)
	go p.receive()
	t.Cleanup(p.halt)
	return p
}

func (p *pinger) send(every time.Duration) {
	defer p.wg.Done()
	tk := time.NewTicker(every)
	defer tk.Stop()
	for seq := 1; ; seq++ {
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: seq & 0xffff, Data: []byte("qcdvpn-ping")}}
		b, _ := msg.Marshal(nil)
		p.mu.Lock()
		p.sentAt[seq] = time.Now()
		p.mu.Unlock()
		p.conn.WriteTo(b, p.dst)
		select {
		case <-p.stop:
			return
		case <-tk.C:
		}
	}
}

func (p *pinger) receive() {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := p.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || e.ID != p.id {
			continue
		}
		p.mu.Lock()
		if _, dup := p.replies[e.Seq]; !dup {
			p.replies[e.Seq] = time.Now()
		}
		p.mu.Unlock()
	}
}

// halt stops sending, waits a moment for late replies and closes.
func (p *pinger) halt() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	time.Sleep(500 * time.Millisecond)
	p.conn.Close()
	p.wg.Wait()
}

// counts returns how many requests were sent and answered.
func (p *pinger) counts() (sent, answered int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sentAt), len(p.replies)
}

// lost lists the unanswered sequence numbers sent before cutoff.
func (p *pinger) lost(cutoff time.Time) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for seq, at := range p.sentAt {
		if _, ok := p.replies[seq&0xffff]; !ok && at.Before(cutoff) {
			out = append(out, seq)
		}
	}
	return out
}

// firstAnsweredAfter is when the first request sent after t was answered.
func (p *pinger) firstAnsweredAfter(t time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best time.Time
	for seq, at := range p.replies {
		if sent, ok := p.sentAt[seq]; ok && sent.After(t) && (best.IsZero() || at.Before(best)) {
			best = at
		}
	}
	return best, !best.IsZero()
}
