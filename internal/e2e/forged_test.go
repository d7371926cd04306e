package e2e

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// TestForgedUnprotectedNotifies: against the SDK client with QCD on,
// unprotected messages naming its IKE SA, sent from the gateway's address
// (another port) and from a stranger, change nothing: N(REDIRECT) in an
// INFORMATIONAL request and response and in an IKE_SA_INIT response
// (RFC 5685 allows REDIRECT only in IKE_SA_INIT, IKE_AUTH and protected
// INFORMATIONALs), bare N(INVALID_IKE_SPI) and N(INVALID_SPI) for our
// Child SA (only hints: at most one liveness check), and N(QCD_TOKEN)
// with wrong tokens (rejected and counted as qcd_rejected). Afterwards
// the SA has the same SPIs, no failover or disconnect was reported, and
// traffic flows.
func TestForgedUnprotectedNotifies(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, gatewayConfig(loopbackAddr(t), filepath.Join(dir, "gw"), gwOpts{}))
	c := startClient(t, profileJSON([]netip.AddrPort{g.addr}, nil), filepath.Join(dir, "client"))
	echoOnce(t, c.c)
	spii, spir := c.spis()
	s0 := c.c.Session()
	childOut := binary.BigEndian.AppendUint32(nil, s0.Child.SPIOut)
	n0 := c.ev.len()
	drops0 := s0.Drops()

	const (
		notifyInvalidIKESPI = 4
		notifyInvalidSPI    = 11
		notifyRedirect      = 16407
		protoESP            = 3
		exchIKESAInit       = 34
		flagResponse        = 0x20
	)
	redirect := append([]byte{1, 4, 192, 0, 2, 66}, bytes.Repeat([]byte{7}, 32)...)
	var msgs [][]byte
	for _, flags := range []uint8{0, flagResponse} {
		msgs = append(msgs, ikeMessage(spii, spir, exchInformational, flags, 0, notifyPayload(0, nil, notifyRedirect, redirect)))
	}
	msgs = append(msgs, ikeMessage(spii, spir, exchIKESAInit, flagResponse, 0, notifyPayload(0, nil, notifyRedirect, redirect)))
	for i := range 20 {
		msgs = append(msgs,
			ikeMessage(spii, spir, exchInformational, 0, uint32(i), notifyPayload(0, nil, notifyInvalidIKESPI, nil)),
			ikeMessage(0, 0, exchInformational, 0, uint32(i), notifyPayload(protoESP, childOut, notifyInvalidSPI, nil)),
			ikeMessage(spii, spir, exchInformational, 0, uint32(i), notifyPayload(0, nil, notifyInvalidIKESPI, nil), tokenPayload([]byte(randomHex(16)))),
		)
	}
	for _, src := range []netip.Addr{g.addr.Addr(), loopbackAddr(t)} {
		sock := udpFrom(t, src)
		for _, m := range msgs {
			if _, err := sock.WriteToUDPAddrPort(marked(m), c.addr()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(2 * time.Second) // any liveness check the hints started is over
	echoOnce(t, c.c)

	evs := c.ev.snapshot()[n0:]
	for _, e := range evs {
		switch e.Type {
		case sdk.EventDisconnected, sdk.EventFailover, sdk.EventConnecting, sdk.EventQCDVerified, sdk.EventLivenessFailed:
			t.Errorf("forged messages caused %s: %+v", e.Type, e)
		}
	}
	if n := countType(evs, sdk.EventQCDRejected); n == 0 {
		t.Errorf("no qcd_rejected event for 40 wrong tokens (events: %s)", eventTypes(evs))
	}
	if s := c.c.Session(); s != s0 {
		t.Fatal("the session was replaced")
	}
	if a, b := c.spis(); a != spii || b != spir {
		t.Errorf("SPIs changed: %016x/%016x, were %016x/%016x", a, b, spii, spir)
	}
	d := s0.Drops()
	if d.Unprotected <= drops0.Unprotected {
		t.Errorf("the IKE_SA_INIT response with REDIRECT was not counted: %+v", d)
	}
	t.Logf("events after the forgeries: %s; session drops %+v", eventTypes(evs), d)
}
