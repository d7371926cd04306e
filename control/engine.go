package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/pemfile"
	"github.com/qcdvpn/qcdvpn/sdk"
	"github.com/qcdvpn/qcdvpn/tun"
)

// EngineOptions configure an Engine.
type EngineOptions struct {
	// Options go to sdk.NewClient for every connect (Logger, DataPlane,
	// TUNName, StateDir, …). OnEvent, if set, is called with every event
	// in order, after the Status has taken it in (the CLI prints with it).
	sdk.Options
	// NewDevice, if set, builds the tunnel device for each connect (the
	// client then uses sdk.DataPlaneDevice); the engine closes it when
	// that client is done.
	NewDevice func(p *sdk.Profile) (tun.Device, error)
	// ProfileDir is the directory relative file paths in profiles given
	// as JSON are relative to; empty means the current directory.
	ProfileDir string
	// OnEnd, if set, is called when a tunnel ends on its own, with the
	// error that ended it, rather than by Disconnect, Shutdown or a new
	// Connect (`qcdvpn up -p` exits then).
	OnEnd func(err error)
}

// Engine runs one sdk.Client at a time and tracks its Status from the
// client's events: the Backend of `qcdvpn up`, and what the desktop app
// runs in-process when it has the rights. Its methods are safe for
// concurrent use.
type Engine struct {
	opts EngineOptions
	log  *slog.Logger

	// op serializes Connect, Disconnect and Shutdown.
	op sync.Mutex

	mu        sync.Mutex
	st        Status
	lastStats sdk.Stats
	profile   *sdk.Profile
	client    *sdk.Client
	dev       tun.Device
	gen       int                // bumped for every client
	cancel    context.CancelFunc // of the current client's connect and wait
	waitDone  chan struct{}      // closed when the current client is finished
	subs      map[int]chan sdk.Event
	nextSub   int
	shut      bool
	stopping  bool // Shutdown has begun
	done      chan struct{}
}

// subBuffer is how many events a slow subscriber may fall behind before
// events are dropped for it (the client's own queue is never blocked).
const subBuffer = 256

// NewEngine returns an idle engine.
func NewEngine(opts EngineOptions) *Engine {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{opts: opts, log: log, st: Status{State: StateIdle},
		subs: map[int]chan sdk.Event{}, done: make(chan struct{})}
}

// Done is closed once Shutdown has finished.
func (e *Engine) Done() <-chan struct{} { return e.done }

// ShuttingDown reports whether Shutdown has been called: a Connect that
// fails then failed because of it.
func (e *Engine) ShuttingDown() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stopping
}

// Client is the current sdk client (nil when idle or disconnected):
// `up --netstack --forward` dials through its Net.
func (e *Engine) Client() *sdk.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.client
}

// Profile is the current profile, nil before the first Connect.
func (e *Engine) Profile() *sdk.Profile {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.profile
}

// Status implements Backend.
func (e *Engine) Status() Status {
	e.mu.Lock()
	st := e.st
	c := e.client
	st.Gateways = append([]GatewayStatus(nil), e.st.Gateways...)
	st.DNS = append([]string(nil), e.st.DNS...)
	st.Stats = e.lastStats
	e.mu.Unlock()
	if c != nil && st.State == StateConnected {
		st.Stats = c.Stats()
	}
	for i := range st.Gateways {
		st.Gateways[i].Active = st.Gateway != "" && sameGateway(st.Gateways[i].Address, st.Gateway)
	}
	return st
}

// sameGateway reports whether the profile entry gw (host, host:port) is
// addr (an IP or IP:port, as events name gateways).
func sameGateway(gw, addr string) bool {
	host := gw
	if h, _, err := net.SplitHostPort(gw); err == nil {
		host = h
	}
	a := addr
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		a = ap.Addr().String()
	}
	if ga, err := netip.ParseAddr(host); err == nil {
		return ga.Unmap().String() == a
	}
	return host == a
}

// Connect implements Backend: profileJSON is parsed strictly (relative
// paths against ProfileDir) and its certificates loaded.
func (e *Engine) Connect(ctx context.Context, profileJSON []byte) error {
	if len(profileJSON) == 0 {
		return e.ConnectProfile(ctx, nil)
	}
	p, err := ParseProfileIn(profileJSON, e.opts.ProfileDir)
	if err != nil {
		return err
	}
	return e.ConnectProfile(ctx, p)
}

