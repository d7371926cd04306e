package desktop

import (
	"context"
	"sync"

	"github.com/qcdvpn/qcdvpn/control"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// Status and GatewayStatus are the control API's: the app shows what
// `qcdvpn status --json` prints.
type (
	Status        = control.Status
	GatewayStatus = control.GatewayStatus
)

// Backend is what the UI drives. A control.Client (attached to `qcdvpn up
// --service`) has exactly this shape; an in-process control.Engine is
// wrapped by EngineBackend.
type Backend interface {
	// Status is the tunnel's state now.
	Status(ctx context.Context) (Status, error)
	// Connect starts a tunnel from a profile JSON document.
	Connect(ctx context.Context, profileJSON []byte) error
	// Disconnect closes the tunnel; the backend stays up for the next Connect.
	Disconnect(ctx context.Context) error
	// Events streams the backend's events until ctx ends or the backend
	// goes away; the channel is closed then.
	Events(ctx context.Context) (<-chan sdk.Event, error)
	// Close releases the backend (an in-process engine shuts down).
	Close() error
}

// States of Status.State (the control API's).
const (
	StateIdle         = control.StateIdle
	StateConnecting   = control.StateConnecting
	StateConnected    = control.StateConnected
	StateReconnecting = control.StateReconnecting
	StateDisconnected = control.StateDisconnected
)

// EngineBackend puts an in-process control.Backend (control.NewEngine)
// behind the UI's Backend, for when the app itself may open a TUN.
type EngineBackend struct {
	B control.Backend

	once sync.Once
}

// Status returns the engine's state; it never fails.
func (e *EngineBackend) Status(context.Context) (Status, error) { return e.B.Status(), nil }

// Connect connects the engine with profileJSON.
func (e *EngineBackend) Connect(ctx context.Context, profileJSON []byte) error {
	return e.B.Connect(ctx, profileJSON)
}

// Disconnect takes the engine's tunnel down.
func (e *EngineBackend) Disconnect(ctx context.Context) error { return e.B.Disconnect(ctx) }

// Events forwards the engine's events until ctx ends or the engine shuts down.
func (e *EngineBackend) Events(ctx context.Context) (<-chan sdk.Event, error) {
	in, cancel := e.B.Subscribe()
	out := make(chan sdk.Event, 64)
	go func() {
		defer close(out)
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// Close shuts the engine down (the tunnel with it).
func (e *EngineBackend) Close() error {
	e.once.Do(e.B.Shutdown)
	return nil
}
