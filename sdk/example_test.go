package sdk_test

import (
	"fmt"

	"github.com/qcdvpn/qcdvpn/sdk"
)

func ExampleParseProfile() {
	p, err := sdk.ParseProfile([]byte(`{"name": "corp", "gateways": ["192.0.2.1"],
		"remote_id": "gw.example", "local_id": "client.example",
		"auth": {"method": "psk", "psk": "correct horse battery staple"},
		"traffic": {"include": ["10.200.0.0/24"]}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	gws, _ := p.GatewayEndpoints()
	fmt.Println(gws[0], p.IKEProposals[0])

	_, err = sdk.ParseProfile([]byte(`{"name": "corp", "gatways": ["192.0.2.1"]}`))
	fmt.Println(err)
	// Output:
	// 192.0.2.1:500 aes256gcm16-prfsha256-x25519-ke1_mlkem768
	// profile: unknown field "gatways" (did you mean "gateways"?)
}
