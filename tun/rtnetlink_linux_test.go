package tun

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzParseAnswers feeds arbitrary kernel "answers" to the parsers: they must never panic.
func FuzzParseAnswers(f *testing.F) {
	ack := make([]byte, 36)
	binary.NativeEndian.PutUint32(ack[0:], 36)
	binary.NativeEndian.PutUint16(ack[4:], unix.NLMSG_ERROR)
	binary.NativeEndian.PutUint32(ack[8:], 7)
	f.Add(ack)
	f.Add(append(ack[:16:16], 0xff, 0xff, 0xff))
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseAnswers(b, 7, func(_ uint16, body []byte) { parseRule(body) })
		extAckMsg(b)
	})
}

func TestParseAnswers(t *testing.T) {
	msg := func(typ, flags uint16, seq uint32, body []byte) []byte {
		b := make([]byte, 16, 16+len(body))
		binary.NativeEndian.PutUint32(b[0:], uint32(16+len(body)))
		binary.NativeEndian.PutUint16(b[4:], typ)
		binary.NativeEndian.PutUint16(b[6:], flags)
		binary.NativeEndian.PutUint32(b[8:], seq)
		return append(b, body...)
	}
	errBody := make([]byte, nlmsgerrLen)
	code := -int32(unix.EEXIST)
	binary.NativeEndian.PutUint32(errBody, uint32(code))
	var ext attrs
	ext.add(unix.NLMSGERR_ATTR_MSG, []byte("nope\x00"))
	withText := append(append([]byte{}, errBody...), ext.b...)

	// A stale answer (seq 6) is skipped; the error for seq 7 carries its extended text.
	b := append(msg(unix.NLMSG_ERROR, 0, 6, make([]byte, nlmsgerrLen)), msg(unix.NLMSG_ERROR, unix.NLM_F_ACK_TLVS, 7, withText)...)
	done, err := parseAnswers(b, 7, nil)
	if !done || err == nil || err.Error() != "file exists (nope)" {
		t.Errorf("got done=%v err=%v", done, err)
	}
	// A dump: two entries then DONE.
	rule := ruleMsg(ruleSpec{family: unix.AF_INET, prio: 5, table: 51900, fwmark: 51901, notMark: true})
	var seen []ruleInfo
	b = append(append(msg(unix.RTM_NEWRULE, unix.NLM_F_MULTI, 7, rule), msg(unix.RTM_NEWRULE, unix.NLM_F_MULTI, 7, rule)...), msg(unix.NLMSG_DONE, unix.NLM_F_MULTI, 7, make([]byte, 4))...)
	done, err = parseAnswers(b, 7, func(_ uint16, body []byte) {
		if ri, ok := parseRule(body); ok {
			seen = append(seen, ri)
		}
	})
	if !done || err != nil || len(seen) != 2 || seen[0] != (ruleInfo{table: 51900, fwmark: 51901}) {
		t.Errorf("dump: done=%v err=%v seen=%v", done, err, seen)
	}
	// Half a dump: not done yet.
	if done, err := parseAnswers(msg(unix.RTM_NEWRULE, unix.NLM_F_MULTI, 7, rule), 7, nil); done || err != nil {
		t.Errorf("partial dump: done=%v err=%v", done, err)
	}
}
