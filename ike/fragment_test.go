package ike

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	ikecrypto "github.com/qcdvpn/qcdvpn/ike/crypto"
	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// fragSuites are the SK ciphers the fragmentation tests run with.
var fragSuites = map[string]Suite{
	"aes256gcm16": {Encr: ikecrypto.EncrAESGCM16, KeyBits: 256, PRF: ikecrypto.PRFHMACSHA2_256},
	"aes128gcm8":  {Encr: ikecrypto.EncrAESGCM8, KeyBits: 128, PRF: ikecrypto.PRFHMACSHA2_256},
	"chacha20":    {Encr: ikecrypto.EncrChaCha20Poly1305, PRF: ikecrypto.PRFHMACSHA2_256},
	"aes128-sha256": {Encr: ikecrypto.EncrAESCBC, KeyBits: 128, Integ: ikecrypto.IntegHMACSHA2_256_128,
		PRF: ikecrypto.PRFHMACSHA2_256},
	"aes256-sha1": {Encr: ikecrypto.EncrAESCBC, KeyBits: 256, Integ: ikecrypto.IntegHMACSHA1_96,
		PRF: ikecrypto.PRFHMACSHA1},
}

// fragKeys derives both ends of one IKE SA: what ini seals, resp opens.
func fragKeys(t testing.TB, s Suite) (ini, resp *saKeys) {
	t.Helper()
	skeyseed := bytes.Repeat([]byte{0x5a}, 32)
	ni, nr := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	var err error
	if ini, err = deriveKeys(s, skeyseed, ni, nr, 0x1111, 0x2222, true); err != nil {
		t.Fatal(err)
	}
	if resp, err = deriveKeys(s, skeyseed, ni, nr, 0x1111, 0x2222, false); err != nil {
		t.Fatal(err)
	}
	return ini, resp
}

// fragHeader is the header of an IKE_AUTH request with the given ID.
func fragHeader(id uint32) wire.Header {
	return wire.Header{SPIi: 0x1111, SPIr: 0x2222, Exchange: wire.ExchangeIKEAuth, Flags: wire.FlagInitiator, MessageID: id}
}

// fragInner is an IKE_AUTH-like payload chain with a CERT of certLen bytes.
func fragInner(certLen int) []wire.Payload {
	cert := make([]byte, certLen)
	for i := range cert {
		cert[i] = byte(i * 7)
	}
	return []wire.Payload{
		&wire.ID{IDType: wire.IDFQDN, Data: []byte("client.example.org")},
		&wire.Cert{Encoding: 4, Data: cert},
		&wire.Auth{Method: 14, Data: bytes.Repeat([]byte{0xab}, 256)},
		&wire.Notify{NotifyType: wire.NotifyInitialContact},
	}
}

// sealFragment builds one SKF message by hand, so tests can send any
// numbering or content.
func sealFragment(t testing.TB, k *saKeys, h wire.Header, next wire.PayloadType, num, total uint16, content []byte) []byte {
	t.Helper()
	f := &wire.EncryptedFragment{InnerNext: next, Number: num, Total: total, Body: make([]byte, k.out.BodyLen(len(content)))}
	m := wire.Message{Header: h, Payloads: []wire.Payload{f}}
	raw, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	split := len(raw) - len(f.Body)
	if err := k.out.Seal(raw[:split], raw[split:], content, nil); err != nil {
		t.Fatal(err)
	}
	return raw
}

// mustFragments seals inner into at least two fragments.
func mustFragments(t testing.TB, k *saKeys, h wire.Header, inner []wire.Payload, maxDatagram int) [][]byte {
	t.Helper()
	frags, err := k.sealFragmented(h, inner, maxDatagram, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) < 2 {
		t.Fatalf("got %d datagrams, want fragments", len(frags))
	}
	return frags
}

// feed adds datagrams in order and checks that only the last completes.
func feed(t *testing.T, r *reassembler, k *saKeys, dgs [][]byte) (wire.Header, []wire.Payload) {
	t.Helper()
	for i, d := range dgs {
		h, ps, complete, err := r.add(d, k)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if complete != (i == len(dgs)-1) {
			t.Fatalf("datagram %d of %d: complete = %v", i, len(dgs), complete)
		}
		if complete {
			return h, ps
		}
	}
	return wire.Header{}, nil
}

