// Package mobile is the gomobile-bindable face of the qcdvpn SDK, for
// Android (an AAR from `gomobile bind -target=android`) and iOS (an
// xcframework from `gomobile bind -target=ios`). It holds only types that
// gomobile can bind: strings, byte slices, int32, bool, one interface the
// app implements (Platform) and one object (Tunnel).
//
// The app's side of a tunnel is small:
//
//   - Android: in a VpnService, configure and establish() the interface
//     (addresses, routes, DNS), detach its file descriptor and pass it to
//     NewTunnel; Platform.Protect calls VpnService.protect so that the
//     SDK's UDP socket to the gateway bypasses the tunnel.
//   - iOS: in an NEPacketTunnelProvider, apply the tunnel network settings,
//     find the utun file descriptor and pass it to NewTunnel;
//     Platform.Protect has nothing to do there and returns true.
//
// A tunFD of -1 runs the tunnel over an in-process network stack instead
// of a TUN (tests, and the host-JVM binding test of scripts/mobile-test.sh).
//
// Start connects to the first gateway of the profile that answers and
// returns; from then on the tunnel keeps itself up — rekeys, liveness
// checks, QCD-driven failover, resumption — until Stop. Everything that
// happens reaches Platform.OnEvent as one JSON object, the same one
// `qcdvpn up --events json` prints (types connecting, connected,
// connect_failed, qcd_verified, qcd_rejected, liveness_failed, failover,
// roamed, resumed, rekeyed, disconnected, stats); StatusJSON is a snapshot
// for the app's UI. Call NetworkChanged when the device's network changes
// (Android ConnectivityManager callbacks, iOS NWPathMonitor): with MOBIKE
// the SA moves to the new address at once (roamed), otherwise the tunnel
// checks at once that the gateway still answers, instead of waiting for
// traffic to go unanswered.
//
// Tickets and QCD tokens persist, sealed with Platform.StoreKey, under
// Platform.StateDir, so a tunnel the OS restarts resumes with one round
// trip. Secrets never reach Platform.Log.
//
// Memory: iOS gives a packet tunnel extension 50 MiB in all. NewTunnel
// sets the Go runtime's soft memory limit to MemoryLimit unless one is
// already set (GOMEMLIMIT or debug.SetMemoryLimit); the tunnel's live heap
// stays within a few MiB (see TestHeapBudget; `make bench` prints the
// live heap and RSS of an idle and a loaded tunnel).
//
// Battery: nothing polls. An idle connected tunnel wakes only for its
// NAT keepalive (timers.keepalive; DefaultKeepalive, 45 s, when the
// profile sets none) and its liveness check (timers.liveness, 30 s by
// default); the first outbound packet after a quiet spell wakes the IKE
// session instead of a timer (see TestIdleWakeups). Rekey times and
// ticket expiry are wall-clock time, so the time the device spends
// asleep counts: an overdue rekey runs on the first wake-up after it.
package mobile
