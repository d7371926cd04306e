package desktop

import (
	"fmt"
	"strings"
	"time"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// Describe puts an event in the plain words the event log shows. The
// second result is false for events the log leaves out (stats, which
// the traffic graph shows instead).
func Describe(e sdk.Event) (string, bool) {
	gw := orUnknown(e.Gateway)
	switch e.Type {
	case sdk.EventConnecting:
		return "Connecting to " + gw + "…", true
	case sdk.EventConnected:
		s := "Connected to " + gw
		if e.VirtualIP != "" {
			s += " as " + e.VirtualIP
		}
		if e.Elapsed > 0 {
			s += " in " + millis(e.Elapsed)
		}
		if e.Resumed {
			s += " (session resumed from a ticket)"
		}
		return s, true
	case sdk.EventConnectFailed:
		return "Could not connect to " + gw + ": " + firstNonEmpty(e.Error, e.Reason, "no reason given"), true
	case sdk.EventDisconnected:
		return "Disconnected from " + gw + ": " + firstNonEmpty(e.Reason, e.Error, "no reason given"), true
	case sdk.EventQCDVerified:
		s := "Gateway " + gw + " lost our session (crash or restart): its QCD token"
		if e.Source != "" {
			s += " from " + e.Source
		}
		s += " was verified"
		if e.SinceInbound > 0 {
			s += fmt.Sprintf(", after %s of silence", millis(e.SinceInbound))
		}
		return s, true
	case sdk.EventQCDRejected:
		s := "Ignored a QCD token that did not match"
		if e.Source != "" {
			s += " (from " + e.Source + ")"
		}
		return s, true
	case sdk.EventLivenessFailed:
		return "Gateway " + gw + " stopped answering (liveness check failed)", true
	case sdk.EventFailover:
		s := "Failed over from " + orUnknown(e.From) + " to " + orUnknown(e.To)
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
		return s, true
	case sdk.EventResumed:
		s := "Resumed the session with " + gw + " from a ticket"
		if e.Elapsed > 0 {
			s += " in " + millis(e.Elapsed)
		}
		return s, true
	case sdk.EventRekeyed:
		switch e.Reason {
		case "ike":
			return "Renewed the IKE keys with " + gw, true
		case "child":
			s := "Renewed the traffic keys with " + gw
			if e.ESPSuite != "" {
				s += " (" + e.ESPSuite + ")"
			}
			return s, true
		}
		return "Renewed keys with " + gw, true
	case sdk.EventRoamed:
		s := "Moved the session to the new network (" + firstNonEmpty(e.From, "old address") + " → " + firstNonEmpty(e.To, "new address") + ")"
		if e.Elapsed > 0 {
			s += " in " + millis(e.Elapsed)
		}
		return s + "; same keys, no reconnect (MOBIKE)", true
	case sdk.EventHASynced:
		return "A standby gateway took over the session at " + gw + " (RFC 6311 sync); same keys, no reconnect", true
	case sdk.EventStats:
		return "", false
	}
	// A type this build does not know: show it rather than drop it.
	s := strings.ReplaceAll(string(e.Type), "_", " ")
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s, true
}

// millis writes d the way the CLI does: "42 ms", or seconds above 10 s.
func millis(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

// Uptime writes a duration as h:mm:ss.
func Uptime(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

// Rate writes bytes per second with a binary unit.
func Rate(bps float64) string {
	switch {
	case bps >= 1<<30:
		return fmt.Sprintf("%.1f GiB/s", bps/(1<<30))
	case bps >= 1<<20:
		return fmt.Sprintf("%.1f MiB/s", bps/(1<<20))
	case bps >= 1<<10:
		return fmt.Sprintf("%.1f KiB/s", bps/(1<<10))
	}
	return fmt.Sprintf("%.0f B/s", bps)
}

func orUnknown(s string) string { return firstNonEmpty(s, "the gateway") }

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
