package gateway

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const zoneConfig = `{"listen":["192.0.2.1"],"id":"gw.example","auth":{"method":"psk","psk":"` + testPSK + `"},
  "pool":["10.100.0.0/24"],"local_ts":["10.200.0.0/24"],"state_dir":"s",
  "dns":["10.200.0.53"],"dns_domains":["corp.test","Lab.Test."],
  "dns_zone":{"listen":"10.200.0.53","records":["www.corp.test. 60 IN A 10.200.0.5","alias.corp.test. 60 IN CNAME www.corp.test."]}}`

func TestDNSConfig(t *testing.T) {
	c, err := ParseConfig([]byte(zoneConfig))
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.DNSDomainList()
	if err != nil || strings.Join(d, ",") != "corp.test,lab.test" {
		t.Fatalf("DNSDomainList = %q, %v", d, err)
	}
	z, err := c.Zone()
	if err != nil || z.listen.String() != "10.200.0.53:53" || len(z.records) != 2 {
		t.Fatalf("Zone = %+v, %v", z, err)
	}
	for _, tc := range []struct{ old, new, want string }{
		{`"dns":["10.200.0.53"],`, ``, `dns_domains: needs dns`},
		{`"corp.test"`, `"corp..test"`, `dns_domains[0]: label 2: empty label`},
		{`"Lab.Test."`, `"corp.test"`, `dns_domains[1]: duplicate of dns_domains[0]`},
		{`"listen":"10.200.0.53"`, `"listen":"zone"`, `dns_zone.listen: invalid IP address`},
		{`"listen":"10.200.0.53"`, `"listen":""`, `dns_zone.listen: required`},
		{`"www.corp.test. 60 IN A 10.200.0.5"`, `"www.corp.test 60 IN A 10.200.0.5"`, `dns_zone.records[0]: the owner name must be absolute`},
		{`"www.corp.test. 60 IN A 10.200.0.5"`, `"www.corp.test. 60 IN A 10.200.0"`, `dns_zone.records[0]: invalid record`},
		{`"www.corp.test. 60 IN A 10.200.0.5"`, `"www.corp.test. 60 CH A 10.200.0.5"`, `dns_zone.records[0]: only class IN`},
		{`"www.corp.test. 60 IN A 10.200.0.5"`, `"$INCLUDE /etc/passwd"`, `dns_zone.records[0]: one record per entry`},
	} {
		_, err := ParseConfig([]byte(strings.Replace(zoneConfig, tc.old, tc.new, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s -> %s: %v, want %q", tc.old, tc.new, err, tc.want)
		}
	}
}

// TestZoneServer serves the zone on loopback (as data "tun" does on the
// gateway's namespace) and asks it over UDP and TCP.
func TestZoneServer(t *testing.T) {
	c, err := ParseConfig([]byte(strings.ReplaceAll(zoneConfig, `"listen":"10.200.0.53"`, `"listen":"127.0.0.1"`)))
	if err != nil {
		t.Fatal(err)
	}
	z, err := c.Zone()
	if err != nil {
		t.Fatal(err)
	}
	// Port 53 needs privileges; a free port stands in.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.listen = netip.MustParseAddrPort(pc.LocalAddr().String())
	pc.Close()
	stop, err := startZone(z, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Skipf("SKIP: port taken: %v", err)
	}
	defer stop()
	for _, network := range []string{"udp", "tcp"} {
		cl := &dns.Client{Net: network, Timeout: 3 * time.Second}
		ask := func(name string, qt uint16) *dns.Msg {
			q := new(dns.Msg)
			q.SetQuestion(name, qt)
			m, _, err := cl.Exchange(q, z.listen.String())
			if err != nil {
				t.Fatalf("%s %s: %v", network, name, err)
			}
			return m
		}
		if m := ask("www.corp.test.", dns.TypeA); len(m.Answer) != 1 || !m.Authoritative {
			t.Errorf("%s: www: %v", network, m)
		}
		if m := ask("alias.corp.test.", dns.TypeA); len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeCNAME {
			t.Errorf("%s: alias: %v", network, m)
		}
		if m := ask("www.corp.test.", dns.TypeAAAA); len(m.Answer) != 0 || m.Rcode != dns.RcodeSuccess {
			t.Errorf("%s: www AAAA: %v", network, m)
		}
		if m := ask("x.lab.test.", dns.TypeA); m.Rcode != dns.RcodeNameError {
			t.Errorf("%s: x.lab.test: %s", network, dns.RcodeToString[m.Rcode])
		}
		if m := ask("example.org.", dns.TypeA); m.Rcode != dns.RcodeRefused {
			t.Errorf("%s: example.org: %s", network, dns.RcodeToString[m.Rcode])
		}
	}
}