func TestMaxDatagramFor(t *testing.T) {
	for _, c := range []struct {
		ipv6, encap bool
		want        int
	}{{false, false, 548}, {false, true, 544}, {true, false, 1232}, {true, true, 1228}} {
		if got := maxDatagramFor(c.ipv6, c.encap); got != c.want {
			t.Errorf("maxDatagramFor(%v, %v) = %d, want %d", c.ipv6, c.encap, got, c.want)
		}
	}
}

func TestFragmentRoundTrip(t *testing.T) {
	seen := map[int]bool{}
	for name, s := range fragSuites {
		ini, resp := fragKeys(t, s)
		for _, maxDG := range []int{maxDatagramFor(false, true), maxDatagramFor(true, false), 300} {
			for _, certLen := range []int{100, 700, 1500, 2600, 3600, 4700, 5000, 5800, 6900, 8000, 9100, 10200} {
				h := fragHeader(1)
				inner := fragInner(certLen)
				dgs, err := ini.sealFragmented(h, inner, maxDG, nil)
				if err != nil {
					t.Fatalf("%s/%d/%d: %v", name, maxDG, certLen, err)
				}
				seen[len(dgs)] = true
				checkFragments(t, dgs, maxDG, h)
				var gotH wire.Header
				var got []wire.Payload
				if len(dgs) == 1 {
					gotH, got, err = resp.open(dgs[0])
					if err != nil {
						t.Fatalf("%s/%d/%d: open: %v", name, maxDG, certLen, err)
					}
					if _, _, _, err := newReassembler(0, 0).add(dgs[0], resp); !errors.Is(err, errNotFragment) {
						t.Fatalf("add(SK message) error = %v, want errNotFragment", err)
					}
				} else {
					gotH, got = feed(t, newReassembler(0, 0), resp, dgs)
				}
				if !reflect.DeepEqual(got, inner) {
					t.Fatalf("%s/%d/%d: inner payloads differ after %d datagrams: %s", name, maxDG, certLen, len(dgs), wire.Summary(got))
				}
				if gotH.MessageID != 1 || gotH.Exchange != wire.ExchangeIKEAuth || gotH.NextPayload != wire.PayloadSK {
					t.Fatalf("%s: reassembled header %+v", name, gotH)
				}
			}
		}
	}
	for n := 1; n <= 10; n++ {
		if !seen[n] {
			t.Errorf("no case produced %d datagrams", n)
		}
	}
}

// checkFragments checks sizes, headers and SKF numbering of sealed datagrams.
func checkFragments(t *testing.T, dgs [][]byte, maxDG int, h wire.Header) {
	t.Helper()
	ivs := map[string]bool{}
	for i, d := range dgs {
		if len(d) > maxDG {
			t.Fatalf("datagram %d is %d bytes, limit %d", i, len(d), maxDG)
		}
		m, err := wire.Parse(d)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if int(m.Header.Length) != len(d) || m.Header.MessageID != h.MessageID || m.Header.Exchange != h.Exchange ||
			m.Header.Flags != h.Flags || m.Header.SPIi != h.SPIi || m.Header.SPIr != h.SPIr {
			t.Fatalf("datagram %d header %+v", i, m.Header)
		}
		if len(dgs) == 1 {
			if _, ok := m.Payloads[0].(*wire.Encrypted); !ok {
				t.Fatalf("single datagram carries %s, want SK", wire.Summary(m.Payloads))
			}
			return
		}
		f, ok := m.Payloads[0].(*wire.EncryptedFragment)
		if !ok || len(m.Payloads) != 1 || m.Header.NextPayload != wire.PayloadSKF {
			t.Fatalf("datagram %d carries %s, want one SKF", i, wire.Summary(m.Payloads))
		}
		if int(f.Number) != i+1 || int(f.Total) != len(dgs) {
			t.Fatalf("datagram %d is fragment %d/%d of %d", i, f.Number, f.Total, len(dgs))
		}
		if want := map[bool]wire.PayloadType{true: wire.PayloadIDi, false: wire.PayloadNone}[i == 0]; f.InnerNext != want {
			t.Fatalf("fragment %d Next Payload %s, want %s", f.Number, f.InnerNext, want)
		}
		iv := string(f.Body[:8])
		if ivs[iv] {
			t.Fatalf("fragment %d reuses an IV", f.Number)
		}
		ivs[iv] = true
	}
}

