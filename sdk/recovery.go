package sdk

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/qcdvpn/qcdvpn/ike"
	"github.com/qcdvpn/qcdvpn/ike/wire"
	"github.com/qcdvpn/qcdvpn/qcd"
	"github.com/qcdvpn/qcdvpn/resume"
)

// ErrQCDVerified ends an IKE SA whose gateway proved, with its QCD token,
// that it lost the SA (RFC 6290): it is dropped without a Delete.
var ErrQCDVerified = errors.New("gateway lost the IKE SA (QCD token verified)")

// recovery is what the client keeps to notice a crashed gateway and to
// come back cheaply: QCD tokens (RFC 6290) and tickets (RFC 5723), both
// per IKE SA, persisted in one sealed record each.
type recovery struct {
	store  *resume.Store // nil: nothing persists
	tokens *qcd.Store
	verify *qcd.Verifier

	mu         sync.Mutex
	lastReject time.Time
	lastHint   time.Time
	closing    *ike.Session // the SA Close is deleting
	cur        qcd.SAKey    // the IKE SA in use
	rec        *resume.Record
}

// hintEvery bounds how often unverified messages start a liveness check.
const hintEvery = 5 * time.Second

// rejectEvery bounds qcd_rejected events: a flood of forged tokens must
// not become a flood of events.
const rejectEvery = time.Second

// stateDir is where the store lives: Options, then the profile, then the
// per-user config directory.
func (c *Client) stateDir() string {
	if c.opts.StateDir != "" {
		return c.opts.StateDir
	}
	if c.profile.StateDir != "" {
		return c.profile.StateDir
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "qcdvpn")
	}
	return ""
}

// openRecovery prepares the token store, the verifier and the persistent
// records. A store that cannot be opened costs resumption across
// restarts, not the connection: it is logged and the client goes on.
func (c *Client) openRecovery(r *ResolvedProfile) {
	rc := &recovery{tokens: qcd.NewStore(c.log)}
	rc.verify = qcd.NewVerifier(rc.tokens, qcd.Limits{PerSource: r.QCDRatePerSource, Global: r.QCDRateGlobal}, nil)
	c.rec = rc
	if !r.QCD && !r.Resumption {
		return
	}
	dir := c.stateDir()
	if dir == "" {
		c.log.Warn("no state directory: tickets and tokens are kept in memory only")
		return
	}
	kp := c.opts.KeyProvider
	if kp == nil {
		kp = resume.FileKey{Path: filepath.Join(dir, "store.key")}
	}
	st, err := resume.OpenStore(dir, kp, resume.StoreOptions{Logger: c.log})
	if err != nil {
		c.log.Warn("state store unavailable: tickets and tokens are kept in memory only", "dir", dir, "err", err)
		return
	}
	rc.store = st
	recs, err := st.List()
	if err != nil {
		c.log.Warn("reading the state store", "err", err)
		return
	}
	// Tokens of SAs the gateway may still hold: a restarted client still
	// recognises the gateway's proof that it lost them.
	for _, rec := range recs {
		if rec.Profile != c.profile.Name {
			continue
		}
		if sa, ok := parseSAKey(rec.ID); ok {
			for _, t := range rec.QCDTokens {
				rc.tokens.Add(sa, t)
			}
			for _, spi := range rec.ChildSPIs {
				rc.tokens.AddChild(spi, sa)
			}
		}
	}
}

func saKeyID(sa qcd.SAKey) string { return fmt.Sprintf("%016x%016x", sa.SPIi, sa.SPIr) }

func parseSAKey(id string) (qcd.SAKey, bool) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		return qcd.SAKey{}, false
	}
	return qcd.SAKey{SPIi: binary.BigEndian.Uint64(b), SPIr: binary.BigEndian.Uint64(b[8:])}, true
}

// takeTicket returns a stored, unexpired ticket for this profile's
// gateway domain, removing it from the store (RFC 5723 §4.3.1).
func (c *Client) takeTicket() (*resume.Record, *ike.ResumeState) {
	rc := c.rec
	if !c.profile.ResumptionEnabled() {
		return nil, nil
	}
	if rc.store == nil {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		// Memory only: the record of the SA that just ended.
		if rc.rec == nil || len(rc.rec.Ticket) == 0 || time.Now().After(rc.rec.Expiry) {
			return nil, nil
		}
		rec := *rc.rec
		rc.rec.Ticket, rc.rec.State = nil, nil
		return decodeTicket(c, &rec)
	}
	rec, ok, err := rc.store.Take(c.profile.Name, c.profile.RemoteID)
	if err != nil {
		c.log.Warn("reading a ticket", "err", err)
		return nil, nil
	}
	if !ok {
		return nil, nil
	}
	return decodeTicket(c, &rec)
}

func decodeTicket(c *Client, rec *resume.Record) (*resume.Record, *ike.ResumeState) {
	var rs ike.ResumeState
	if err := rs.UnmarshalBinary(rec.State); err != nil {
		c.log.Warn("discarding an unreadable ticket", "record", rec.ID, "err", err)
		return nil, nil
	}
	return rec, &rs
}

