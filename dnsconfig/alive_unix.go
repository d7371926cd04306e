//go:build unix

package dnsconfig

import (
	"errors"
	"os"
	"strconv"
	"syscall"
)

// alive reports whether pid is a running process other than us.
func alive(pid int) bool {
	if pid <= 0 || pid == os.Getpid() {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	// A zombie (killed, not yet reaped) is not running.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err == nil {
		for i := len(b) - 1; i > 0; i-- {
			if b[i] == ')' && i+2 < len(b) {
				return b[i+2] != 'Z' && b[i+2] != 'X'
			}
		}
	}
	return true
}
