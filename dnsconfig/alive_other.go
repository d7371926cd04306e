//go:build !unix

package dnsconfig

// alive cannot tell elsewhere; the record is then taken as left over.
func alive(pid int) bool { return false }
