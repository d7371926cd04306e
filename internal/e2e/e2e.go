// Package e2e holds qcdvpn's end-to-end tests of recovery: QCD tokens
// (RFC 6290) from a restarted gateway, resumption tickets (RFC 5723) on a
// backup gateway and across client restarts, and what each costs the
// gateway. Everything runs on loopback: gateways (gateway.New, data
// "netstack") on random 127.X.Y.Z:4500 addresses, clients from package sdk
// with the netstack data plane. A gateway crash is Gateway.Crash in
// process; a client "killed" without Close, the gateway measured for CPU
// and the flood senders run in child processes (the test binary re-run
// with QCDVPN_E2E_CHILD set).
//
// The tests build and parse the IKE messages they forge or check by hand,
// and compute QCD tokens from the gateway's secret file themselves, so
// that they do not trust the code they test.
//
// Run: go test -race -count=1 ./internal/e2e/ (benchmarks: -bench . -run '^$').
// Environment knobs:
//
//	QCDVPN_E2E_LOG=debug        log level of gateways and clients (stderr)
//	QCDVPN_E2E_FLOOD_RATE=5000  messages/s of TestQCDFlood (default 22000)
//	QCDVPN_E2E_GATEWAY_BIN=/tmp/q  measure the CPU of that qcdvpn binary's
//	                            gateway (a release build) instead of this
//	                            test binary re-run
package e2e
