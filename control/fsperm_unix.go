//go:build unix

package control

import (
	"fmt"
	"os"
	"syscall"
)

// fileOwner returns the uid owning fi.
func fileOwner(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, false
	}
	return int(st.Uid), true
}

// chown gives path to uid (group unchanged).
func chown(path string, uid int) error {
	if err := os.Lchown(path, uid, -1); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}
