package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// upPrinter returns the OnEvent func of `up` for an --events value: json,
// one JSON object per line on stdout; text, human lines on stderr; auto,
// human lines on stdout if it is a terminal, else on stderr (so that a
// script's stdout stays clean).
func upPrinter(events string, stdout, stderr io.Writer) func(sdk.Event) {
	if events == "auto" {
		events = "text"
		if isTerminal(stdout) {
			return linePrinter(stdout, humanEvent)
		}
	}
	return eventPrinter(events, stdout, stderr, humanEvent)
}

func linePrinter(w io.Writer, human func(sdk.Event) string) func(sdk.Event) {
	var mu sync.Mutex
	return func(e sdk.Event) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(w, human(e))
	}
}

// humanEvent is one line of progress for people.
func humanEvent(e sdk.Event) string {
	switch e.Type {
	case sdk.EventConnecting:
		return fmt.Sprintf("connecting to %s…", e.Gateway)
	case sdk.EventConnected:
		s := fmt.Sprintf("connected to %s as %s in %d ms", e.Gateway, e.VirtualIP, e.Elapsed.Milliseconds())
		if e.Resumed {
			return s + " (resumed)"
		}
		return s + fmt.Sprintf(" (%s, %s)", e.IKESuite, e.ESPSuite)
	case sdk.EventConnectFailed:
		return fmt.Sprintf("%s failed: %s", e.Gateway, e.Error)
	case sdk.EventDisconnected:
		return fmt.Sprintf("disconnected from %s: %s", e.Gateway, e.Reason)
	case sdk.EventQCDVerified:
		return fmt.Sprintf("QCD verified: %s restarted and lost the SA (token from %s)", e.Gateway, e.Source)
	case sdk.EventQCDRejected:
		return fmt.Sprintf("QCD token from %s rejected: %s", e.Source, e.Reason)
	case sdk.EventLivenessFailed:
		return fmt.Sprintf("%s stopped answering: %s", e.Gateway, e.Reason)
	case sdk.EventFailover:
		return fmt.Sprintf("failover %s → %s (%s)", e.From, e.To, e.Reason)
	case sdk.EventResumed:
		return fmt.Sprintf("resumed the session on %s with a ticket", e.Gateway)
	case sdk.EventRekeyed:
		if e.Reason == "ike" {
			return fmt.Sprintf("rekeyed the IKE SA with %s", e.Gateway)
		}
		return fmt.Sprintf("rekeyed the child SA with %s (%s)", e.Gateway, e.ESPSuite)
	case sdk.EventStats:
		if e.Stats == nil {
			break
		}
		st := e.Stats
		return fmt.Sprintf("traffic: %d packets in (%s), %d out (%s), %d dropped", st.PacketsIn, bytesHuman(st.BytesIn),
			st.PacketsOut, bytesHuman(st.BytesOut), drops(*st))
	}
	b, _ := json.Marshal(e)
	return string(b)
}

func drops(st sdk.Stats) uint64 {
	return st.DropAuth + st.DropReplay + st.DropMalformed + st.DropSelector + st.DropNoSA +
		st.DropOutSelector + st.DropOutNoSA + st.DropOutLimit
}

func bytesHuman(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
