package gateway

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qcdvpn/qcdvpn/ike"
)

// haGateway is the gateway's hot-standby state (RFC 6311): the exporter
// of the active member and the takeover of the standby.
type haGateway struct {
	haKey    [32]byte
	kick     chan struct{} // exporter wake-up; nil without ha.export_file
	exportMu sync.Mutex    // serialises writes with Crash
	crashed  bool
	exported atomic.Uint64 // state files written

	// standby is the state read from ha.import_file, until Run takes the
	// SAs over.
	standby *haState
	// held are the IKE SAs (by our SPI) and Child SAs (by our inbound
	// SPI) of the import: the QCD token maker never answers for them.
	held      map[uint64]bool
	heldChild map[uint32]bool
	// importSeqs are the ESP counters to start imported Child SAs with,
	// by inbound SPI: the next outbound sequence number and the inbound
	// top. Written before Import, read by its hooks on the same goroutine.
	importSeqs map[uint32][2]uint64

	rateMu   sync.Mutex
	lastSeqs map[uint32]seqMark // counters at the last export, by inbound SPI
}

// haEnabled reports whether the gateway takes part in an HA pair.
func (g *Gateway) haEnabled() bool { return g.cfg.HA.ExportFile != "" || g.cfg.HA.ImportFile != "" }

// loadStandby reads ha.import_file before the sockets open, so that from
// the first datagram on the QCD token maker stays silent for every SA in
// it (a token would tell the client its SA is gone).
func (g *Gateway) loadStandby() error {
	if !g.haEnabled() {
		return nil
	}
	key, err := g.cfg.HAKey()
	if err != nil {
		return err
	}
	g.haKey = key
	if g.cfg.HA.ExportFile != "" {
		g.kick = make(chan struct{}, 1)
	}
	if g.cfg.HA.ImportFile == "" {
		return nil
	}
	st, err := readHAState(g.cfg.HA.ImportFile, key)
	if err != nil {
		return err
	}
	g.standby = st
	g.held, g.heldChild, g.importSeqs = map[uint64]bool{}, map[uint32]bool{}, map[uint32][2]uint64{}
	for _, rec := range st.Sessions {
		g.held[rec.IKE.SPIr] = true
		g.heldChild[rec.IKE.Child.SPIIn] = true
	}
	return nil
}

// isHeld reports whether the standby holds the IKE SA whose responder SPI
// is spir (then no QCD token is sent for it).
func (g *Gateway) isHeld(spir uint64) bool { return g.held[spir] }

// isHeldChild is isHeld for a Child SA by our inbound SPI.
func (g *Gateway) isHeldChild(spi uint32) bool { return g.heldChild[spi] }

// takeOver installs the imported SAs, skips their outbound ESP counters
// forward and starts the RFC 6311 sync with each client: message IDs
// and the replay counters the client must skip. Clients that did not
// announce RFC 6311 keep the SA as it is and may find out by liveness.
func (g *Gateway) takeOver() {
	st := g.standby
	if st == nil {
		return
	}
	g.standby = nil
	margin := g.cfg.HACounterSkip()
	since := time.Since(st.Written)
	byAddr := map[string]*ike.Responder{}
	for i, a := range g.Addrs() {
		byAddr[a.String()] = g.resp[i]
	}
	imported, synced := 0, 0
	for _, rec := range st.Sessions {
		r := byAddr[rec.Listen]
		if r == nil {
			r = g.resp[0]
		}
		c := rec.IKE.Child
		// What the dead member may have sent after the export, and what
		// the client went on sending to it until now.
		skipOut, skip := haSkip(margin, rec.OutRate, since), haSkip(margin, rec.InRate, since)
		// Inbound, only what the client is asked to skip is refused: a
		// client without replay-counter sync keeps its counters, and
		// anything above the export is then accepted (RFC 6311 §8.2).
		inTop := rec.ESPIn
		if rec.IKE.HAReplay {
			inTop += skip
		}
		g.importSeqs[c.SPIIn] = [2]uint64{rec.ESPOut + skipOut + 1, inTop}
		if !c.Suite.ESN && max(rec.ESPOut+skipOut, inTop) >= 1<<32-1 {
			g.log.Warn("HA takeover: the counter skip uses up a Child SA without ESN; it needs a rekey",
				"spi_in", fmt.Sprintf("%08x", c.SPIIn))
		}
		s, err := r.Import(rec.IKE)
		if err != nil {
			g.log.Warn("HA takeover: import failed", "err", err)
			continue
		}
		imported++
		if s.StartHASync(skip) {
			synced++
		} else {
			g.log.Info("HA takeover: the client did not announce RFC 6311; no sync", "peer", s.PeerID.String())
		}
	}
	g.log.Info("HA takeover", "imported", imported, "of", len(st.Sessions), "syncing", synced, "exported_at", st.Written)
	g.emit(Event{Type: "ha_takeover", Reason: fmt.Sprintf("imported %d of %d IKE SAs exported at %s", imported, len(st.Sessions), st.Written.Format("15:04:05.000"))})
}

// applyImportSeqs starts an imported Child SA's counters where takeOver
// said (from the gateway's hooks, right after the router installed it).
func (g *Gateway) applyImportSeqs(c *ike.ChildSA) {
	if v, ok := g.importSeqs[c.SPIIn]; ok {
		g.router.skipSeqs(c.SPIIn, v[0], v[1])
	}
}

// haSynced reports a finished sync and exports the new message IDs.
func (g *Gateway) haSynced(s *ike.Session, r ike.HASync) {
	kind := "replay"
	if r.MessageIDs {
		kind = "message_ids"
		if r.ReplayDelta > 0 {
			kind += "+replay"
		}
	}
	g.emit(Event{Type: "ha_synced", Peer: s.PeerID.String(), Remote: s.Remote().String(), Kind: kind,
		SPIi: fmt.Sprintf("%016x", r.SPIi), SPIr: fmt.Sprintf("%016x", r.SPIr),
		Reason: fmt.Sprintf("next_id=%d peer_next=%d replay_delta=%d", r.NextID, r.PeerNext, r.ReplayDelta)})
	g.exportKick()
}

// Exported counts the HA state files written (tests, diagnostics).
func (g *Gateway) Exported() uint64 { return g.exported.Load() }
