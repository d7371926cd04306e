package gateway

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/qcdvpn/qcdvpn/ike"
)

// The HA state file: what a hot-standby gateway needs to take over the
// active member's SAs. Format (version 1):
//
//	"QCDVPN-HA1\n" | nonce (12) | AES-256-GCM(ha.key_hex, nonce, JSON, AAD = the magic)
//
// The JSON is haState below: every established IKE SA with its keys and
// message IDs, its current Child SA with keys, the ESP sequence numbers
// as of the export and the virtual IPs leased. The file holds every
// session key, so it is sealed, mode 0600, and replaced atomically (temp
// file, fsync, rename, fsync of the directory): a standby never reads a
// torn file.

var haMagic = []byte("QCDVPN-HA1\n")

const (
	haVersion     = 1
	maxHAFile     = 64 << 20
	maxHASessions = 1 << 16
)

// haState is the plaintext of the state file.
type haState struct {
	Version  int          `json:"version"`
	Written  time.Time    `json:"written"`
	Gateway  string       `json:"gateway"` // the active member's ID
	Sessions []haSessionR `json:"sessions"`
}

// haSessionR is one IKE SA of the state file.
type haSessionR struct {
	// Listen is the local address the client talks to (which responder
	// takes it over).
	Listen string            `json:"listen"`
	IKE    *ike.SessionState `json:"ike"`
	// ESPOut is the last sequence number sealed on the Child SA's
	// outbound SA, ESPIn the highest accepted on its inbound SA.
	ESPOut uint64 `json:"esp_out"`
	ESPIn  uint64 `json:"esp_in"`
	// OutRate and InRate are packets per second since the previous
	// export: the standby skips at least rate × time since this export.
	OutRate float64 `json:"out_rate,omitempty"`
	InRate  float64 `json:"in_rate,omitempty"`
}

// sealHAState encrypts the state file's plaintext.
func sealHAState(key [32]byte, plain []byte) ([]byte, error) {
	blk, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), haMagic...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, haMagic), nil
}

// openHAState checks and decrypts a state file.
func openHAState(key [32]byte, b []byte) ([]byte, error) {
	if len(b) > maxHAFile {
		return nil, fmt.Errorf("larger than %d bytes", maxHAFile)
	}
	if !bytes.HasPrefix(b, haMagic) {
		return nil, errors.New("not a qcdvpn HA state file (version 1)")
	}
	blk, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	b = b[len(haMagic):]
	if len(b) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("truncated")
	}
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], haMagic)
	if err != nil {
		return nil, errors.New("does not open with ha.key_hex (another key, or corrupted)")
	}
	return plain, nil
}

// decodeHAState parses and checks the plaintext; every error is one line.
func decodeHAState(plain []byte) (*haState, error) {
	var st haState
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	if st.Version != haVersion {
		return nil, fmt.Errorf("version %d, want %d", st.Version, haVersion)
	}
	if len(st.Sessions) > maxHASessions {
		return nil, fmt.Errorf("more than %d sessions", maxHASessions)
	}
	seen := map[uint64]bool{}
	for i, s := range st.Sessions {
		if s.IKE == nil {
			return nil, fmt.Errorf("sessions[%d]: no ike state", i)
		}
		if _, err := netip.ParseAddrPort(s.Listen); err != nil {
			return nil, fmt.Errorf("sessions[%d].listen: %v", i, err)
		}
		if err := s.IKE.Check(); err != nil {
			return nil, fmt.Errorf("sessions[%d]: %v", i, err)
		}
		if s.OutRate < 0 || s.InRate < 0 {
			return nil, fmt.Errorf("sessions[%d]: negative packet rate", i)
		}
		if seen[s.IKE.SPIr] {
			return nil, fmt.Errorf("sessions[%d]: IKE SA %016x twice", i, s.IKE.SPIr)
		}
		seen[s.IKE.SPIr] = true
	}
	return &st, nil
}

// readHAState reads, opens and checks the state file at path.
func readHAState(path string, key [32]byte) (*haState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: ha.import_file: %w", err)
	}
	plain, err := openHAState(key, b)
	if err != nil {
		return nil, fmt.Errorf("gateway: ha.import_file %s: %v", path, err)
	}
	st, err := decodeHAState(plain)
	if err != nil {
		return nil, fmt.Errorf("gateway: ha.import_file %s: %v", path, err)
	}
	return st, nil
}

// writeFileAtomic replaces path with data, mode 0600: temp file in the
// same directory, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// exportKick asks the exporter for a write soon (an SA changed). It never
// blocks; a nil gateway exporter ignores it.
func (g *Gateway) exportKick() {
	if g.kick == nil {
		return
	}
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// exportLoop writes the state file on every kick and every interval until
// ctx ends.
func (g *Gateway) exportLoop(ctx context.Context) {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.HAExportInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.kick:
		case <-t.C:
		}
		if err := g.ExportState(); err != nil && !errors.Is(err, errCrashed) {
			g.log.Warn("HA state export failed", "err", err)
		}
	}
}

