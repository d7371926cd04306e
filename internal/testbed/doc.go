// Package testbed is the integration-test harness for qcdvpn: Linux network
// namespaces joined by veth pairs, a small test PKI, and strongSwan's charon
// (with kernel-libipsec, i.e. userspace ESP over a TUN device) running inside
// a namespace and configured through swanctl.
//
// Everything a test creates is named with a random suffix, lives inside
// namespaces the test created, and is removed by t.Cleanup even when the test
// fails, so tests may run in parallel. Tests must start with RequireRoot (or
// RequireStrongSwan), which skips loudly when the host cannot run them.
//
// Namespaces need Linux: on other systems the package builds, RequireRoot
// skips, and the constructors fail the test with ErrNotLinux.
package testbed

import "errors"

// ErrNotLinux is reported by the constructors on systems without network
// namespaces.
var ErrNotLinux = errors.New("testbed: network namespaces need Linux")

// skipPrefix starts every skip message so that skipped integration tests are
// easy to spot in CI logs.
const skipPrefix = "SKIP: needs root and network namespaces (CI runs as root): "

// CharonPath is where Debian's strongswan-charon package installs charon.
const CharonPath = "/usr/lib/ipsec/charon"
