package wire

import (
	"encoding/binary"
	"fmt"
)

// MessageIDSync is the data of N(IKEV2_MESSAGE_ID_SYNC) (RFC 6311 §6.3):
// a nonce the response echoes and the sender's next request ID and the
// request ID it expects next from the other side.
type MessageIDSync struct {
	Nonce uint32
	// ExpectedSend is the message ID of the sender's next request.
	ExpectedSend uint32
	// ExpectedRecv is the message ID the sender expects in the next
	// request it receives.
	ExpectedRecv uint32
}

// MessageIDSyncLen is the length of N(IKEV2_MESSAGE_ID_SYNC) data.
const MessageIDSyncLen = 12

// ParseMessageIDSync decodes N(IKEV2_MESSAGE_ID_SYNC) data; anything but
// exactly 12 octets is an error.
func ParseMessageIDSync(b []byte) (MessageIDSync, error) {
	if len(b) != MessageIDSyncLen {
		return MessageIDSync{}, fmt.Errorf("wire: IKEV2_MESSAGE_ID_SYNC data is %d octets, want %d", len(b), MessageIDSyncLen)
	}
	return MessageIDSync{
		Nonce:        binary.BigEndian.Uint32(b),
		ExpectedSend: binary.BigEndian.Uint32(b[4:]),
		ExpectedRecv: binary.BigEndian.Uint32(b[8:]),
	}, nil
}

// Encode returns the notify data.
func (m MessageIDSync) Encode() []byte {
	b := make([]byte, MessageIDSyncLen)
	binary.BigEndian.PutUint32(b, m.Nonce)
	binary.BigEndian.PutUint32(b[4:], m.ExpectedSend)
	binary.BigEndian.PutUint32(b[8:], m.ExpectedRecv)
	return b
}

// ParseReplayCounterSync decodes N(IPSEC_REPLAY_COUNTER_SYNC) data (RFC
// 6311 §6.4): the delta is 8 octets when the Child SAs use extended
// sequence numbers, else 4.
func ParseReplayCounterSync(b []byte, esn bool) (uint64, error) {
	switch {
	case esn && len(b) == 8:
		return binary.BigEndian.Uint64(b), nil
	case !esn && len(b) == 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	}
	want := 4
	if esn {
		want = 8
	}
	return 0, fmt.Errorf("wire: IPSEC_REPLAY_COUNTER_SYNC data is %d octets, want %d (esn=%v)", len(b), want, esn)
}

// EncodeReplayCounterSync returns the notify data for delta: 8 octets with
// ESN, else 4 (a delta above 2^32-1 is then capped).
func EncodeReplayCounterSync(delta uint64, esn bool) []byte {
	if esn {
		return binary.BigEndian.AppendUint64(nil, delta)
	}
	return binary.BigEndian.AppendUint32(nil, uint32(min(delta, 1<<32-1)))
}
