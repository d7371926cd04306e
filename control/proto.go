package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// MaxRequestSize bounds one request line: a profile plus a little.
const MaxRequestSize = sdk.MaxProfileSize + 4096

// maxReplySize bounds one reply or event line read by the Client.
const maxReplySize = 1 << 20

// Commands of the protocol.
const (
	CmdStatus     = "status"
	CmdConnect    = "connect"
	CmdDisconnect = "disconnect"
	CmdDown       = "down"
	CmdEvents     = "events"
)

// Request is one request line.
type Request struct {
	// Cmd is one of the Cmd* constants.
	Cmd string `json:"cmd"`
	// Profile is the profile document of a connect; absent: reconnect
	// with the current profile.
	Profile json.RawMessage `json:"profile,omitempty"`
}

// Reply is one reply line.
type Reply struct {
	OK     bool    `json:"ok"`
	Error  string  `json:"error,omitempty"`
	Status *Status `json:"status,omitempty"`
}

// DecodeRequest parses one request line strictly: a single JSON object
// with a known "cmd" string, "profile" (an object) only with connect, no
// other, duplicate or miscased keys and nothing after it. The error is one
// line and never quotes the profile (it may hold secrets).
func DecodeRequest(line []byte) (Request, error) {
	var req Request
	if len(line) > MaxRequestSize {
		return req, fmt.Errorf("request too large (%d bytes; the limit is %d)", len(line), MaxRequestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return req, errors.New("request: invalid JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return req, errors.New("request: want a JSON object")
	}
	seenCmd, seenProfile := false, false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, errors.New("request: invalid JSON")
		}
		key, _ := tok.(string)
		switch key {
		case "cmd":
			if seenCmd {
				return req, errors.New(`request: duplicate field "cmd"`)
			}
			seenCmd = true
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return req, errors.New("request: invalid JSON")
			}
			if err := json.Unmarshal(raw, &req.Cmd); err != nil || len(raw) == 0 || raw[0] != '"' {
				return req, errors.New("request: cmd: want a string")
			}
		case "profile":
			if seenProfile {
				return req, errors.New(`request: duplicate field "profile"`)
			}
			seenProfile = true
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return req, errors.New("request: invalid JSON")
			}
			if len(raw) == 0 || raw[0] != '{' {
				if string(raw) != "null" {
					return req, errors.New("request: profile: want a JSON object")
				}
				raw = nil
			}
			req.Profile = raw
		default:
			return req, fmt.Errorf("request: unknown field %s", quoteShort(key))
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return req, errors.New("request: invalid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, errors.New("request: data after the JSON object")
	}
	switch req.Cmd {
	case CmdStatus, CmdDisconnect, CmdDown, CmdEvents:
		if req.Profile != nil {
			return req, fmt.Errorf("request: profile: only allowed with %q", CmdConnect)
		}
	case CmdConnect:
	case "":
		if !seenCmd {
			return req, errors.New("request: cmd: required")
		}
		return req, errors.New(`request: cmd: "" is not one of status, connect, disconnect, down, events`)
	default:
		return req, fmt.Errorf("request: cmd: %s is not one of status, connect, disconnect, down, events", quoteShort(req.Cmd))
	}
	return req, nil
}

// quoteShort quotes s for an error, cut to 40 bytes.
func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// oneLine keeps an error on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// errLineTooLong is readLine's error for an oversized line.
var errLineTooLong = errors.New("line too long")

// readLine reads one '\n'-terminated line of at most max bytes (without
// the newline). A final line without a newline is returned with io.EOF
// only if it is empty.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > max+1 {
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}

// eventJSON is the JSON form of sdk.Event (see sdk.Event.MarshalJSON).
type eventJSON struct {
	Time         string     `json:"time"`
	Type         string     `json:"type"`
	Gateway      string     `json:"gateway"`
	IKESPIi      string     `json:"ike_spi_i"`
	IKESPIr      string     `json:"ike_spi_r"`
	VirtualIP    string     `json:"virtual_ip"`
	IKESuite     string     `json:"ike_suite"`
	ESPSuite     string     `json:"esp_suite"`
	Reason       string     `json:"reason"`
	Error        string     `json:"error"`
	Source       string     `json:"source"`
	From         string     `json:"from"`
	To           string     `json:"to"`
	SinceInbound float64    `json:"since_inbound_ms"`
	DNS          []string   `json:"dns"`
	Resumed      bool       `json:"resumed"`
	Stats        *sdk.Stats `json:"stats"`
	Elapsed      float64    `json:"elapsed_ms"`
}

// DecodeEvent parses one event line (sdk.Event's JSON, as the events
// stream and `qcdvpn up --events json` write it) back into an sdk.Event.
// Unknown fields are ignored, so that newer servers can add some.
func DecodeEvent(line []byte) (sdk.Event, error) {
	var j eventJSON
	if err := json.Unmarshal(line, &j); err != nil {
		return sdk.Event{}, fmt.Errorf("event: invalid JSON: %s", oneLine(err))
	}
	if j.Type == "" {
		return sdk.Event{}, errors.New("event: type: required")
	}
	e := sdk.Event{
		Type: sdk.EventType(j.Type), Gateway: j.Gateway, IKESPIi: j.IKESPIi, IKESPIr: j.IKESPIr,
		VirtualIP: j.VirtualIP, IKESuite: j.IKESuite, ESPSuite: j.ESPSuite, Reason: j.Reason,
		Error: j.Error, Source: j.Source, From: j.From, To: j.To, DNS: j.DNS, Resumed: j.Resumed,
		Stats:        j.Stats,
		SinceInbound: time.Duration(j.SinceInbound * float64(time.Millisecond)),
		Elapsed:      time.Duration(j.Elapsed * float64(time.Millisecond)),
	}
	if j.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, j.Time)
		if err != nil {
			return sdk.Event{}, errors.New("event: time: want RFC 3339")
		}
		e.Time = t
	}
	return e, nil
}