func TestFragmentOutOfOrderAndDuplicates(t *testing.T) {
	for name, s := range fragSuites {
		t.Run(name, func(t *testing.T) {
			ini, resp := fragKeys(t, s)
			inner := fragInner(5000)
			frags := mustFragments(t, ini, fragHeader(3), inner, maxDatagramFor(false, false))
			rng := rand.New(rand.NewPCG(1, 2))
			for trial := range 20 {
				order := rng.Perm(len(frags))
				r := newReassembler(0, 0)
				missing := len(frags)
				for step := 0; missing > 0; step++ {
					// Every other step replays a fragment already sent.
					var i int
					if step%2 == 1 {
						i = order[rng.IntN(len(frags)-missing)]
					} else {
						i = order[len(frags)-missing]
						missing--
					}
					_, ps, complete, err := r.add(frags[i], resp)
					if err != nil {
						t.Fatalf("trial %d: fragment %d: %v", trial, i+1, err)
					}
					if complete != (missing == 0 && step%2 == 0) {
						t.Fatalf("trial %d step %d: complete = %v with %d missing", trial, step, complete, missing)
					}
					if complete && !reflect.DeepEqual(ps, inner) {
						t.Fatalf("trial %d: payloads differ", trial)
					}
				}
				if r.buffered != 0 || r.dirs[0].p != nil {
					t.Fatalf("trial %d: %d bytes still buffered after completion", trial, r.buffered)
				}
			}
		})
	}
}

func TestFragmentTamperedNotStored(t *testing.T) {
	for name, s := range fragSuites {
		t.Run(name, func(t *testing.T) {
			ini, resp := fragKeys(t, s)
			inner := fragInner(3000)
			frags := mustFragments(t, ini, fragHeader(1), inner, maxDatagramFor(true, true))
			r := newReassembler(0, 0)
			for i := range frags {
				for _, at := range []int{len(frags[i]) - 1, len(frags[i]) / 2, 40, 19} {
					bad := bytes.Clone(frags[i])
					bad[at] ^= 0x40 // ICV, ciphertext, IV, Flags in the AAD
					_, _, complete, err := r.add(bad, resp)
					if complete || !errors.Is(err, ikecrypto.ErrAuthFailed) {
						t.Fatalf("tampered fragment %d at %d: complete %v, err %v", i+1, at, complete, err)
					}
				}
				if r.buffered != 0 || r.dirs[0].p != nil {
					t.Fatalf("tampered fragment stored: %d bytes buffered", r.buffered)
				}
			}
			// A forged fragment of wrong keys with a higher Total must not
			// restart the reassembly either.
			_, other := fragKeys(t, fragSuites["aes256-sha1"])
			if s == fragSuites["aes256-sha1"] {
				_, other = fragKeys(t, fragSuites["aes256gcm16"])
			}
			forged := sealFragment(t, other, fragHeader(1), wire.PayloadIDi, 1, uint16(len(frags)+1), []byte("forged"))
			if _, _, _, err := r.add(frags[0], resp); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := r.add(forged, resp); err == nil {
				t.Fatal("forged fragment accepted")
			}
			_, ps := feed(t, r, resp, frags[1:])
			if !reflect.DeepEqual(ps, inner) {
				t.Fatal("payloads differ")
			}
		})
	}
}

