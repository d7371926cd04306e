package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// A complete client: load the profile, connect, keep the tunnel up until
// the process is interrupted, then delete the SA at the gateway. Events
// arrive in order on one goroutine; here they are printed as the CLI's
// JSON lines.
func ExampleNewClient() {
	p, err := sdk.LoadProfile("corp.json")
	if err != nil {
		log.Fatal(err) // names the field: profile: gateways[1]: …
	}
	c, err := sdk.NewClient(p, sdk.Options{
		DataPlane: sdk.DataPlaneKernel, // root or CAP_NET_ADMIN; DataPlaneNetstack needs neither
		OnEvent: func(e sdk.Event) {
			b, _ := json.Marshal(e)
			fmt.Println(string(b))
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err) // every gateway failed: each one's error, joined
	}
	// Wait rekeys, checks liveness and fails over until ctx ends; then it
	// closes the client.
	if err := c.Wait(ctx); err != nil {
		log.Print(err)
	}
}

// An app that embeds the tunnel without privileges reaches the far side
// through the client's own network stack.
func ExampleClient_Net() {
	p, err := sdk.LoadProfile("corp.json")
	if err != nil {
		log.Fatal(err)
	}
	c, err := sdk.NewClient(p, sdk.Options{DataPlane: sdk.DataPlaneNetstack})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	conn, err := c.Net().DialContext(ctx, "tcp", "10.200.0.1:80")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\n\r\n")
}

// A mobile app tells the client when the device's network changes: with
// MOBIKE the IKE SA moves to the new address (a roamed event), else a
// dead path is noticed within seconds rather than at the next liveness
// check; the counters show that an idle tunnel lets the device sleep.
func ExampleClient_NetworkChanged() {
	var c *sdk.Client // connected, see NewClient

	// From ConnectivityManager.NetworkCallback.onAvailable, or the
	// handler of NWPathMonitor:
	c.NetworkChanged()

	w := c.Wakeups()
	fmt.Printf("timer wake-ups: %d keepalives, %d of the IKE session\n", w.Keepalives, w.Session)
}

// Events print as the CLI's `--events json` lines.
func ExampleEvent_MarshalJSON() {
	e := sdk.Event{
		Time:      time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC),
		Type:      sdk.EventConnected,
		Gateway:   "192.0.2.1",
		VirtualIP: "10.100.0.2",
		DNS:       []string{"10.200.0.53"},
		IKESuite:  "aes256gcm16-prfsha256-x25519",
		ESPSuite:  "aes256gcm16",
		Elapsed:   42 * time.Millisecond,
	}
	b, err := json.Marshal(e)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))
	// Output:
	// {"dns":["10.200.0.53"],"elapsed_ms":42,"esp_suite":"aes256gcm16","gateway":"192.0.2.1","ike_suite":"aes256gcm16-prfsha256-x25519","resumed":false,"time":"2026-12-01T09:30:00Z","type":"connected","virtual_ip":"10.100.0.2"}
}

// Every profile error names the field, so an app can point the user at it.
func ExampleProfileError() {
	_, err := sdk.ParseProfile([]byte(`{"name": "corp", "gateways": ["192.0.2.1"],
		"remote_id": "gw.example", "local_id": "client.example",
		"auth": {"method": "psk", "psk": "secret"},
		"traffic": {"include": ["10.200.0.0/24"]},
		"timers": {"keepalive": "1ms"}}`))
	var pe *sdk.ProfileError
	if errors.As(err, &pe) {
		fmt.Println(pe.Field)
		fmt.Println(err)
	}
	// Output:
	// timers.keepalive
	// profile: timers.keepalive: "1ms" is out of range 1s..10m0s
}

func ExampleParseGateway() {
	for _, s := range []string{"vpn.example.com", "192.0.2.1:4500", "[2001:db8::1]:4500", "2001:db8::1"} {
		g, err := sdk.ParseGateway(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(g, g.IsIP())
	}
	// Output:
	// vpn.example.com:500 false
	// 192.0.2.1:4500 true
	// [2001:db8::1]:4500 true
	// [2001:db8::1]:500 true
}

// Empty timers take these values.
func ExampleDefaultTimerValues() {
	d := sdk.DefaultTimerValues()
	fmt.Println("keepalive", d.Keepalive, "liveness", d.Liveness, "ike", d.IKELifetime, "child", d.ChildLifetime)
	// Output:
	// keepalive 20s liveness 30s ike 4h0m0s child 1h0m0s
}
