// Package dnstest is a small authoritative DNS server for tests: fixed
// records, a count of the queries per name, and a switch to stop
// answering, over UDP and TCP on sockets the test opens (in a namespace,
// on loopback).
package dnstest

import (
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Server answers from Records; names it has no record for get NXDOMAIN.
type Server struct {
	mu      sync.Mutex
	records map[string][]dns.RR // lower-case FQDN
	counts  map[string]int
	silent  bool
	udp     *dns.Server
	tcp     *dns.Server
	// Addr is where it listens (UDP; TCP on the same port when started
	// with a listener).
	Addr string
}

// New parses records in presentation format ("gw.test. 300 IN A 10.0.0.1").
func New(records ...string) (*Server, error) {
	s := &Server{records: map[string][]dns.RR{}, counts: map[string]int{}}
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			return nil, err
		}
		n := strings.ToLower(rr.Header().Name)
		s.records[n] = append(s.records[n], rr)
	}
	return s, nil
}

// Start serves on pc (and l, if not nil) until Close.
func (s *Server) Start(pc net.PacketConn, l net.Listener) {
	s.Addr = pc.LocalAddr().String()
	s.udp = &dns.Server{PacketConn: pc, Handler: s}
	started := make(chan struct{})
	s.udp.NotifyStartedFunc = func() { close(started) }
	go func() { _ = s.udp.ActivateAndServe() }()
	<-started
	if l != nil {
		s.tcp = &dns.Server{Listener: l, Handler: s}
		started := make(chan struct{})
		s.tcp.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.tcp.ActivateAndServe() }()
		<-started
	}
}

// Close stops serving.
func (s *Server) Close() {
	if s.udp != nil {
		_ = s.udp.Shutdown()
	}
	if s.tcp != nil {
		_ = s.tcp.Shutdown()
	}
}

// SetSilent makes the server drop every query (a dead resolver) or
// answer again.
func (s *Server) SetSilent(v bool) {
	s.mu.Lock()
	s.silent = v
	s.mu.Unlock()
}

// Count returns how many queries for name (any type) arrived.
func (s *Server) Count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[strings.ToLower(dns.Fqdn(name))]
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 {
		return
	}
	qn := strings.ToLower(q.Question[0].Name)
	s.mu.Lock()
	s.counts[qn]++
	silent := s.silent
	rrs := s.records[qn]
	s.mu.Unlock()
	if silent {
		return
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(rrs) == 0 {
		m.Rcode = dns.RcodeNameError
	}
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Question[0].Qtype || q.Question[0].Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	_ = w.WriteMsg(m)
}
