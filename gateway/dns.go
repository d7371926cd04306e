package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/qcdvpn/qcdvpn/ike"
)

// Limits of the DNS settings.
const (
	maxDNSDomains = 16
	maxZoneRRs    = 1024
	// DNSPort is where the zone is served.
	DNSPort = 53
)

// DNSZoneConfig is a small authoritative zone the gateway serves behind
// the tunnel, for the demo and the split-DNS tests: clients reach it at
// Listen through the tunnel (give that address in dns so that they are
// told to use it).
type DNSZoneConfig struct {
	// Listen is the address to serve on, an IP literal (port 53). With data
	// "tun" it must be an address of the gateway's host (a loopback alias
	// serves); with "netstack" the in-process stack gets it.
	Listen string `json:"listen"`
	// Records are resource records in presentation format, absolute
	// names, such as "www.corp.test. 60 IN A 10.200.0.5".
	Records []string `json:"records"`
}

// DNSDomainList returns dns_domains checked: RFC 8598 domains the dns
// servers resolve, sent to clients as INTERNAL_DNS_DOMAIN.
func (c *Config) DNSDomainList() ([]string, error) {
	if len(c.DNSDomains) > maxDNSDomains {
		return nil, fieldErr("dns_domains", "more than %d domains", maxDNSDomains)
	}
	if len(c.DNSDomains) > 0 && len(c.DNS) == 0 {
		return nil, fieldErr("dns_domains", "needs dns (RFC 8598: split domains come with the servers that resolve them)")
	}
	out := make([]string, 0, len(c.DNSDomains))
	for i, s := range c.DNSDomains {
		d, err := ike.ParseDNSDomain([]byte(s))
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("dns_domains[%d]", i), "%s", strings.TrimPrefix(err.Error(), "INTERNAL_DNS_DOMAIN: "))
		}
		for j, have := range out {
			if have == d {
				return nil, fieldErr(fmt.Sprintf("dns_domains[%d]", i), "duplicate of dns_domains[%d]", j)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// zone is a parsed dns_zone.
type zone struct {
	listen  netip.AddrPort
	records map[string][]dns.RR // lower-case FQDN
	domains []string            // FQDNs the zone is authoritative for
}

// Zone returns dns_zone parsed; nil without one.
func (c *Config) Zone() (*zone, error) {
	z := c.DNSZone
	if z == nil {
		return nil, nil
	}
	a, err := netip.ParseAddr(z.Listen)
	switch {
	case z.Listen == "":
		return nil, fieldErr("dns_zone.listen", "required (an IP address behind the tunnel, such as \"10.200.0.53\")")
	case err != nil:
		return nil, fieldErr("dns_zone.listen", "invalid IP address %s", quote(z.Listen))
	case a.Zone() != "" || a.IsUnspecified() || a.IsMulticast():
		return nil, fieldErr("dns_zone.listen", "%s is not a unicast address", quote(z.Listen))
	}
	if len(z.Records) == 0 {
		return nil, fieldErr("dns_zone.records", "required (records such as \"www.corp.test. 60 IN A 10.200.0.5\")")
	}
	if len(z.Records) > maxZoneRRs {
		return nil, fieldErr("dns_zone.records", "more than %d records", maxZoneRRs)
	}
	out := &zone{listen: netip.AddrPortFrom(a.Unmap(), DNSPort), records: map[string][]dns.RR{}}
	for i, s := range z.Records {
		f := fmt.Sprintf("dns_zone.records[%d]", i)
		rr, err := parseRR(s)
		if err != nil {
			return nil, fieldErr(f, "%s", err)
		}
		n := strings.ToLower(rr.Header().Name)
		out.records[n] = append(out.records[n], rr)
	}
	domains, err := c.DNSDomainList()
	if err != nil {
		return nil, err
	}
	for _, d := range domains {
		out.domains = append(out.domains, dns.Fqdn(d))
	}
	return out, nil
}

// parseRR reads one record, absolute name, class IN.
func parseRR(s string) (dns.RR, error) {
	if strings.ContainsAny(s, "\n\r$") {
		return nil, errors.New("one record per entry, no directives")
	}
	rr, err := dns.NewRR(s)
	if err != nil {
		return nil, fmt.Errorf("invalid record: %s", strings.TrimPrefix(err.Error(), "dns: "))
	}
	if rr == nil {
		return nil, errors.New("empty record")
	}
	if !strings.HasSuffix(strings.Fields(s)[0], ".") {
		return nil, errors.New("the owner name must be absolute (end in '.')")
	}
	if rr.Header().Class != dns.ClassINET {
		return nil, errors.New("only class IN")
	}
	return rr, nil
}

// ServeDNS answers from the zone: the records of a name, NXDOMAIN for a
// name without records under one of the zone's domains, REFUSED else.
func (z *zone) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	if q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 {
		m.SetRcode(q, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	m.SetReply(q)
	qn := strings.ToLower(q.Question[0].Name)
	qt := q.Question[0].Qtype
	rrs, known := z.records[qn]
	if !known {
		m.Rcode = dns.RcodeRefused
		for _, d := range z.domains {
			if dns.IsSubDomain(d, qn) {
				m.Rcode, m.Authoritative = dns.RcodeNameError, true
			}
		}
		_ = w.WriteMsg(m)
		return
	}
	m.Authoritative = true
	for _, rr := range rrs {
		if rr.Header().Rrtype == qt || qt == dns.TypeANY || rr.Header().Rrtype == dns.TypeCNAME {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	if w.RemoteAddr().Network() == "udp" {
		size := 512
		if o := q.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// startZone serves z on tnet (data "netstack") or on the host's network
// (data "tun"), UDP and TCP; stop ends it.
func startZone(z *zone, tnet *netstack.Net, log *slog.Logger) (stop func(), err error) {
	var pc net.PacketConn
	var l net.Listener
	if tnet != nil {
		if pc, err = tnet.ListenUDPAddrPort(z.listen); err == nil {
			if l, err = tnet.ListenTCPAddrPort(z.listen); err != nil {
				pc.Close()
			}
		}
	} else {
		if pc, err = net.ListenPacket("udp", z.listen.String()); err == nil {
			if l, err = net.Listen("tcp", z.listen.String()); err != nil {
				pc.Close()
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: dns_zone on %s: %w", z.listen, err)
	}
	servers := []*dns.Server{
		{PacketConn: pc, Handler: z},
		{Listener: l, Handler: z, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
	}
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
	}
	log.Info("gateway DNS zone up", "listen", z.listen, "records", len(z.records))
	return func() {
		for _, s := range servers {
			_ = s.Shutdown()
		}
	}, nil
}

// openZone starts the dns_zone server, if one is configured.
func (g *Gateway) openZone(tnet *netstack.Net) error {
	z, err := g.cfg.Zone()
	if err != nil || z == nil {
		return err
	}
	stop, err := startZone(z, tnet, g.log)
	if err != nil {
		return err
	}
	g.stopZone = stop
	return nil
}

// zoneAddr adds the dns_zone address to the netstack's addresses: gVisor
// receives only for its own.
func (g *Gateway) zoneAddr(addrs []netip.Addr) []netip.Addr {
	z, err := g.cfg.Zone()
	if err != nil || z == nil {
		return addrs
	}
	for _, a := range addrs {
		if a == z.listen.Addr() {
			return addrs
		}
	}
	return append(addrs, z.listen.Addr())
}
