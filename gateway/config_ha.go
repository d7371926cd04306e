package gateway

import (
	"encoding/hex"
	"time"
)

// HAConfig configures hot-standby takeover (RFC 6311). The active member
// writes its SA state to export_file; a standby started on the same
// address with import_file (the same file, on shared storage or copied)
// takes the SAs over and resynchronises message IDs and ESP counters with
// each client. Both members share key_hex, the QCD secret and the ticket
// keys.
type HAConfig struct {
	// ExportFile is where the active member keeps its SA state: written
	// atomically (temp file, fsync, rename), mode 0600, sealed with key_hex.
	ExportFile string `json:"export_file,omitempty"`
	// ExportInterval is how often the state is written besides on every SA
	// change (10ms..1m, default 1s): message IDs and ESP counters move
	// with every packet, and the standby's skip margins cover what it
	// missed since.
	ExportInterval string `json:"export_interval,omitempty" want:"a duration such as \"1s\""`
	// ImportFile makes this gateway the standby taking over: the SAs in it
	// are installed at start.
	ImportFile string `json:"import_file,omitempty"`
	// KeyHex is the AES-256-GCM key (64 hex digits) sealing the state
	// file; required with export_file or import_file.
	KeyHex string `json:"key_hex,omitempty"`
	// CounterSkip is how many ESP sequence numbers the standby skips, in
	// each direction, past those of the export (default 2^20; 1..2^31),
	// or twice the exported packet rate times the time since the export
	// if that is more. Its outbound packets then stay ahead of what the
	// active sent, and it asks the client to skip as far
	// (IPSEC_REPLAY_COUNTER_SYNC).
	CounterSkip int `json:"counter_skip,omitempty"`
}

// DefaultHAExportInterval and DefaultHACounterSkip apply to empty fields.
const (
	DefaultHAExportInterval = time.Second
	DefaultHACounterSkip    = 1 << 20
	maxHACounterSkip        = 1 << 31
)

func (c *Config) validateHA() error {
	h := c.HA
	if err := checkPath("ha.export_file", h.ExportFile); err != nil {
		return err
	}
	if err := checkPath("ha.import_file", h.ImportFile); err != nil {
		return err
	}
	if _, err := parseDuration("ha.export_interval", h.ExportInterval, 10*time.Millisecond, time.Minute, false); err != nil {
		return err
	}
	if h.CounterSkip < 0 || h.CounterSkip > maxHACounterSkip {
		return fieldErr("ha.counter_skip", "%d is out of range (want 0 for the default %d, or 1..%d)", h.CounterSkip, DefaultHACounterSkip, maxHACounterSkip)
	}
	if h.ExportFile == "" && h.ImportFile == "" {
		if h.KeyHex != "" || h.ExportInterval != "" || h.CounterSkip != 0 {
			return fieldErr("ha", "needs export_file or import_file")
		}
		return nil
	}
	if _, err := c.HAKey(); err != nil {
		return err
	}
	return nil
}

// HAKey returns ha.key_hex decoded.
func (c *Config) HAKey() ([32]byte, error) {
	var k [32]byte
	// Length first, so that the key never reaches an error message.
	if len(c.HA.KeyHex) != 64 {
		return k, fieldErr("ha.key_hex", "want 64 hex digits (required with ha.export_file or ha.import_file)")
	}
	if _, err := hex.Decode(k[:], []byte(c.HA.KeyHex)); err != nil {
		return k, fieldErr("ha.key_hex", "want 64 hex digits")
	}
	if k == ([32]byte{}) {
		return k, fieldErr("ha.key_hex", "all zeros; use a random key")
	}
	return k, nil
}

// HAExportInterval returns ha.export_interval or its default.
func (c *Config) HAExportInterval() time.Duration {
	d, err := parseDuration("ha.export_interval", c.HA.ExportInterval, 10*time.Millisecond, time.Minute, false)
	if err != nil || d == 0 {
		return DefaultHAExportInterval
	}
	return d
}

// HACounterSkip returns ha.counter_skip or its default.
func (c *Config) HACounterSkip() uint64 {
	if c.HA.CounterSkip > 0 && c.HA.CounterSkip <= maxHACounterSkip {
		return uint64(c.HA.CounterSkip)
	}
	return DefaultHACounterSkip
}