// putBack returns a ticket whose presentation got no answer: it was not
// used (RFC 5723 §4.3.1 counts only an established SA).
func (c *Client) putBack(rec *resume.Record) {
	rc := c.rec
	if rc.store != nil {
		if err := rc.store.Put(*rec); err != nil {
			c.log.Warn("storing a ticket", "err", err)
		}
		return
	}
	rc.mu.Lock()
	rc.rec = rec
	rc.mu.Unlock()
}

// forgetRecord drops the record of an IKE SA (its ticket was used, or the
// user disconnected).
func (c *Client) forgetRecord(id string) {
	rc := c.rec
	if sa, ok := parseSAKey(id); ok {
		rc.tokens.Delete(sa)
	}
	if rc.store != nil {
		if err := rc.store.Delete(id); err != nil {
			c.log.Warn("deleting a record", "err", err)
		}
	}
	rc.mu.Lock()
	if rc.rec != nil && rc.rec.ID == id {
		rc.rec = nil
	}
	rc.mu.Unlock()
}

// adopt starts tracking a new IKE SA: its tokens, its ticket, its Child
// SPIs, from the IKE_AUTH response.
func (c *Client) adopt(s *ike.Session, remote netip.AddrPort) {
	rc := c.rec
	sa := qcd.SAKey{SPIi: s.SPIi, SPIr: s.SPIr}
	rec := &resume.Record{ID: saKeyID(sa), Profile: c.profile.Name, Gateway: remote.String(), Domain: c.profile.RemoteID}
	if s.Child != nil {
		rec.ChildSPIs = []uint32{s.Child.SPIOut}
	}
	rc.mu.Lock()
	rc.cur, rc.rec = sa, rec
	rc.mu.Unlock()
	if s.Child != nil {
		rc.tokens.AddChild(s.Child.SPIOut, sa)
	}
	c.takeNotifies(sa, s.AuthNotifies, s.ResumeState())
}

// takeNotifies stores what a protected message of IKE SA sa carried:
// QCD tokens (§4.3/§4.4 replacements included) and tickets.
func (c *Client) takeNotifies(sa qcd.SAKey, ns []*wire.Notify, rs *ike.ResumeState) {
	rc := c.rec
	changed := false
	rc.mu.Lock()
	rec := rc.rec
	if rec == nil || rc.cur != sa {
		rc.mu.Unlock()
		return
	}
	for _, n := range ns {
		switch n.NotifyType {
		case wire.NotifyQCDToken:
			if !c.profile.QCDEnabled() {
				continue
			}
			if rc.tokens.Add(sa, n.Data) {
				rec.QCDTokens = rc.tokens.Tokens(sa)
				changed = true
			}
		case wire.NotifyTicketLTOpaque:
			if !c.profile.ResumptionEnabled() || len(n.Data) < 5 || rs == nil {
				continue
			}
			life := time.Duration(binary.BigEndian.Uint32(n.Data)) * time.Second
			state, err := rs.MarshalBinary()
			if err != nil || life <= 0 {
				continue
			}
			rec.Ticket = append([]byte(nil), n.Data[4:]...)
			rec.State = state
			// Wall clock: time the device spends asleep counts.
			rec.Expiry = time.Now().Round(0).Add(life)
			changed = true
			c.renewTicket(sa, life)
		case wire.NotifyTicketNack:
			c.log.Info("gateway will not issue a ticket for this IKE SA")
		case wire.NotifyTicketAck:
			c.log.Debug("gateway acknowledged the ticket request; no ticket yet")
		}
	}
	cp := *rec
	rc.mu.Unlock()
	if changed {
		c.saveRecord(&cp)
	}
}

// renewTicket asks for a fresh ticket, through an INFORMATIONAL, when
// nine tenths of this one's lifetime have passed (RFC 5723 §4.1), so a
// long-lived tunnel always holds a valid one.
func (c *Client) renewTicket(sa qcd.SAKey, life time.Duration) {
	time.AfterFunc(life*9/10, func() {
		s := c.Session()
		rc := c.rec
		rc.mu.Lock()
		cur := rc.cur
		rc.mu.Unlock()
		if s == nil || cur != sa {
			return // that SA is gone or rekeyed (a rekey brings its own ticket)
		}
		s.SendNotifies([]*wire.Notify{{NotifyType: wire.NotifyTicketRequest}})
	})
}

func (c *Client) saveRecord(rec *resume.Record) {
	if st := c.rec.store; st != nil {
		if err := st.Put(*rec); err != nil {
			c.log.Warn("storing the IKE SA record", "err", err)
		}
	}
}

// rekeyed moves the current record to the IKE SA's new SPIs; the ticket
// stays valid (it carries the SK_d it was issued with).
func (c *Client) rekeyed(spii, spir uint64) {
	rc := c.rec
	next := qcd.SAKey{SPIi: spii, SPIr: spir}
	rc.mu.Lock()
	prev := rc.cur
	rec := rc.rec
	rc.cur = next
	var cp resume.Record
	if rec != nil {
		rec.ID = saKeyID(next)
		rec.QCDTokens = nil // tokens are bound to SPIs
		cp = *rec
	}
	rc.mu.Unlock()
	rc.tokens.Rekeyed(prev, next)
	if rec != nil && rc.store != nil {
		_ = rc.store.Delete(saKeyID(prev))
		c.saveRecord(&cp)
	}
}

