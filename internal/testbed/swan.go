package testbed

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// SwanConfig is what a test tells StartStrongSwan. The strings are pasted
// into configuration files as they are, so use strongSwan's syntax, one
// setting per line.
type SwanConfig struct {
	// Connections is the body of swanctl.conf's `connections { ... }`.
	Connections string
	// Secrets is the body of swanctl.conf's `secrets { ... }`.
	Secrets string
	// Pools is the body of swanctl.conf's `pools { ... }`.
	Pools string
	// Files are extra files, relative to the swanctl directory, e.g.
	// "x509ca/ca.pem", "x509/gw.pem", "private/gw.key" (swanctl loads
	// ECDSA and RSA keys alike from private/). See PKI.SwanFiles.
	Files map[string][]byte
	// CharonOptions are extra lines inside strongswan.conf's
	// `charon { ... }`, e.g. "cookie_threshold = 1" or "dos_protection = no".
	CharonOptions string
	// Plugins, when not empty, replaces DefaultPlugins (space-separated).
	Plugins string
}

// DefaultPlugins are the charon plugins the harness loads: crypto through
// OpenSSL (which also provides x25519 and ChaCha20-Poly1305 here),
// kernel-libipsec for userspace ESP, vici, and the EAP methods a VPN test
// may need. Plugins that would touch the host (resolve writes
// /etc/resolv.conf, updown runs scripts, stroke, farp, dhcp) are left out.
const DefaultPlugins = "random nonce openssl pem pkcs1 pkcs8 pkcs12 x509 revocation constraints " +
	"pubkey aes sha1 sha2 md5 hmac gcm kdf gmp drbg attr counters " +
	"kernel-libipsec kernel-netlink socket-default vici " +
	"eap-identity eap-md5 eap-mschapv2 eap-tls eap-ttls xauth-generic"

// swanctlPlugins are what the swanctl tool needs to read credentials; set
// explicitly so it does not complain about plugins Debian does not ship.
const swanctlPlugins = "random nonce openssl pem pkcs1 pkcs8 pkcs12 x509 pubkey revocation constraints"

// swanctlSubdirs are the credential directories swanctl scans, all created
// (empty) so that swanctl does not warn about missing ones.
var swanctlSubdirs = []string{"x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl",
	"pubkey", "private", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12", "conf.d"}

// StrongSwan is a running charon inside a namespace, started by
// StartStrongSwan and killed by the test's cleanup.
type StrongSwan struct {
	// NS is the namespace charon runs in.
	NS *NS
	// Dir holds strongswan.conf, charon.log, charon.out (stdout/stderr)
	// and the swanctl directory.
	Dir string
	// SwanctlDir holds swanctl.conf and the credential subdirectories.
	SwanctlDir string
	// ConfPath is charon's strongswan.conf (passed as STRONGSWAN_CONF).
	ConfPath string
	// LogPath is charon's log file.
	LogPath string
	// VICI is the vici socket URI, unix:///...; charon runs with a private
	// /run so several instances never share a socket or pid file.
	VICI string

	cmd      *exec.Cmd
	exited   chan struct{} // closed when charon has exited
	killOnce sync.Once
}

// renderStrongswanConf writes charon's whole configuration: nothing is read
// from /etc, so the host's settings cannot leak into a test.
func renderStrongswanConf(cfg SwanConfig, socketPath, logPath string) string {
	plugins := cfg.Plugins
	if strings.TrimSpace(plugins) == "" {
		plugins = DefaultPlugins
	}
	return fmt.Sprintf(`# written by qcdvpn internal/testbed
charon {
  load_modular = no
  load = %s
  plugins {
    vici {
      socket = unix://%s
    }
  }
  filelog {
    testbed {
      path = %s
      time_format = %%H:%%M:%%S
      ike_name = yes
      append = no
      flush_line = yes
      default = 1
      ike = 2
      cfg = 2
      enc = 1
      net = 1
      knl = 1
    }
  }
%s
}
swanctl {
  load = %s
}
`, plugins, socketPath, logPath, indent(cfg.CharonOptions, "  "), swanctlPlugins)
}

// renderSwanctlConf writes swanctl.conf from the three bodies.
func renderSwanctlConf(cfg SwanConfig) string {
	return fmt.Sprintf("# written by qcdvpn internal/testbed\nconnections {\n%s\n}\n\nsecrets {\n%s\n}\n\npools {\n%s\n}\n",
		indent(cfg.Connections, "  "), indent(cfg.Secrets, "  "), indent(cfg.Pools, "  "))
}

// indent puts prefix before every non-empty line, for readable files.
func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// writeSwanFiles writes cfg.Files below dir, refusing paths that leave it.
func writeSwanFiles(dir string, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !filepath.IsLocal(name) {
			return fmt.Errorf("SwanConfig.Files: %q is not a relative path inside the swanctl directory", name)
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("SwanConfig.Files: %w", err)
		}
		if err := os.WriteFile(p, files[name], 0o600); err != nil {
			return fmt.Errorf("SwanConfig.Files: %w", err)
		}
	}
	return nil
}

