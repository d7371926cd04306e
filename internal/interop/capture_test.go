package interop

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestCaptureSeeds records real traffic between qcdvpn and strongSwan as
// fuzz seed corpora. It runs only with QCDVPN_CAPTURE_SEEDS set to the
// module root: tcpdump on the client namespace's underlay captures a PSK
// connect, pings through the tunnel and the Delete at exit; each IKE
// message and ESP packet becomes a seed file (Go's corpus format) under
// testdata/fuzz/<target>/ of the packages whose parsers see them:
// ike/wire (FuzzParse, FuzzParseHeader, FuzzParsePayloads), qcd
// (FuzzParse), ike (FuzzOpenProtected), esp (FuzzOpen) and dataplane
// (FuzzHandleESP). The files are committed; `go test` runs them as
// regression inputs.
func TestCaptureSeeds(t *testing.T) {
	root := os.Getenv("QCDVPN_CAPTURE_SEEDS")
	if root == "" {
		t.Skip("QCDVPN_CAPTURE_SEEDS not set (the module root to write seeds under)")
	}
	requireEnv(t)
	const ikeProp = "aes256gcm16-prfsha256-x25519"
	e, _ := gateway(t, gwOpts{auth: "psk", ikeProposal: ikeProp, espProposal: "aes256gcm16"})
	pcap := filepath.Join(t.TempDir(), "underlay.pcap")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dump := e.pair.Client.Command(ctx, "tcpdump", "-i", "any", "-U", "-n", "-s", "0", "-w", pcap, "udp or esp")
	if err := dump.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	time.Sleep(time.Second) // tcpdump attaches
	p := profileFor(t, e, nil, ikeProp)
	c := startClient(t, e.pair.Client, writeProfile(t, e.dir, p), "--tun", "qcdt0")
	c.waitEvent("connected", 20*time.Second)
	behind := e.pair.ProtectedPrefix().Addr().Next()
	for range 3 {
		if err := e.pair.Client.Ping(ctx, behind); err != nil {
			t.Fatalf("ping through the tunnel: %v", err)
		}
	}
	if err := c.stop(); err != nil {
		t.Fatalf("client exit: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	_ = dump.Process.Signal(syscall.SIGINT)
	_ = dump.Wait()

	raw, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	ike, esp, err := splitCapture(raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("captured %d IKE messages and %d ESP packets", len(ike), len(esp))
	if len(ike) < 4 || len(esp) < 2 {
		t.Fatalf("too little captured: %d IKE, %d ESP", len(ike), len(esp))
	}
	write := func(pkg, target string, args ...any) {
		var b []byte
		b = append(b, "go test fuzz v1\n"...)
		var key []byte
		for _, a := range args {
			switch a := a.(type) {
			case []byte:
				b = append(b, "[]byte("+strconv.Quote(string(a))+")\n"...)
				key = append(key, a...)
			case uint8:
				b = append(b, fmt.Sprintf("uint8(%d)\n", a)...)
				key = append(key, a)
			}
		}
		sum := sha256.Sum256(key)
		dir := filepath.Join(root, pkg, "testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "swan-"+hex.EncodeToString(sum[:8])), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range ike {
		write("ike/wire", "FuzzParse", m)
		write("ike/wire", "FuzzParseHeader", m)
		if len(m) > 28 {
			write("ike/wire", "FuzzParsePayloads", m[16], m[28:])
		}
		write("qcd", "FuzzParse", m)
		write("ike", "FuzzOpenProtected", m)
	}
	for _, p := range esp {
		write("esp", "FuzzOpen", p, uint8(0))
		write("dataplane", "FuzzHandleESP", p)
	}
}

// splitCapture reads a pcap file (linktype LINUX_SLL or LINUX_SLL2, as
// tcpdump -i any writes) and returns the distinct IKE messages (UDP 500,
// or 4500 behind the non-ESP marker) and ESP packets (IP protocol 50 or
// UDP 4500 without the marker) in it.
func splitCapture(b []byte) (ike, esp [][]byte, err error) {
	if len(b) < 24 {
		return nil, nil, fmt.Errorf("pcap: %d bytes", len(b))
	}
	le := binary.LittleEndian
	if le.Uint32(b) != 0xa1b2c3d4 {
		return nil, nil, fmt.Errorf("pcap: magic %08x (want little-endian microsecond pcap)", le.Uint32(b))
	}
	var l2 int
	switch lt := le.Uint32(b[20:]); lt {
	case 113:
		l2 = 16
	case 276:
		l2 = 20
	default:
		return nil, nil, fmt.Errorf("pcap: linktype %d", lt)
	}
	seen := map[string]bool{}
	add := func(list *[][]byte, p []byte) {
		if !seen[string(p)] {
			seen[string(p)] = true
			*list = append(*list, append([]byte(nil), p...))
		}
	}
	for off := 24; off+16 <= len(b); {
		n := int(le.Uint32(b[off+8:]))
		rec := b[off+16 : min(off+16+n, len(b))]
		off += 16 + n
		if len(rec) < l2+20 || rec[l2]>>4 != 4 {
			continue // IPv4 only
		}
		ip := rec[l2:]
		ihl := int(ip[0]&0xf) * 4
		if len(ip) < ihl {
			continue
		}
		switch ip[9] {
		case 50:
			add(&esp, ip[ihl:])
		case 17:
			if len(ip) < ihl+8 {
				continue
			}
			udp := ip[ihl:]
			sport, dport := binary.BigEndian.Uint16(udp), binary.BigEndian.Uint16(udp[2:])
			pl := udp[8:]
			switch {
			case sport == 500 || dport == 500:
				add(&ike, pl)
			case (sport == 4500 || dport == 4500) && len(pl) >= 4 && binary.BigEndian.Uint32(pl) == 0:
				add(&ike, pl[4:])
			case (sport == 4500 || dport == 4500) && len(pl) > 8:
				add(&esp, pl)
			}
		}
	}
	return ike, esp, nil
}