// ParseProfileIn parses a profile document and makes its relative paths
// relative to dir (the current directory if empty), then checks that its
// certificates and keys load: sdk.LoadProfile for a document in memory.
func ParseProfileIn(data []byte, dir string) (*sdk.Profile, error) {
	p, err := sdk.ParseProfile(data)
	if err != nil {
		return nil, err
	}
	if dir != "" {
		rel := func(s string) string { return pemfile.Rel(dir, s) }
		p.CA, p.Auth.Cert, p.Auth.Key, p.StateDir = rel(p.CA), rel(p.Auth.Cert), rel(p.Auth.Key), rel(p.StateDir)
	}
	if _, err := p.LoadCredentials(); err != nil {
		return nil, err
	}
	return p, nil
}

// AbsProfile makes the file paths of p absolute (against the current
// directory), so that it can be sent to a server running elsewhere.
func AbsProfile(p *sdk.Profile) error {
	abs := func(s *string) error {
		if *s == "" || pemfile.IsInline(*s) || filepath.IsAbs(*s) {
			return nil
		}
		a, err := filepath.Abs(*s)
		if err != nil {
			return err
		}
		*s = a
		return nil
	}
	for _, s := range []*string{&p.CA, &p.Auth.Cert, &p.Auth.Key, &p.StateDir} {
		if err := abs(s); err != nil {
			return err
		}
	}
	return nil
}