// Swanctl runs `swanctl ARGS... --uri VICI` and returns its combined
// output; the error quotes the output.
func (s *StrongSwan) Swanctl(ctx context.Context, args ...string) (string, error) {
	out, err := s.swanctlCmd(ctx, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("swanctl %s: %w: %s (charon log: %s)",
			strings.Join(args, " "), err, strings.TrimSpace(string(out)), s.LogPath)
	}
	return string(out), nil
}

// swanctlCmd builds a swanctl command against this charon. swanctl reads
// our strongswan.conf for its own plugin list; it reaches charon over the
// unix socket, which works across network namespaces.
func (s *StrongSwan) swanctlCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "swanctl", append(args, "--uri", s.VICI)...)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+s.ConfPath, "SWANCTL_DIR="+s.SwanctlDir)
	return cmd
}

// LoadAll runs `swanctl --load-all` on the test's swanctl.conf (again), for
// tests that change files after start.
func (s *StrongSwan) LoadAll(ctx context.Context) (string, error) {
	return s.Swanctl(ctx, "--load-all", "--file", filepath.Join(s.SwanctlDir, "swanctl.conf"))
}

// Initiate runs `swanctl --initiate --child CHILD [--ike IKE]` and waits
// for the result (swanctl's own timeout follows ctx's deadline, default 10 s).
func (s *StrongSwan) Initiate(ctx context.Context, ike, child string) (string, error) {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	secs := int(timeout / time.Second)
	if secs < 1 {
		secs = 1
	}
	args := []string{"--initiate", "--child", child, "--timeout", fmt.Sprint(secs)}
	if ike != "" {
		args = append(args, "--ike", ike)
	}
	return s.Swanctl(ctx, args...)
}

