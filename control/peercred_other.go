//go:build !linux && !darwin

package control

import (
	"errors"
	"net"
)

// peerUID fails where the OS gives no peer credentials: the server then
// refuses every connection rather than trust file permissions alone.
func peerUID(conn *net.UnixConn) (int, error) {
	return -1, errors.New("peer credentials are not available on this OS")
}
