//go:build !linux

package dnsconfig

func bindToDevice(link string) func(fd int) error { return nil }

// supported: the system DNS is changed on Linux only; elsewhere the app
// hands the servers and domains to the OS (NEDNSSettings, VpnService).
const supported = false
