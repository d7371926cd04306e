package desktop

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// fakeBackend is an in-memory Backend: Connect moves it to connected with
// the profile's first gateway, events are whatever the test sends.
type fakeBackend struct {
	mu          sync.Mutex
	st          Status
	connects    [][]byte
	disconnects int
	connectErr  error
	subs        []chan sdk.Event
}

func (f *fakeBackend) Status(ctx context.Context) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Gateways = append([]GatewayStatus(nil), f.st.Gateways...)
	return st, nil
}

func (f *fakeBackend) Connect(ctx context.Context, profileJSON []byte) error {
	p, err := sdk.ParseProfile(profileJSON)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connects = append(f.connects, append([]byte(nil), profileJSON...))
	if f.connectErr != nil {
		f.st = Status{State: StateDisconnected, Profile: p.Name, LastError: f.connectErr.Error()}
		return f.connectErr
	}
	f.st = Status{State: StateConnected, Profile: p.Name, Gateway: p.Gateways[0], VirtualIP: "10.100.0.7",
		DNS: []string{"10.100.0.1"}, ConnectedSince: time.Now().Add(-65 * time.Second),
		IKESuite: "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519", ESPSuite: "AES_GCM_16_256",
		QCD: p.QCDEnabled(), Resumption: p.ResumptionEnabled()}
	for i, g := range p.Gateways {
		f.st.Gateways = append(f.st.Gateways, GatewayStatus{Address: g, Active: i == 0})
	}
	return nil
}

func (f *fakeBackend) Disconnect(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disconnects++
	f.st.State = StateDisconnected
	return nil
}

func (f *fakeBackend) Events(ctx context.Context) (<-chan sdk.Event, error) {
	ch := make(chan sdk.Event, 16)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	go func() { <-ctx.Done(); f.mu.Lock(); defer f.mu.Unlock(); f.drop(ch) }()
	return ch, nil
}

func (f *fakeBackend) drop(ch chan sdk.Event) {
	for i, c := range f.subs {
		if c == ch {
			f.subs = append(f.subs[:i], f.subs[i+1:]...)
			close(c)
			return
		}
	}
}

// send delivers e to every subscriber (waiting for one to exist).
func (f *fakeBackend) send(t *testing.T, e sdk.Event) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.subs)
		if n > 0 {
			for _, c := range f.subs {
				c <- e
			}
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("no event subscriber")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fakeBackend) set(fn func(*Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
}

func (f *fakeBackend) calls() (connects [][]byte, disconnects int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.connects...), f.disconnects
}

func (f *fakeBackend) Close() error { return nil }

// uiQueue runs the UI's do(fn) calls on the test goroutine, so the
// widgets are only touched from there (as Fyne's main goroutine would).
type uiQueue chan func()

func (q uiQueue) do(fn func()) { q <- fn }

// pump runs queued UI work until cond holds.
func (q uiQueue) pump(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for !cond() {
		select {
		case fn := <-q:
			fn()
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

var errFake = errors.New("gateway said AUTHENTICATION_FAILED")
