//go:build !linux

package udpbatch

import "net"

// ControlSpace is 0: no offload control messages off Linux.
var ControlSpace = 0

// Tune does nothing off Linux: no GRO, no GSO.
func Tune(c *net.UDPConn) (gro, gso bool) { return false, false }

// PutSegment always fails off Linux.
func PutSegment(oob []byte, seg uint16) ([]byte, error) { return oob[:0], ErrNoControl }

// SegmentSize is always 0 off Linux.
func SegmentSize(oob []byte) int { return 0 }

// DisableGSO is false: GSO is never on.
func DisableGSO(err error) bool { return false }
