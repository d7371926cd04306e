package testbed

import (
	"net/netip"
	"strings"
	"testing"
)

// gatewayListSAs is real `swanctl --list-sas --pretty` output of strongSwan
// 5.9.8 (responder with a pool, kernel-libipsec, encap = yes).
const gatewayListSAs = `list-sa event {
  gw {
    uniqueid = 1
    version = 2
    state = ESTABLISHED
    local-host = 10.77.1.2
    local-port = 4500
    local-id = gw.example
    remote-host = 10.77.1.1
    remote-port = 4500
    remote-id = client.example
    initiator-spi = 4df2a2a4c3ae609d
    responder-spi = d142b26f5d81211b
    nat-remote = yes
    nat-any = yes
    encr-alg = AES_GCM_16
    encr-keysize = 256
    prf-alg = PRF_HMAC_SHA2_256
    dh-group = ECP_256
    established = 629
    rekey-time = 13255
    remote-vips = [
      10.100.77.1
    ]
    child-sas {
      net-1 {
        name = net
        uniqueid = 1
        reqid = 1
        state = INSTALLED
        mode = TUNNEL
        protocol = ESP
        encap = yes
        spi-in = 32b0173e
        spi-out = 97f4981a
        encr-alg = AES_GCM_16
        encr-keysize = 256
        bytes-in = 34
        packets-in = 1
        use-in = 625
        bytes-out = 34
        packets-out = 1
        use-out = 625
        rekey-time = 2618
        life-time = 3331
        install-time = 629
        local-ts = [
          10.200.77.0/24
        ]
        remote-ts = [
          10.100.77.1/32
        ]
      }
    }
  }
}
list-sas reply {
}
`

func TestParseListSAs(t *testing.T) {
	sas, err := ParseListSAs(gatewayListSAs)
	if err != nil {
		t.Fatal(err)
	}
	if len(sas) != 1 {
		t.Fatalf("got %d SAs, want 1", len(sas))
	}
	sa := sas[0]
	checks := []struct{ field, got, want string }{
		{"Name", sa.Name, "gw"},
		{"State", sa.State, "ESTABLISHED"},
		{"Version", sa.Version, "2"},
		{"RemoteID", sa.RemoteID, "client.example"},
		{"LocalID", sa.LocalID, "gw.example"},
		{"EncrAlg", sa.EncrAlg, "AES_GCM_16"},
		{"IntegAlg", sa.IntegAlg, ""},
		{"PRFAlg", sa.PRFAlg, "PRF_HMAC_SHA2_256"},
		{"DHGroup", sa.DHGroup, "ECP_256"},
		{"InitiatorSPI", sa.InitiatorSPI, "4df2a2a4c3ae609d"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if sa.EncrKeysize != 256 || sa.RemotePort != 4500 || sa.Initiator || !sa.NATRemote {
		t.Errorf("keysize %d port %d initiator %v nat-remote %v", sa.EncrKeysize, sa.RemotePort, sa.Initiator, sa.NATRemote)
	}
	if len(sa.RemoteVIPs) != 1 || sa.RemoteVIPs[0] != netip.MustParseAddr("10.100.77.1") || len(sa.LocalVIPs) != 0 {
		t.Errorf("vips: local %v remote %v", sa.LocalVIPs, sa.RemoteVIPs)
	}
	c, ok := sa.Child("net")
	if !ok {
		t.Fatalf("child net missing: %+v", sa.Children)
	}
	if c.State != "INSTALLED" || c.Protocol != "ESP" || !c.Encap || c.EncrAlg != "AES_GCM_16" ||
		c.EncrKeysize != 256 || c.SPIIn != "32b0173e" || c.SPIOut != "97f4981a" || c.PacketsIn != 1 || c.BytesOut != 34 {
		t.Errorf("child: %+v", c)
	}
	if strings.Join(c.LocalTS, ",") != "10.200.77.0/24" || strings.Join(c.RemoteTS, ",") != "10.100.77.1/32" {
		t.Errorf("ts: %v === %v", c.LocalTS, c.RemoteTS)
	}
}

func TestParseListSAsEmptyAndBroken(t *testing.T) {
	sas, err := ParseListSAs("list-sas reply {\n}\n")
	if err != nil || len(sas) != 0 {
		t.Errorf("empty: %v %v", sas, err)
	}
	for _, bad := range []string{
		"list-sa event {\n  x {\n", // truncated
		"}\n",                      // unbalanced
		"list-sa event {\n  x {\n    local-port = many\n  }\n}\n",                  // bad number
		"list-sa event {\n  x {\n    remote-vips = [\n      nope\n    ]\n  }\n}\n", // bad VIP
	} {
		if _, err := ParseListSAs(bad); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
	// Values may contain " = " and spaces (distinguished names).
	sas, err = ParseListSAs("list-sa event {\n  x {\n    remote-id = C=CH, O=a = b, CN=gw\n  }\n}\n")
	if err != nil || len(sas) != 1 || sas[0].RemoteID != "C=CH, O=a = b, CN=gw" {
		t.Errorf("dn: %+v %v", sas, err)
	}
}

func FuzzParseListSAs(f *testing.F) {
	f.Add(gatewayListSAs)
	f.Add("list-sa event {\n x {\n y = [\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseListSAs(s) // must not panic
	})
}
