package resume

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Record is what the client keeps per IKE SA: the ticket and what
// resumption needs besides it (RFC 5723 §4.2, §5), and the QCD tokens.
type Record struct {
	// ID names the IKE SA, e.g. hex SPIi+SPIr; it is the key in the store
	// and the only field stored in the clear. 1..MaxRecordIDLen bytes.
	ID string
	// Profile is the name of the profile the IKE SA belongs to.
	Profile string
	// Gateway is the address (host:port) of the gateway that issued the
	// ticket.
	Gateway string
	// Domain is the gateway identity / ticket domain (the profile's
	// remote_id): any gateway of the domain may accept the ticket.
	Domain string
	// Ticket is the opaque ticket from TICKET_LT_OPAQUE; nil if none.
	Ticket []byte
	// State is the opaque state from the IKE layer (SK_d, algorithms,
	// identities, auth method). SECRET.
	State []byte
	// Expiry is the absolute wall-clock expiry of the ticket, so that time
	// spent asleep counts. Required when Ticket is set. A record with a
	// zero Expiry never expires by itself; the IKE layer deletes it with
	// its IKE SA (RFC 5723 §6.2).
	Expiry time.Time
	// QCDTokens are the QCD tokens of the IKE SA (RFC 6290).
	QCDTokens [][]byte
	// ChildSPIs are the SPIs of the IKE SA's Child SAs.
	ChildSPIs []uint32
	// Created is when the record was made; Put fills in the current time
	// if it is zero. Newer records are preferred.
	Created time.Time
}

// MaxRecordIDLen is the longest [Record.ID] (bytes).
const MaxRecordIDLen = 1024

const recordVersion = 1

// wireRecord is the JSON form of a Record inside the sealed value; the
// tags pin the encoding independently of Go field names.
type wireRecord struct {
	V         int       `json:"v"`
	ID        string    `json:"id"`
	Profile   string    `json:"profile,omitempty"`
	Gateway   string    `json:"gateway,omitempty"`
	Domain    string    `json:"domain,omitempty"`
	Ticket    []byte    `json:"ticket,omitempty"`
	State     []byte    `json:"state,omitempty"`
	Expiry    time.Time `json:"expiry"`
	QCDTokens [][]byte  `json:"qcd,omitempty"`
	ChildSPIs []uint32  `json:"child_spis,omitempty"`
	Created   time.Time `json:"created"`
}

// checkID validates a record ID for use as a bbolt key.
func checkID(id string) error {
	if len(id) == 0 || len(id) > MaxRecordIDLen {
		return fmt.Errorf("resume: record ID must be 1..%d bytes, got %d", MaxRecordIDLen, len(id))
	}
	return nil
}

// recordAAD binds a sealed value to its version and record ID.
func recordAAD(id string) []byte {
	aad := make([]byte, 0, 1+len(id))
	aad = append(aad, recordVersion)
	return append(aad, id...)
}

// sealRecord encrypts r for storage under its ID.
func sealRecord(aead cipher.AEAD, r Record) ([]byte, error) {
	pt, err := json.Marshal(wireRecord{
		V: recordVersion, ID: r.ID, Profile: r.Profile, Gateway: r.Gateway, Domain: r.Domain,
		Ticket: r.Ticket, State: r.State, Expiry: r.Expiry,
		QCDTokens: r.QCDTokens, ChildSPIs: r.ChildSPIs, Created: r.Created,
	})
	if err != nil {
		return nil, fmt.Errorf("resume: encode record %q: %w", r.ID, err)
	}
	defer clear(pt) // it holds State in the clear
	out := make([]byte, 1+gcmNonceLen, 1+gcmNonceLen+len(pt)+gcmTagLen)
	out[0] = recordVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("resume: nonce: %w", err)
	}
	return aead.Seal(out, out[1:1+gcmNonceLen], pt, recordAAD(r.ID)), nil
}

// errRecordKey is why a record could not be decrypted: most likely the
// store key changed.
var errRecordKey = errors.New("cannot decrypt (wrong key or tampered)")

// openRecord decrypts and decodes a stored value. Errors carry no secret.
func openRecord(aead cipher.AEAD, id string, val []byte) (Record, error) {
	if len(val) < 1+gcmNonceLen+gcmTagLen {
		return Record{}, errors.New("value too short")
	}
	if val[0] != recordVersion {
		return Record{}, fmt.Errorf("unknown record version %d", val[0])
	}
	pt, err := aead.Open(nil, val[1:1+gcmNonceLen], val[1+gcmNonceLen:], recordAAD(id))
	if err != nil {
		return Record{}, errRecordKey
	}
	defer clear(pt)
	var w wireRecord
	if err := json.Unmarshal(pt, &w); err != nil {
		// The JSON error text may quote plaintext: do not pass it on.
		return Record{}, errors.New("cannot decode record")
	}
	if w.V != recordVersion {
		return Record{}, fmt.Errorf("unknown record encoding %d", w.V)
	}
	if w.ID != id {
		return Record{}, errors.New("record ID mismatch")
	}
	return Record{
		ID: w.ID, Profile: w.Profile, Gateway: w.Gateway, Domain: w.Domain,
		Ticket: w.Ticket, State: w.State, Expiry: w.Expiry,
		QCDTokens: w.QCDTokens, ChildSPIs: w.ChildSPIs, Created: w.Created,
	}, nil
}
