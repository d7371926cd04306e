// Package udpbatch holds the socket tricks that make UDP-encapsulated ESP
// cheap on Linux: large socket buffers, UDP segmentation offload on send
// (UDP_SEGMENT: one sendmsg carries up to MaxSegments equal-sized
// datagrams, split by the kernel, so the peer sees ordinary datagrams) and
// generic receive offload (UDP_GRO: one recvmsg returns several datagrams
// of one flow glued together, which the caller takes apart again at the
// segment size SegmentSize reports). Elsewhere
// every function reports the feature as unavailable and callers send and
// receive one datagram per message.
package udpbatch

import "errors"

// MaxSegments is the most datagrams one UDP_SEGMENT send may carry (the
// kernel's UDP_MAX_SEGMENTS) and one UDP_GRO read may return.
const MaxSegments = 64

// MaxGSOBytes bounds the payload of one segmented send: the UDP length
// field of the unsplit datagram, less IPv6 and UDP headers.
const MaxGSOBytes = 65535 - 40 - 8

// SocketBuffer is the send and receive buffer size asked for: wireguard-go
// uses the same, enough to absorb a burst of a full TUN batch at 10 Gbit/s.
const SocketBuffer = 7 << 20

// ErrNoControl is returned by PutSegment when the control buffer is too
// small for the UDP_SEGMENT message.
var ErrNoControl = errors.New("udpbatch: control buffer too small for UDP_SEGMENT")