func TestFragmentLimits(t *testing.T) {
	ini, resp := fragKeys(t, fragSuites["aes256gcm16"])
	frags := mustFragments(t, ini, fragHeader(1), fragInner(5000), maxDatagramFor(true, false))
	n := len(frags)

	// Too many fragments: refused up front, nothing stored.
	r := newReassembler(n-1, 0)
	for i, f := range frags {
		if _, _, _, err := r.add(f, resp); !errors.Is(err, errFragmentLimit) {
			t.Fatalf("fragment %d of %d with limit %d: err %v", i+1, n, n-1, err)
		}
	}
	if r.buffered != 0 {
		t.Fatalf("%d bytes buffered", r.buffered)
	}
	// A forged fragment announcing too many fragments is an auth failure,
	// never errFragmentLimit, so it cannot make the caller drop the SA.
	bad := bytes.Clone(frags[0])
	bad[len(bad)-1] ^= 1
	if _, _, _, err := r.add(bad, resp); !errors.Is(err, ikecrypto.ErrAuthFailed) {
		t.Fatalf("forged over-limit fragment: err %v", err)
	}

	// Too many bytes: the partial message is discarded.
	r = newReassembler(0, 2500)
	var limited bool
	for i, f := range frags {
		_, _, complete, err := r.add(f, resp)
		if complete {
			t.Fatal("completed despite the byte limit")
		}
		if errors.Is(err, errFragmentLimit) {
			limited = true
			if r.buffered != 0 || r.dirs[0].p != nil {
				t.Fatalf("fragment %d: %d bytes still buffered after the limit", i+1, r.buffered)
			}
		} else if err != nil {
			t.Fatal(err)
		}
		if r.buffered > 2500 {
			t.Fatalf("%d bytes buffered, limit 2500", r.buffered)
		}
	}
	if !limited {
		t.Fatal("byte limit never reached")
	}

	// The byte limit spans both directions.
	r = newReassembler(0, 2500)
	respH := fragHeader(1)
	respH.Flags = wire.FlagResponse
	resps := mustFragments(t, resp, respH, fragInner(5000), maxDatagramFor(true, false))
	if _, _, _, err := r.add(frags[0], resp); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.add(resps[0], ini); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.add(resps[1], ini); !errors.Is(err, errFragmentLimit) {
		t.Fatalf("third fragment across directions: err %v", err)
	}
	if r.dirs[0].p == nil || r.dirs[1].p != nil || r.buffered > 2500 {
		t.Fatalf("after the limit: request partial %v, response partial %v, %d bytes", r.dirs[0].p != nil, r.dirs[1].p != nil, r.buffered)
	}
}

func TestFragmentTotalChanges(t *testing.T) {
	ini, resp := fragKeys(t, fragSuites["aes128-sha256"])
	inner := fragInner(4000)
	big := mustFragments(t, ini, fragHeader(2), inner, maxDatagramFor(true, true))
	small := mustFragments(t, ini, fragHeader(2), inner, maxDatagramFor(false, true))
	if len(small) <= len(big) {
		t.Fatalf("refragmenting gave %d fragments after %d", len(small), len(big))
	}
	r := newReassembler(0, 0)
	// Start with all but one fragment of the larger set.
	for _, f := range big[:len(big)-1] {
		if _, _, complete, err := r.add(f, resp); err != nil || complete {
			t.Fatalf("complete %v, err %v", complete, err)
		}
	}
	// The sender refragments with a smaller threshold: a higher Total starts
	// over; the missing fragment of the old set is then ignored.
	if _, _, _, err := r.add(small[1], resp); err != nil {
		t.Fatal(err)
	}
	if p := r.dirs[0].p; p == nil || p.total != uint16(len(small)) || p.have != 1 {
		t.Fatalf("after a higher Total the partial is %+v", p)
	}
	for _, f := range big {
		if _, _, complete, err := r.add(f, resp); err != nil || complete {
			t.Fatalf("lower Total: complete %v, err %v", complete, err)
		}
	}
	if r.dirs[0].p.have != 1 {
		t.Fatalf("a fragment with a lower Total was stored")
	}
	_, ps := feed(t, r, resp, append([][]byte{small[0]}, small[2:]...))
	if !reflect.DeepEqual(ps, inner) {
		t.Fatal("payloads differ")
	}
}