// childChanged keeps the child SPI → IKE SA mapping current.
func (c *Client) childChanged(add, remove *ike.ChildSA) {
	rc := c.rec
	rc.mu.Lock()
	sa := rc.cur
	rec := rc.rec
	var cp resume.Record
	if rec != nil {
		spis := rec.ChildSPIs[:0:0]
		for _, v := range rec.ChildSPIs {
			if remove == nil || v != remove.SPIOut {
				spis = append(spis, v)
			}
		}
		if add != nil {
			spis = append(spis, add.SPIOut)
		}
		rec.ChildSPIs = spis
		cp = *rec
	}
	rc.mu.Unlock()
	if add != nil {
		rc.tokens.AddChild(add.SPIOut, sa)
	}
	if remove != nil {
		rc.tokens.RemoveChild(remove.SPIOut)
	}
	if rec != nil && len(cp.QCDTokens)+len(cp.Ticket) > 0 {
		c.saveRecord(&cp)
	}
}

// unprotected judges an unprotected INVALID_IKE_SPI / INVALID_SPI from
// anywhere (RFC 6290 §3, §4.5). It returns ErrQCDVerified when the
// current IKE SA must go; a bare or unverifiable one only hints at a
// dead gateway (a fast liveness check).
func (c *Client) unprotected(raw []byte, from netip.AddrPort) error {
	var m qcd.Message
	if err := qcd.Parse(raw, &m); err != nil {
		return nil
	}
	s := c.Session()
	rc := c.rec
	rc.mu.Lock()
	cur := rc.cur
	if s == nil {
		s = rc.closing // Close is deleting it: a crashed gateway answers with its token
	}
	rc.mu.Unlock()
	names := func(sa qcd.SAKey) bool { return s != nil && sa == cur }
	hint := func() {
		// One fast liveness check per interval: forged messages must not
		// keep the SA busy with checks.
		rc.mu.Lock()
		ok := time.Since(rc.lastHint) >= hintEvery
		if ok {
			rc.lastHint = time.Now()
		}
		rc.mu.Unlock()
		if s != nil && ok {
			s.Hint()
		}
	}
	if !c.profile.QCDEnabled() {
		if m.SPIi == cur.SPIi {
			hint()
		}
		return nil
	}
	v := rc.verify.Check(from.Addr(), &m)
	switch v.Result {
	case qcd.Verified:
		if !names(v.SA) {
			// An SA of an earlier run: the gateway confirms it is gone.
			c.forgetTokens(v.SA)
			return nil
		}
		since := time.Since(s.LastSeen())
		c.log.Info("QCD token verified: the gateway lost our IKE SA", "from", from, "since_inbound", since)
		c.emit(Event{Type: EventQCDVerified, Gateway: c.gatewayNow(), Source: from.String(),
			IKESPIi: fmt.Sprintf("%016x", v.SA.SPIi), IKESPIr: fmt.Sprintf("%016x", v.SA.SPIr), SinceInbound: since})
		c.forgetTokens(v.SA)
		return ErrQCDVerified
	case qcd.Rejected:
		rc.mu.Lock()
		report := time.Since(rc.lastReject) >= rejectEvery
		if report {
			rc.lastReject = time.Now()
		}
		rc.mu.Unlock()
		if report {
			c.log.Info("QCD token rejected", "from", from)
			c.emit(Event{Type: EventQCDRejected, Gateway: c.gatewayNow(), Source: from.String(), Reason: "no stored token matches"})
		}
		if names(v.SA) {
			hint()
		}
	case qcd.NoToken:
		if names(v.SA) {
			hint()
		}
	case qcd.Unknown:
		// A gateway that sends no tokens (strongSwan): still a hint.
		if s != nil && m.SPIi == cur.SPIi {
			hint()
		}
	}
	return nil
}

// forgetTokens drops the tokens of an SA the gateway no longer holds; its
// ticket stays, it is what we resume with.
func (c *Client) forgetTokens(sa qcd.SAKey) {
	rc := c.rec
	rc.tokens.Delete(sa)
	if rc.store == nil {
		return
	}
	rec, ok, err := rc.store.Get(saKeyID(sa))
	if err != nil || !ok {
		return
	}
	rec.QCDTokens = nil
	if len(rec.Ticket) == 0 {
		_ = rc.store.Delete(rec.ID)
		return
	}
	_ = rc.store.Put(rec)
}

// onUnknown handles messages naming no IKE SA of the transport.
func (c *Client) onUnknown(d ike.Datagram) {
	if err := c.unprotected(d.Data, d.From); err != nil {
		s := c.Session()
		if s == nil {
			c.rec.mu.Lock()
			s = c.rec.closing
			c.rec.mu.Unlock()
		}
		if s != nil {
			go s.Abandon(err)
		}
	}
}

// closeRecovery releases the store.
func (c *Client) closeRecovery() {
	if c.rec != nil && c.rec.store != nil {
		c.rec.store.Close()
	}
}
