package sdk

// NetworkChanged tells the client that the device's network changed
// (Wi-Fi to cellular, a new address, waking from sleep). It sends a NAT
// keepalive from the socket at once, so that a new NAT mapping exists
// before the gateway next sends. With MOBIKE (RFC 4555, when profile and
// gateway both have it) it then moves the IKE SA to the new path: an
// UPDATE_SA_ADDRESSES from the address the OS now picks, keeping SPIs and
// keys, reported as a roamed event; if the new path does not answer
// within a few seconds, Wait reconnects as after any failure. Without
// MOBIKE it starts a fast liveness check (timers.fast_liveness), so that
// a path that no longer works is noticed in seconds and Wait fails over.
// Call it from the platform's connectivity callbacks (Android
// ConnectivityManager.NetworkCallback, iOS NWPathMonitor); on Linux the
// client also watches addresses and routes itself. It never blocks and
// does nothing while no IKE SA is up.
func (c *Client) NetworkChanged() {
	s := c.Session()
	if s == nil {
		return
	}
	_ = s.Transport().SendKeepalive(s.Remote())
	c.pathChanged(true)
}

// Wakeups counts the timer wake-ups of a client, to check that an idle
// tunnel lets the device sleep: it should wake about once per
// timers.keepalive plus once per timers.liveness, and nothing polls.
// Packets, requests and answers from the network are not counted.
type Wakeups struct {
	// Keepalives is how often the NAT keepalive timer fired since
	// NewClient (a keepalive is sent each time an IKE SA is up).
	Keepalives uint64
	// Session is how often the current IKE session's timer fired since
	// it was established: liveness checks, rekeys, and twice per
	// timers.fast_liveness while traffic flows (an idle tunnel's next
	// outbound packet wakes it, not a timer).
	Session uint64
}

// Wakeups returns the client's timer wake-up counts.
func (c *Client) Wakeups() Wakeups {
	w := Wakeups{Keepalives: c.keepalives.Load()}
	if s := c.Session(); s != nil {
		w.Session = s.Wakeups()
	}
	return w
}
