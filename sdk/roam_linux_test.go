package sdk

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/internal/testbed"
)

// TestNetWatchSeesAddressChange: the rtnetlink watch of a namespace
// reports an address added there, once for the burst of messages it makes, and stops on close.
func TestNetWatchSeesAddressChange(t *testing.T) {
	testbed.RequireRoot(t)
	ns := testbed.NewNS(t, "roam")
	fired := make(chan struct{}, 8)
	var w *netWatch
	if err := ns.Do(func() error {
		var err error
		w, err = startNetWatch(func() { fired <- struct{}{} }, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// One address makes a burst: RTM_NEWADDR and its local route.
	if out, err := ns.Exec(context.Background(), "ip", "addr", "add", "192.0.2.10/32", "dev", "lo"); err != nil {
		t.Fatalf("ip addr add: %v %s", err, out)
	}
	select {
	case <-fired:
	case <-time.After(2 * time.Second):
		t.Fatal("no change reported")
	}
	time.Sleep(5 * watchDebounce)
	if n := len(fired); n != 0 {
		t.Errorf("%d more reports for one burst", n)
	}
	w.close()
	ns.AddLoopbackAddr(t, netip.MustParsePrefix("192.0.2.12/32"))
	select {
	case <-fired:
		t.Error("reported after close")
	case <-time.After(5 * watchDebounce):
	}
}
