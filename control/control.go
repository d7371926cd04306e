// Package control is the local control channel of a running qcdvpn
// engine: `qcdvpn up` (or the desktop app) serves it on a Unix stream
// socket, and `qcdvpn status`, `qcdvpn down` and the desktop app use it to
// read the state, follow the events and connect or disconnect.
//
// The protocol is newline-delimited JSON. A client sends one request per
// line, {"cmd":"status"|"connect"|"disconnect"|"down"|"events"} with an
// optional "profile" object for connect, and gets one reply line,
// {"ok":true,...} or {"ok":false,"error":"one line"}. After a successful
// "events" reply the connection carries one sdk.Event JSON object per line
// (the same JSON `qcdvpn up --events json` prints) until either side
// closes it.
//
// The socket is owner-only: its directory is 0700 and the socket 0600,
// and every connection's peer credentials (SO_PEERCRED on Linux,
// LOCAL_PEERCRED on Darwin) are checked against root, the server's own
// user and ServerOptions.AllowUIDs. Where the OS gives no peer
// credentials every connection is refused.
package control

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// SystemPath is where `qcdvpn up` serves when run as root.
const SystemPath = "/run/qcdvpn/control.sock"

// DefaultPath is where `qcdvpn up` serves and the clients look by
// default: $QCDVPN_CONTROL if set; for root /run/qcdvpn/control.sock;
// else $XDG_RUNTIME_DIR/qcdvpn/control.sock; else
// os.TempDir()/qcdvpn-<uid>/control.sock.
func DefaultPath() string {
	if p := os.Getenv("QCDVPN_CONTROL"); p != "" {
		return p
	}
	if runtime.GOOS != "windows" && os.Geteuid() == 0 {
		return SystemPath
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "qcdvpn", "control.sock")
	}
	name := "qcdvpn"
	if uid := os.Getuid(); uid >= 0 {
		name += "-" + strconv.Itoa(uid)
	}
	return filepath.Join(os.TempDir(), name, "control.sock")
}

// States of Status.State.
const (
	StateIdle         = "idle"         // no profile yet (up --service before a connect)
	StateConnecting   = "connecting"   // first connect in progress
	StateConnected    = "connected"    // the tunnel is up
	StateReconnecting = "reconnecting" // the SA ended; failing over or retrying
	StateDisconnected = "disconnected" // down by request or after an error
)

// GatewayStatus is one gateway of the profile, in the profile's order.
type GatewayStatus struct {
	// Address is the gateway as the profile names it (host or host:port).
	Address string `json:"address"`
	// Active marks the gateway in use (or being tried).
	Active bool `json:"active"`
}

// Status is a snapshot of the engine: what `qcdvpn status --json` prints
// and what the desktop app shows.
type Status struct {
	// State is one of the State* constants.
	State string `json:"state"`
	// Profile is the profile's name.
	Profile string `json:"profile,omitempty"`
	// Gateway is the address of the gateway in use or being tried.
	Gateway string `json:"gateway,omitempty"`
	// Gateways lists the profile's gateways, the active one marked.
	Gateways []GatewayStatus `json:"gateways,omitempty"`
	// VirtualIP and DNS are what the gateway assigned.
	VirtualIP string   `json:"virtual_ip,omitempty"`
	DNS       []string `json:"dns,omitempty"`
	// ConnectedSince is when the current SA came up.
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	// IKESuite and ESPSuite name the negotiated algorithms.
	IKESuite string `json:"ike_suite,omitempty"`
	ESPSuite string `json:"esp_suite,omitempty"`
	// Resumed is true when the current SA came from a resumption ticket.
	Resumed bool `json:"resumed"`
	// IKESPIi and IKESPIr identify the current IKE SA (hex).
	IKESPIi string `json:"ike_spi_i,omitempty"`
	IKESPIr string `json:"ike_spi_r,omitempty"`
	// QCD and Resumption are the profile's settings.
	QCD        bool `json:"qcd"`
	Resumption bool `json:"resumption"`
	// Stats are the data plane counters of the current tunnel.
	Stats sdk.Stats `json:"stats"`
	// LastError is the last failure, if any, on one line.
	LastError string `json:"last_error,omitempty"`
}

// Backend is what a Server exposes: `qcdvpn up` puts an Engine behind
// the socket; the desktop app may run one in-process.
type Backend interface {
	// Status returns the current state.
	Status() Status
	// Connect (re)connects with profileJSON, a profile document; nil or
	// empty reconnects with the current profile. It returns when the
	// tunnel is up or the attempt failed.
	Connect(ctx context.Context, profileJSON []byte) error
	// Disconnect takes the tunnel down; the service keeps running.
	Disconnect(ctx context.Context) error
	// Subscribe streams live events until cancel is called (or the
	// backend shuts down, which closes the channel).
	Subscribe() (events <-chan sdk.Event, cancel func())
	// Shutdown disconnects and ends the service (`qcdvpn down`).
	Shutdown()
}
