package ike

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// tokenFor is a stand-in token maker: a value derived from the SPIs.
func tokenFor(spii, spir uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, spii)
	return append(binary.BigEndian.AppendUint64(b, spir), "token-token"...)
}

// notifyLog records what a client's Notifies hook saw.
type notifyLog struct {
	mu  sync.Mutex
	got map[[2]uint64][]wire.NotifyType
	tok map[[2]uint64][]byte
}

func (l *notifyLog) hook(spii, spir uint64, ns []*wire.Notify, rs *ResumeState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]uint64{spii, spir}
	for _, n := range ns {
		l.got[k] = append(l.got[k], n.NotifyType)
		if n.NotifyType == wire.NotifyQCDToken {
			l.tok[k] = n.Data
		}
	}
	if rs == nil || rs.SPIi != spii || rs.SPIr != spir {
		panic("resume state does not describe the SA")
	}
}

func (l *notifyLog) token(spii, spir uint64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tok[[2]uint64{spii, spir}]
}

func (l *notifyLog) has(spii, spir uint64, t wire.NotifyType) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.got[[2]uint64{spii, spir}] {
		if x == t {
			return true
		}
	}
	return false
}

// TestTokensFollowRekeys: after an IKE rekey by either side the client
// holds the new SA's token (RFC 6290 §4.3: in the rekey response when the
// gateway responds, in an INFORMATIONAL when it initiated), and a ticket
// for the new SA (RFC 5723 §4.1); a gratuitous token (§4.4) reaches it too.
func TestTokensFollowRekeys(t *testing.T) {
	for _, who := range []string{"client rekeys", "gateway rekeys"} {
		t.Run(who, func(t *testing.T) {
			leakCheck(t)
			log := &notifyLog{got: map[[2]uint64][]wire.NotifyType{}, tok: map[[2]uint64][]byte{}}
			gwHooks := func(s *Session) Hooks {
				return Hooks{
					Respond: func(spii, spir uint64, rekey bool, req []*wire.Notify, rs *ResumeState) []*wire.Notify {
						var out []*wire.Notify
						if rekey {
							out = append(out, &wire.Notify{NotifyType: wire.NotifyQCDToken, Data: tokenFor(spii, spir)})
						}
						for _, n := range req {
							if n.NotifyType == wire.NotifyTicketRequest {
								out = append(out, &wire.Notify{NotifyType: wire.NotifyTicketLTOpaque, Data: []byte{0, 0, 0, 60, 1, 2, 3}})
							}
						}
						return out
					},
					Announce: func(spii, spir uint64) []*wire.Notify {
						return []*wire.Notify{{NotifyType: wire.NotifyQCDToken, Data: tokenFor(spii, spir)}}
					},
				}
			}
			g := startGateway(t, func(rc *ResponderConfig) { rc.Hooks = gwHooks })
			cc := gwClientConfig(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
			cc.RequestTicket = true
			c, s := gwConnect(t, g, cc)
			c.Start(Hooks{Notifies: log.hook}, Timers{})
			if who == "client rekeys" {
				c.RekeyIKE()
			} else {
				s.RekeyIKE()
			}
			var spii, spir uint64
			gwWaitFor(t, "the new SA's token and ticket at the client", func() bool {
				spii, spir = c.SPIs()
				return spii != c.SPIi && bytes.Equal(log.token(spii, spir), tokenFor(spii, spir)) &&
					log.has(spii, spir, wire.NotifyTicketLTOpaque)
			})
			// A gratuitous replacement under the current SA.
			if !s.SendNotifies([]*wire.Notify{{NotifyType: wire.NotifyQCDToken, Data: bytes.Repeat([]byte{9}, 32)}}) {
				t.Fatal("gateway session ended")
			}
			gwWaitFor(t, "the gratuitous token", func() bool { return bytes.Equal(log.token(spii, spir), bytes.Repeat([]byte{9}, 32)) })
			if c.Err() != nil || s.Err() != nil {
				t.Errorf("sessions ended: %v %v", c.Err(), s.Err())
			}
		})
	}
}