func TestFragmentMessageIDs(t *testing.T) {
	ini, resp := fragKeys(t, fragSuites["aes256gcm16"])
	inner := fragInner(3000)
	maxDG := maxDatagramFor(true, false)
	m5 := mustFragments(t, ini, fragHeader(5), inner, maxDG)
	m6 := mustFragments(t, ini, fragHeader(6), inner, maxDG)
	m7 := mustFragments(t, ini, fragHeader(7), inner, maxDG)

	r := newReassembler(0, 0)
	// No expectation: the first message wins until it completes.
	if _, _, _, err := r.add(m5[0], resp); err != nil {
		t.Fatal(err)
	}
	for _, f := range m6 {
		if _, _, complete, err := r.add(f, resp); err != nil || complete {
			t.Fatalf("other ID: complete %v, err %v", complete, err)
		}
	}
	if r.dirs[0].p.header.MessageID != 5 {
		t.Fatal("a fragment of another ID replaced the partial message")
	}
	// Expecting another ID drops the partial message.
	r.expect(false, 5) // keeps the partial of 5
	if r.dirs[0].p == nil {
		t.Fatal("expect(current ID) dropped the partial")
	}
	r.expect(false, 6)
	if r.dirs[0].p != nil || r.buffered != 0 {
		t.Fatal("expect(new ID) kept the partial")
	}
	feed(t, r, resp, m6)
	// Now expecting 7: a replayed fragment 1 of 6 is reported as a
	// retransmission, the others ignored, unexpected IDs ignored.
	r.expect(false, 7)
	h, _, _, err := r.add(m6[0], resp)
	if !errors.Is(err, errRetransmittedFragment) || h.MessageID != 6 {
		t.Fatalf("replayed fragment 1: id %d, err %v", h.MessageID, err)
	}
	bad := bytes.Clone(m6[0])
	bad[len(bad)-1] ^= 1
	if _, _, _, err := r.add(bad, resp); !errors.Is(err, ikecrypto.ErrAuthFailed) {
		t.Fatalf("forged old fragment 1: err %v", err)
	}
	for _, f := range append(m6[1:], m5[1:]...) {
		if _, _, complete, err := r.add(f, resp); err != nil || complete {
			t.Fatalf("stale fragment: complete %v, err %v", complete, err)
		}
	}
	if r.dirs[0].p != nil {
		t.Fatal("stale fragments stored")
	}
	// Requests and responses are reassembled side by side.
	respH := fragHeader(7)
	respH.Flags = wire.FlagResponse
	rs := mustFragments(t, resp, respH, inner, maxDG)
	if _, _, _, err := r.add(m7[0], resp); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.add(rs[0], ini); err != nil {
		t.Fatal(err)
	}
	if _, ps := feed(t, r, resp, m7[1:]); !reflect.DeepEqual(ps, inner) {
		t.Fatal("request payloads differ")
	}
	if h, ps := feed(t, r, ini, rs[1:]); !reflect.DeepEqual(ps, inner) || !h.IsResponse() {
		t.Fatal("response payloads differ")
	}
	// reset discards partial messages.
	r.add(m7[0], resp)
	r.reset()
	if r.dirs[0].p != nil || r.buffered != 0 {
		t.Fatal("reset kept a partial message")
	}
}

func TestFragmentInconsistentHeader(t *testing.T) {
	ini, resp := fragKeys(t, fragSuites["aes256gcm16"])
	h := fragHeader(1)
	r := newReassembler(0, 0)
	if _, _, _, err := r.add(sealFragment(t, ini, h, wire.PayloadNotify, 1, 2, []byte{0, 0}), resp); err != nil {
		t.Fatal(err)
	}
	h2 := h
	h2.Exchange = wire.ExchangeInformational
	if _, _, _, err := r.add(sealFragment(t, ini, h2, wire.PayloadNone, 2, 2, []byte{0, 8}), resp); err == nil {
		t.Fatal("fragment of another exchange accepted")
	}
	if r.dirs[0].p.have != 1 {
		t.Fatal("inconsistent fragment stored")
	}
	// The joined content must parse: a Notify header cut across fragments.
	_, ps, complete, err := r.add(sealFragment(t, ini, h, wire.PayloadNone, 2, 2, []byte{0, 8, 0, 0, 0x40, 0}), resp)
	if err != nil || !complete || len(ps) != 1 {
		t.Fatalf("complete %v, err %v, payloads %s", complete, err, wire.Summary(ps))
	}
	// Malformed inner content is an error and leaves nothing behind.
	r.add(sealFragment(t, ini, h, wire.PayloadNotify, 1, 2, []byte{0, 0}), resp)
	if _, _, _, err := r.add(sealFragment(t, ini, h, wire.PayloadNone, 2, 2, []byte{0, 99}), resp); err == nil {
		t.Fatal("malformed inner payloads accepted")
	}
	if r.dirs[0].p != nil || r.buffered != 0 {
		t.Fatal("malformed message kept")
	}
}