// ExportState writes the HA state file now (ha.export_file); the
// exporter also does so on every SA change and every ha.export_interval.
func (g *Gateway) ExportState() error {
	if g.cfg.HA.ExportFile == "" {
		return errors.New("gateway: no ha.export_file configured")
	}
	now := time.Now()
	st := haState{Version: haVersion, Written: now.UTC(), Gateway: g.cfg.ID, Sessions: []haSessionR{}}
	g.rateMu.Lock()
	prev := g.lastSeqs
	g.lastSeqs = map[uint32]seqMark{}
	for _, s := range g.sessionList() {
		ss, err := s.Export()
		if err != nil {
			continue // ended meanwhile
		}
		rec := haSessionR{Listen: localAddr(s.Transport()).String(), IKE: ss}
		spi := ss.Child.SPIIn
		rec.ESPOut, rec.ESPIn, _ = g.router.seqs(spi)
		if p, ok := prev[spi]; ok {
			if dt := now.Sub(p.at).Seconds(); dt > 0 {
				rec.OutRate = float64(rec.ESPOut-min(p.out, rec.ESPOut)) / dt
				rec.InRate = float64(rec.ESPIn-min(p.in, rec.ESPIn)) / dt
			}
		}
		g.lastSeqs[spi] = seqMark{out: rec.ESPOut, in: rec.ESPIn, at: now}
		st.Sessions = append(st.Sessions, rec)
	}
	g.rateMu.Unlock()
	plain, err := json.Marshal(&st)
	if err != nil {
		return err
	}
	sealed, err := sealHAState(g.haKey, plain)
	clear(plain)
	if err != nil {
		return err
	}
	g.exportMu.Lock()
	defer g.exportMu.Unlock()
	if g.crashed {
		// The crash drill: a dead process writes nothing more.
		return errCrashed
	}
	if err := writeFileAtomic(g.cfg.HA.ExportFile, sealed); err != nil {
		return fmt.Errorf("gateway: ha.export_file: %w", err)
	}
	g.exported.Add(1)
	return nil
}

// seqMark is a Child SA's counters at one export (for the rates).
type seqMark struct {
	out, in uint64
	at      time.Time
}

// haSkip is how far the standby moves one counter: the configured margin,
// or twice what the rate lets the peer (or the dead member) have used
// since the export, if more; capped at 2^31 (a Child SA without ESN has
// 2^32 numbers).
func haSkip(margin uint64, rate float64, since time.Duration) uint64 {
	est := 2 * rate * max(since.Seconds(), 0)
	if est > float64(margin) {
		margin = uint64(min(est, float64(maxHACounterSkip)))
	}
	return margin
}

func localAddr(t *ike.Transport) netip.AddrPort {
	la := t.Conn().LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(la.Addr().Unmap(), la.Port())
}

// seqs returns the ESP sequence numbers of the pair with inbound SPI spi:
// the last one sealed outbound and the highest accepted inbound.
func (r *Router) seqs(spi uint32) (out, in uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pairs[spi]
	if p == nil {
		return 0, 0, false
	}
	if p.out != nil {
		out = p.out.LastSeq()
	}
	if p.in != nil {
		in = p.in.HighestSeq()
	}
	return out, in, true
}

// skipSeqs moves the pair's counters forward for a takeover: the next
// outbound packet gets sequence number outNext, and inbound only numbers
// above inTop are accepted.
func (r *Router) skipSeqs(spi uint32, outNext, inTop uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pairs[spi]
	if p == nil {
		return false
	}
	if p.out != nil {
		p.out.SetSeq(outNext)
	}
	if p.in != nil {
		p.in.SkipReplay(inTop)
	}
	return true
}

// HASessionInfo describes one IKE SA of an HA state file, without keys.
type HASessionInfo struct {
	SPIi, SPIr uint64
	Peer       string
	// NextID and PeerNext are the message IDs: the gateway's next request
	// and the client's next expected one.
	NextID, PeerNext uint32
	// ESPOut and ESPIn are the Child SA's sequence numbers as of the
	// export: last sent, highest received.
	ESPOut, ESPIn uint64
	// OutRate and InRate are packets per second since the export before.
	OutRate, InRate float64
	// HAMessageID and HAReplay: the RFC 6311 capabilities negotiated.
	HAMessageID, HAReplay bool
}

// InspectHAState opens the HA state file at path with key and lists its
// IKE SAs (diagnostics, tests); keys are not returned.
func InspectHAState(path string, key [32]byte) (written time.Time, sessions []HASessionInfo, err error) {
	st, err := readHAState(path, key)
	if err != nil {
		return time.Time{}, nil, err
	}
	for _, r := range st.Sessions {
		sessions = append(sessions, HASessionInfo{SPIi: r.IKE.SPIi, SPIr: r.IKE.SPIr, Peer: r.IKE.PeerID.String(),
			NextID: r.IKE.NextID, PeerNext: r.IKE.PeerNext, ESPOut: r.ESPOut, ESPIn: r.ESPIn, OutRate: r.OutRate, InRate: r.InRate,
			HAMessageID: r.IKE.HAMessageID, HAReplay: r.IKE.HAReplay})
	}
	return st.Written, sessions, nil
}
