package desktop

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/qcdvpn/qcdvpn/control"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// Engine modes: how the app reaches a tunnel engine.
const (
	// ModeAuto attaches if the control socket answers, else runs the
	// engine in-process if the app is privileged.
	ModeAuto = "auto"
	// ModeAttach only attaches to `qcdvpn up --service`.
	ModeAttach = "attach"
	// ModeInProcess only runs the engine in-process (root or CAP_NET_ADMIN).
	ModeInProcess = "inprocess"
)

// OpenOptions choose the backend.
type OpenOptions struct {
	// Mode is ModeAuto (default), ModeAttach or ModeInProcess.
	Mode string
	// Socket is the control socket (default control.DefaultPath()).
	Socket string
	// Engine configures an in-process engine.
	Engine control.EngineOptions
	// Privileged overrides the rights check (tests); nil asks the OS.
	Privileged func() bool
}

// Open returns the backend opts ask for and a short description of it
// for the Settings tab. Its error is the one-line message the window
// shows when there is no engine to drive.
func Open(ctx context.Context, opts OpenOptions) (Backend, string, error) {
	if opts.Socket == "" {
		opts.Socket = control.DefaultPath()
	}
	priv := opts.Privileged
	if priv == nil {
		priv = Privileged
	}
	inProcess := func() (Backend, string, error) {
		return &EngineBackend{B: control.NewEngine(opts.Engine)}, "in-process engine (" + dataPlaneName(opts.Engine.Options) + ")", nil
	}
	switch opts.Mode {
	case ModeAttach:
		b, err := Attach(ctx, opts.Socket)
		if err != nil {
			return nil, "", fmt.Errorf("%s; start it with: sudo qcdvpn up --service", oneLine(err))
		}
		return b, "attached to " + opts.Socket, nil
	case ModeInProcess:
		if !priv() {
			return nil, "", errors.New("the in-process engine needs root or CAP_NET_ADMIN; run the app with those rights, or start `sudo qcdvpn up --service` and attach")
		}
		return inProcess()
	case ModeAuto, "":
		b, err := Attach(ctx, opts.Socket)
		if err == nil {
			return b, "attached to " + opts.Socket, nil
		}
		if priv() {
			return inProcess()
		}
		return nil, "", fmt.Errorf("%s, and the app lacks the rights (root or CAP_NET_ADMIN) for an engine of its own; start one with: sudo qcdvpn up --service", oneLine(err))
	}
	return nil, "", fmt.Errorf("engine mode %q: want auto, attach or inprocess", opts.Mode)
}

func dataPlaneName(o sdk.Options) string {
	switch o.DataPlane {
	case sdk.DataPlaneNetstack:
		return "netstack"
	}
	if o.TUNName != "" {
		return "TUN " + o.TUNName
	}
	return "kernel TUN"
}

// ClientBackend is a Backend attached to a control socket. It keeps two
// connections, because a connect request holds its connection until the
// tunnel is up, and the status poll must not wait for that.
type ClientBackend struct {
	ops, poll *control.Client
}

// Attach dials the control socket twice and checks that it answers a
// status request.
func Attach(ctx context.Context, path string) (*ClientBackend, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ops, err := control.Dial(ctx, path)
	if err != nil {
		return nil, err
	}
	poll, err := control.Dial(ctx, path)
	if err != nil {
		ops.Close()
		return nil, err
	}
	if _, err := poll.Status(ctx); err != nil {
		ops.Close()
		poll.Close()
		return nil, fmt.Errorf("control socket %s does not answer: %s", path, oneLine(err))
	}
	return &ClientBackend{ops: ops, poll: poll}, nil
}

// Status asks the service for its state.
func (c *ClientBackend) Status(ctx context.Context) (Status, error) { return c.poll.Status(ctx) }

// Connect asks the service to connect with profileJSON.
func (c *ClientBackend) Connect(ctx context.Context, profileJSON []byte) error {
	return c.ops.Connect(ctx, profileJSON)
}

// Disconnect asks the service to take the tunnel down.
func (c *ClientBackend) Disconnect(ctx context.Context) error { return c.ops.Disconnect(ctx) }

// Events follows the service's events on a connection of its own.
func (c *ClientBackend) Events(ctx context.Context) (<-chan sdk.Event, error) {
	return c.poll.Events(ctx)
}

// Close closes the connections; the service keeps running.
func (c *ClientBackend) Close() error {
	return errors.Join(c.ops.Close(), c.poll.Close())
}