// ListSAs returns the IKE SAs charon knows, parsed from
// `swanctl --list-sas --pretty`.
func (s *StrongSwan) ListSAs(ctx context.Context) ([]SA, error) {
	cmd := s.swanctlCmd(ctx, "--list-sas", "--pretty")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("swanctl --list-sas: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return ParseListSAs(string(out))
}

// WaitSA polls ListSAs until the IKE SA named ike satisfies ok (nil means
// "is ESTABLISHED") or ctx ends, and returns it.
func (s *StrongSwan) WaitSA(ctx context.Context, ike string, ok func(SA) bool) (SA, error) {
	if ok == nil {
		ok = func(sa SA) bool { return sa.State == "ESTABLISHED" }
	}
	var last []SA
	var lastErr error
	for {
		sas, err := s.ListSAs(ctx)
		last, lastErr = sas, err
		for _, sa := range sas {
			if sa.Name == ike && ok(sa) {
				return sa, nil
			}
		}
		select {
		case <-ctx.Done():
			return SA{}, fmt.Errorf("waiting for IKE SA %q: %w (last list: %+v, last error: %v; charon log: %s)",
				ike, ctx.Err(), last, lastErr, s.LogPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Log returns charon's log so far.
func (s *StrongSwan) Log() string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", s.LogPath, err)
	}
	return string(b)
}

// tail returns the last n lines of text.
func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// SwanClient is strongSwan as a road-warrior *client*: a swanctl
// connection that initiates to Remote, asks for a virtual IP (vips =
// 0.0.0.0) and tunnels RemoteTS, with UDP-encapsulated ESP (encap = yes,
// which kernel-libipsec needs anyway). Config renders it; start it with
// StartStrongSwan(t, ns, c.Config()) and bring it up with
// Initiate(ctx, c.Name, c.Child) (or the defaults "cl", "net").
type SwanClient struct {
	// Name and Child name the connection and its child; default "cl"
	// and "net".
	Name, Child string
	// Remote is the gateway's address.
	Remote netip.Addr
	// NATT makes charon talk to port 4500 from port 4500 from the first
	// message on (IKE behind the non-ESP marker), for gateways that only
	// listen on the NAT-T port; otherwise charon starts on port 500 and
	// floats to 4500.
	NATT bool
	// Proposals and ESPProposals in strongSwan syntax; empty means
	// charon's defaults.
	Proposals, ESPProposals string
	// LocalID and RemoteID are the identities; RemoteID empty means
	// "whatever the gateway's certificate or PSK says" (%any).
	LocalID, RemoteID string
	// PSK selects PSK authentication with this secret (quoted for
	// swanctl.conf). Without it the client authenticates with the
	// certificate Cert.
	PSK string
	// EAPID and EAPSecret select EAP-MSCHAPv2 for the client (auth =
	// eap-mschapv2, eap_id = EAPID, the secret in an eap section) with
	// the gateway authenticating by certificate (remote auth = pubkey;
	// put its CA in Files as x509ca/ca.pem). EAPID empty means LocalID.
	// EAPSecret takes precedence over PSK and Cert.
	EAPID, EAPSecret string
	// EAPTLS selects EAP-TLS for the client with the certificate Cert
	// (auth = eap-tls; the EAP identity is LocalID), the gateway
	// authenticating by certificate.
	EAPTLS bool
	// Cert names the client certificate under x509/ (e.g. "client.pem",
	// as laid out by PKI.SwanFiles("client", ...)); with it the gateway
	// is also expected to authenticate with a certificate.
	Cert string
	// RemoteTS are the prefixes behind the gateway.
	RemoteTS []netip.Prefix
	// ConnExtras and ChildExtras are more lines inside the connection
	// and inside its child.
	ConnExtras, ChildExtras string
	// Files are the credentials (SwanConfig.Files), e.g. PKI.SwanFiles.
	Files map[string][]byte
	// CharonOptions are passed on to SwanConfig.CharonOptions.
	CharonOptions string
}

// names returns the connection and child names with defaults applied.
func (c SwanClient) names() (string, string) {
	name, child := c.Name, c.Child
	if name == "" {
		name = "cl"
	}
	if child == "" {
		child = "net"
	}
	return name, child
}

// Config renders the client as a SwanConfig.
func (c SwanClient) Config() SwanConfig {
	name, child := c.names()
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("%s {", name)
	line("version = 2")
	line("remote_addrs = %s", c.Remote)
	if c.NATT {
		line("local_port = 4500")
		line("remote_port = 4500")
	}
	line("vips = 0.0.0.0")
	line("encap = yes")
	if c.Proposals != "" {
		line("proposals = %s", c.Proposals)
	}
	if c.ConnExtras != "" {
		line("%s", c.ConnExtras)
	}
	auth := "psk"
	if c.PSK == "" {
		auth = "pubkey"
	}
	localAuth, remoteAuth := auth, auth
	if c.EAPSecret != "" {
		localAuth, remoteAuth = "eap-mschapv2", "pubkey"
	} else if c.EAPTLS {
		localAuth, remoteAuth = "eap-tls", "pubkey"
	}
	line("local {")
	line("auth = %s", localAuth)
	if c.LocalID != "" {
		line("id = %s", c.LocalID)
	}
	if c.EAPSecret != "" && c.EAPID != "" {
		line("eap_id = %s", c.EAPID)
	}
	if c.Cert != "" && c.EAPSecret == "" {
		line("certs = %s", c.Cert)
	}
	line("}")
	line("remote {")
	line("auth = %s", remoteAuth)
	if c.RemoteID != "" {
		line("id = %s", c.RemoteID)
	}
	line("}")
	line("children {")
	line("%s {", child)
	ts := make([]string, len(c.RemoteTS))
	for i, p := range c.RemoteTS {
		ts[i] = p.String()
	}
	if len(ts) > 0 {
		line("remote_ts = %s", strings.Join(ts, ","))
	}
	if c.ESPProposals != "" {
		line("esp_proposals = %s", c.ESPProposals)
	}
	if c.ChildExtras != "" {
		line("%s", c.ChildExtras)
	}
	line("}")
	line("}")
	line("}")
	cfg := SwanConfig{Connections: b.String(), Files: c.Files, CharonOptions: c.CharonOptions}
	if c.EAPSecret != "" {
		id := c.EAPID
		if id == "" {
			id = c.LocalID
		}
		cfg.Secrets = fmt.Sprintf("eap-1 {\nid = %s\nsecret = %q\n}", id, c.EAPSecret)
	} else if c.PSK != "" {
		var ids strings.Builder
		n := 0
		for _, id := range []string{c.LocalID, c.RemoteID} {
			if id != "" {
				n++
				fmt.Fprintf(&ids, "id-%d = %s\n", n, id)
			}
		}
		cfg.Secrets = fmt.Sprintf("ike-1 {\n%ssecret = %q\n}", ids.String(), c.PSK)
	}
	return cfg
}

// Up initiates the client's connection (as configured by c) and waits
// until charon reports its IKE SA ESTABLISHED, which it returns.
func (s *StrongSwan) Up(ctx context.Context, c SwanClient) (SA, error) {
	name, child := c.names()
	if out, err := s.Initiate(ctx, name, child); err != nil {
		return SA{}, fmt.Errorf("%w\n%s", err, out)
	}
	return s.WaitSA(ctx, name, nil)
}