// ConnectProfile connects with p (nil: the current profile), replacing
// any tunnel the engine has. It returns when the tunnel is up, or with
// the error of the failed attempt (every gateway tried once); the engine
// then keeps the tunnel up, failing over as the sdk does, until
// Disconnect, Shutdown or the next Connect.
func (e *Engine) ConnectProfile(ctx context.Context, p *sdk.Profile) error {
	e.mu.Lock()
	if e.cancel != nil {
		e.cancel() // a connect in progress gives way to this one
	}
	e.mu.Unlock()
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	if e.shut {
		e.mu.Unlock()
		return errors.New("the service is shutting down")
	}
	if p == nil {
		p = e.profile
	}
	e.mu.Unlock()
	if p == nil {
		return errors.New("no profile to connect with: send one")
	}
	e.stopClient()

	opts := e.opts.Options
	var dev tun.Device
	if e.opts.NewDevice != nil {
		d, err := e.opts.NewDevice(p)
		if err != nil {
			e.failed(p, err)
			return fmt.Errorf("creating the tunnel device: %w", err)
		}
		dev = d
		opts.DataPlane, opts.Device = sdk.DataPlaneDevice, d
	}
	e.mu.Lock()
	e.gen++
	gen := e.gen
	e.mu.Unlock()
	opts.OnEvent = func(ev sdk.Event) { e.onEvent(gen, ev) }
	c, err := sdk.NewClient(p, opts)
	if err != nil {
		if dev != nil {
			dev.Close()
		}
		e.failed(p, err)
		return err
	}
	cctx, cancel := context.WithCancel(context.Background())
	stopReq := context.AfterFunc(ctx, cancel) // the caller may give up on the connect
	waitDone := make(chan struct{})
	e.mu.Lock()
	e.profile, e.client, e.dev, e.cancel, e.waitDone = p, c, dev, cancel, waitDone
	e.st = Status{State: StateConnecting, Profile: p.Name, QCD: p.QCDEnabled(), Resumption: p.ResumptionEnabled(), Gateways: gatewayList(p)}
	e.lastStats = sdk.Stats{}
	e.mu.Unlock()

	err = c.Connect(cctx)
	stopReq()
	if err != nil && cctx.Err() != nil && ctx.Err() == nil {
		err = errors.New("connect cancelled: disconnected or replaced by another connect")
	}
	if err != nil {
		c.Close()
		cancel()
		close(waitDone)
		e.mu.Lock()
		if e.gen == gen {
			e.client, e.cancel, e.waitDone, e.dev = nil, nil, nil, nil
			e.st.State = StateDisconnected
			e.st.LastError = oneLine(err)
		}
		e.mu.Unlock()
		if dev != nil {
			dev.Close()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	go e.wait(gen, c, dev, cctx, cancel, waitDone)
	return nil
}

// wait keeps client gen's tunnel up until it ends.
func (e *Engine) wait(gen int, c *sdk.Client, dev tun.Device, ctx context.Context, cancel context.CancelFunc, done chan struct{}) {
	err := c.Wait(ctx)
	byUs := ctx.Err() != nil
	c.Close()
	cancel()
	if dev != nil {
		dev.Close()
	}
	e.mu.Lock()
	if e.gen == gen {
		e.client, e.cancel, e.dev = nil, nil, nil
		e.st.State = StateDisconnected
		e.st.ConnectedSince = time.Time{}
		if err != nil && !byUs {
			e.st.LastError = oneLine(err)
		}
	}
	e.mu.Unlock()
	close(done)
	if !byUs && e.opts.OnEnd != nil {
		if err == nil {
			err = errors.New("the tunnel ended")
		}
		e.opts.OnEnd(err)
	}
}

// stopClient ends the current client and waits until it has finished
// (its last events delivered). Called with op held.
func (e *Engine) stopClient() {
	e.mu.Lock()
	cancel, done := e.cancel, e.waitDone
	e.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if done != nil {
		<-done
	}
}

func (e *Engine) failed(p *sdk.Profile, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.profile = p
	e.st = Status{State: StateDisconnected, Profile: p.Name, QCD: p.QCDEnabled(), Resumption: p.ResumptionEnabled(),
		Gateways: gatewayList(p), LastError: oneLine(err)}
}

func gatewayList(p *sdk.Profile) []GatewayStatus {
	var out []GatewayStatus
	for _, g := range p.Gateways {
		out = append(out, GatewayStatus{Address: g})
	}
	return out
}

// Disconnect implements Backend.
func (e *Engine) Disconnect(ctx context.Context) error {
	e.mu.Lock()
	if e.cancel != nil {
		e.cancel()
	}
	e.mu.Unlock()
	e.op.Lock()
	defer e.op.Unlock()
	e.stopClient()
	e.mu.Lock()
	if e.st.State != StateIdle {
		e.st.State = StateDisconnected
		e.st.ConnectedSince = time.Time{}
	}
	e.mu.Unlock()
	return nil
}

// Shutdown implements Backend: it disconnects, ends every event stream
// and closes Done.
func (e *Engine) Shutdown() {
	e.mu.Lock()
	e.stopping = true
	e.mu.Unlock()
	e.Disconnect(context.Background())
	e.mu.Lock()
	if e.shut {
		e.mu.Unlock()
		return
	}
	e.shut = true
	for id, ch := range e.subs {
		close(ch)
		delete(e.subs, id)
	}
	e.mu.Unlock()
	close(e.done)
}

// Subscribe implements Backend.
func (e *Engine) Subscribe() (<-chan sdk.Event, func()) {
	ch := make(chan sdk.Event, subBuffer)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.shut {
		close(ch)
		return ch, func() {}
	}
	id := e.nextSub
	e.nextSub++
	e.subs[id] = ch
	return ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if c, ok := e.subs[id]; ok {
			close(c)
			delete(e.subs, id)
		}
	}
}

// onEvent takes in one event of client gen and passes it on.
func (e *Engine) onEvent(gen int, ev sdk.Event) {
	e.mu.Lock()
	if gen == e.gen {
		e.apply(ev)
	}
	for _, ch := range e.subs {
		select {
		case ch <- ev:
		default:
			e.log.Debug("control: a slow event subscriber missed an event", "type", ev.Type)
		}
	}
	e.mu.Unlock()
	if e.opts.OnEvent != nil {
		e.opts.OnEvent(ev)
	}
}

// apply updates the status from an event; e.mu held.
func (e *Engine) apply(ev sdk.Event) {
	st := &e.st
	switch ev.Type {
	case sdk.EventConnecting:
		if st.State == StateConnected || st.State == StateReconnecting {
			st.State = StateReconnecting
		} else {
			st.State = StateConnecting
		}
		st.Gateway = ev.Gateway
	case sdk.EventConnected:
		st.State = StateConnected
		st.Gateway = ev.Gateway
		st.VirtualIP = ev.VirtualIP
		st.DNS = append([]string(nil), ev.DNS...)
		st.IKESuite, st.ESPSuite = ev.IKESuite, ev.ESPSuite
		st.IKESPIi, st.IKESPIr = ev.IKESPIi, ev.IKESPIr
		st.Resumed = ev.Resumed
		st.ConnectedSince = ev.Time
		st.LastError = ""
	case sdk.EventConnectFailed:
		st.LastError = firstLine(ev.Error)
	case sdk.EventDisconnected:
		if ev.Reason != "closed by user" {
			st.State = StateReconnecting
			st.LastError = firstLine(ev.Reason)
		}
		st.ConnectedSince = time.Time{}
	case sdk.EventFailover:
		st.State = StateReconnecting
		st.Gateway = ev.To
	case sdk.EventRekeyed:
		if ev.Reason == "ike" {
			st.IKESPIi, st.IKESPIr = ev.IKESPIi, ev.IKESPIr
		} else if ev.ESPSuite != "" {
			st.ESPSuite = ev.ESPSuite
		}
	case sdk.EventResumed:
		st.Resumed = true
	case sdk.EventStats:
		if ev.Stats != nil {
			e.lastStats = *ev.Stats
		}
	}
}

func firstLine(s string) string {
	return oneLine(errors.New(s))
}
