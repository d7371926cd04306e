// Package interop holds the integration tests that run qcdvpn against
// strongSwan in network namespaces. It has no non-test code but this
// comment; the tests need root and skip loudly without it.
package interop
