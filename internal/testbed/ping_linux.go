package testbed

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
)

// Ping sends ICMP echo requests to dst from inside the namespace (raw
// socket, so no ping binary is needed) until one is answered or ctx ends;
// without a deadline on ctx it gives up after 5 s.
func (n *NS) Ping(ctx context.Context, dst netip.Addr) error {
	if !dst.IsValid() {
		return errors.New("testbed: ping: invalid destination address")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	dst = dst.Unmap()
	network, reqType, replyType := "ip4:icmp", byte(8), byte(0)
	if dst.Is6() {
		network, reqType, replyType = "ip6:ipv6-icmp", 128, 129
	}
	c, err := n.ListenPacket(network, "")
	if err != nil {
		return fmt.Errorf("testbed: ping from %s: %w", n.Name, err)
	}
	defer c.Close()

	id := binary.BigEndian.Uint16(randomBytes(2))
	token := []byte("qcdvpn-testbed-" + randomHex(4))
	to := &net.IPAddr{IP: dst.AsSlice()}
	buf := make([]byte, 1500)
	for seq := uint16(1); ; seq++ {
		msg := echoRequest(reqType, id, seq, token, !dst.Is6())
		if _, err := c.WriteTo(msg, to); err != nil && ctx.Err() == nil {
			// Sending can fail briefly while routes appear; retry.
			time.Sleep(100 * time.Millisecond)
		}
		wait := time.Now().Add(300 * time.Millisecond)
		if d, _ := ctx.Deadline(); d.Before(wait) {
			wait = d
		}
		_ = c.SetReadDeadline(wait)
		for {
			m, _, err := c.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					return fmt.Errorf("testbed: ping %v from %s: %w", dst, n.Name, err)
				}
				break
			}
			// net.IPConn strips the IPv4 header; ICMPv6 comes without one.
			if m >= 8 && buf[0] == replyType && binary.BigEndian.Uint16(buf[4:6]) == id &&
				bytes.Equal(buf[8:m], token) {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("testbed: ping %v from %s: no reply: %w", dst, n.Name, ctx.Err())
		}
	}
}

// echoRequest builds an ICMP(v6) echo request. The IPv4 checksum is ours to
// fill in; Linux computes the ICMPv6 one for raw ICMPv6 sockets.
func echoRequest(typ byte, id, seq uint16, payload []byte, v4 bool) []byte {
	b := make([]byte, 8+len(payload))
	b[0] = typ
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], payload)
	if v4 {
		binary.BigEndian.PutUint16(b[2:], inetChecksum(b))
	}
	return b
}

// inetChecksum is the RFC 1071 Internet checksum.
func inetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
