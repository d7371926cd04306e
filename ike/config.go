package ike

import (
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/qcdvpn/qcdvpn/ike/auth"
	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
)

// Config describes how an initiator authenticates and what it asks for.
type Config struct {
	LocalID  auth.Identity
	RemoteID auth.Identity
	// OmitIDr leaves IDr out of IKE_AUTH; the gateway's identity is still
	// checked against RemoteID.
	OmitIDr bool

	// PSK authenticates both sides with a pre-shared key when non-empty.
	PSK []byte
	// Signer and CertChain (DER, leaf first) authenticate the client with a
	// certificate when PSK is empty.
	Signer    crypto.Signer
	CertChain [][]byte
	// CAs verify the gateway's certificate; their key hashes go into
	// CERTREQ. When empty the gateway must authenticate with the PSK.
	CAs []*x509.Certificate
	// EAP, when set, authenticates the client with EAP instead (see
	// EAPConfig); EAP-TLS uses Signer and CertChain inside TLS.
	EAP *EAPConfig

	IKEProposals []ikecrypto.Proposal
	ESPProposals []ikecrypto.Proposal

	// TSi and TSr are the traffic selectors proposed for the first Child SA.
	TSi, TSr []netip.Prefix
	// RequestTicket asks for an RFC 5723 resumption ticket in IKE_AUTH
	// (N(TICKET_REQUEST)) and when the IKE SA is rekeyed.
	RequestTicket bool

	// RequestIPv4/RequestIPv6 ask the gateway for a virtual address.
	RequestIPv4, RequestIPv6 bool
	// NoSplitDNS leaves INTERNAL_DNS_DOMAIN (RFC 8598) out of the CP
	// request: the client will not route domains to the gateway's DNS.
	NoSplitDNS bool
	// RedirectedFrom is the gateway that redirected us here (RFC 5685
	// REDIRECTED_FROM); otherwise IKE_SA_INIT says REDIRECT_SUPPORTED.
	RedirectedFrom netip.Addr

	// PreviousIPs are asked for again in the CP request, so a reconnect
	// or resumption keeps the tunnel's addresses (RFC 5723 Note 5).
	PreviousIPs []netip.Addr

	// HASync announces RFC 6311 message-ID and replay-counter sync in
	// IKE_AUTH, so a hot-standby gateway can take the IKE SA over
	// without a reconnect.
	HASync bool

	// ForceEncap fakes NAT detection so that ESP is always UDP-encapsulated
	// (userspace clients cannot send raw ESP).
	ForceEncap bool

	// MOBIKE offers RFC 4555 mobility in IKE_AUTH (N(MOBIKE_SUPPORTED));
	// when the gateway offers it too, Session.UpdateAddresses keeps the
	// SAs across a change of our address, and the SA floats to port 4500
	// right after IKE_SA_INIT (§3.3).
	MOBIKE bool

	Retransmit Retransmit

	Rand   io.Reader
	Logger *slog.Logger
	Now    func() time.Time
}

// Retransmit is the request retransmission schedule (RFC 7296 §2.1): the
// first timeout, multiplied by Base after each unanswered try.
type Retransmit struct {
	Timeout time.Duration
	Base    float64
	Tries   int
}

// DefaultRetransmit returns the default schedule: 1 s, doubling, 5 tries,
// so a silent peer is given up on after 31 s.
func DefaultRetransmit() Retransmit {
	return Retransmit{Timeout: time.Second, Base: 2, Tries: 5}
}

// Budget is the total time the schedule waits before giving up.
func (r Retransmit) Budget() time.Duration {
	var total time.Duration
	t := float64(r.Timeout)
	for i := 0; i < r.Tries; i++ {
		total += time.Duration(t)
		t *= r.Base
	}
	return total
}

func (c *Config) check() error {
	if len(c.IKEProposals) == 0 {
		return errors.New("ike: no IKE proposals configured")
	}
	if len(c.ESPProposals) == 0 {
		return errors.New("ike: no ESP proposals configured")
	}
	if err := c.checkEAP(); err != nil {
		return err
	}
	if len(c.PSK) == 0 && c.Signer == nil && c.EAP == nil {
		return errors.New("ike: neither a PSK nor a certificate key configured")
	}
	if len(c.PSK) == 0 && len(c.CertChain) == 0 && c.EAP == nil {
		return errors.New("ike: certificate authentication needs a certificate")
	}
	if len(c.PSK) == 0 && len(c.CAs) == 0 {
		return errors.New("ike: certificate authentication needs CA certificates to verify the gateway")
	}
	if c.Retransmit.Tries <= 0 || c.Retransmit.Timeout <= 0 || c.Retransmit.Base < 1 {
		return errors.New("ike: invalid retransmission schedule")
	}
	return nil
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}