func TestFragmentNotFragment(t *testing.T) {
	ini, resp := fragKeys(t, fragSuites["aes256gcm16"])
	r := newReassembler(0, 0)
	sk, err := ini.seal(fragHeader(1), fragInner(10), nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := (&wire.Message{Header: fragHeader(0), Payloads: []wire.Payload{&wire.Nonce{Data: make([]byte, 32)}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range [][]byte{sk, plain, nil, {1, 2, 3}, bytes.Repeat([]byte{0}, 40)} {
		if _, _, _, err := r.add(d, resp); !errors.Is(err, errNotFragment) {
			t.Fatalf("%x: err %v, want errNotFragment", d, err)
		}
	}
	// An SKF message that does not parse is an error of its own.
	f := sealFragment(t, ini, fragHeader(1), wire.PayloadNone, 2, 2, []byte{1})
	f[wire.HeaderLen+5] = 0 // Fragment Number 0
	if _, _, _, err := r.add(f, resp); err == nil || errors.Is(err, errNotFragment) {
		t.Fatalf("Fragment Number 0: err %v", err)
	}
	// No keys yet.
	if _, _, _, err := r.add(sealFragment(t, ini, fragHeader(1), wire.PayloadNone, 2, 2, []byte{1}), nil); err == nil {
		t.Fatal("fragment accepted without keys")
	}
}

func TestSealFragmentedErrors(t *testing.T) {
	ini, _ := fragKeys(t, fragSuites["aes128-sha256"])
	if _, err := ini.sealFragmented(fragHeader(1), fragInner(2000), 60, nil); err == nil {
		t.Fatal("no error for a 60-byte fragment size")
	}
	if _, err := ini.sealFragmented(fragHeader(1), []wire.Payload{nil}, 1200, nil); err == nil {
		t.Fatal("no error for a nil payload")
	}
	// The smallest size that still fits one byte per fragment works.
	c := ini.out
	smallest := skfOverhead + c.BodyLen(1)
	frags, err := ini.sealFragmented(fragHeader(1), []wire.Payload{&wire.VendorID{Data: make([]byte, 40)}}, smallest, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frags {
		if len(f) > smallest {
			t.Fatalf("fragment of %d bytes, limit %d", len(f), smallest)
		}
	}
	if maxFragmentContent(c, smallest-1) >= 1 {
		t.Fatal("maxFragmentContent too generous")
	}
}

func FuzzReassemble(f *testing.F) {
	ini, resp := fragKeys(f, fragSuites["aes256gcm16"])
	frags, err := ini.sealFragmented(fragHeader(1), fragInner(1500), 600, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, d := range frags {
		f.Add(d, []byte{0, 0, 0, 36, 0, 8, 0, 0}, uint16(1), uint16(2), uint8(wire.PayloadNotify))
	}
	f.Add([]byte{}, []byte{}, uint16(0), uint16(0), uint8(0))
	f.Fuzz(func(t *testing.T, raw, content []byte, num, total uint16, next uint8) {
		r := newReassembler(8, 4096)
		r.add(raw, resp)
		// Authentic fragments with fuzzed numbering and content exercise
		// the reassembly and the parsing of the joined payloads.
		if total == 0 || num == 0 || num > total {
			return
		}
		for _, n := range []uint16{num, 1, total, num} {
			p := wire.PayloadNone
			if n == 1 {
				p = wire.PayloadType(next)
			}
			r.add(sealFragment(t, ini, fragHeader(1), p, n, total, content), resp)
			if r.buffered > 4096 || r.buffered < 0 {
				t.Fatalf("%d bytes buffered", r.buffered)
			}
		}
		r.add(raw, resp)
	})
}
