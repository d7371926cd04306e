//go:build !unix

package control

import "os"

func fileOwner(fi os.FileInfo) (int, bool) { return -1, false }

func chown(path string, uid int) error { return nil }
