package gateway

import "testing"

// TestRouterSkipSeqs: after a takeover's skipSeqs the router seals from
// the given sequence number on, and refuses inbound packets up to the
// given top (what the client sent to the dead member, replayed) while
// later ones pass.
func TestRouterSkipSeqs(t *testing.T) {
	s := twoClients(t)
	gw, c1 := s.gw, s.c1
	sl := newSealer(t, s.cl1) // seals from 2^20 on
	old := sl.seal(t, ipPacket("10.100.0.1", "10.200.0.7", 1))
	if !gw.r.skipSeqs(s.g1.SPIIn, 5000, 1<<20+10) {
		t.Fatal("skipSeqs: no such pair")
	}
	if out, in, ok := gw.r.seqs(s.g1.SPIIn); !ok || out != 4999 || in != 1<<20+10 {
		t.Fatalf("seqs after skip = %d, %d, %v", out, in, ok)
	}
	deliver := func(pkt []byte) { s.net.inject(gw.addr, c1.addr, pkt) }
	deliver(old) // sequence number 2^20, below the skipped top
	mustNoPacket(t, gw, "a packet from before the takeover")
	for range 10 {
		sl.seal(t, ipPacket("10.100.0.1", "10.200.0.7", 2)) // spend up to 2^20+10
	}
	fresh := ipPacket("10.100.0.1", "10.200.0.7", 3)
	deliver(sl.seal(t, fresh))
	mustPacket(t, gw, fresh, "the first packet above the skipped top")
	if st := gw.r.Stats(); st.DropReplay != 1 {
		t.Errorf("DropReplay = %d, want 1", st.DropReplay)
	}
	// Outbound: the next sealed packet carries sequence number 5000.
	down := ipPacket("10.200.0.7", "10.100.0.1", 4)
	if !gw.send(t, down) {
		t.Fatal("gateway did not send")
	}
	mustPacket(t, c1, down, "downstream after the skip")
	if _, in, _ := c1.r.seqs(s.cl1.SPIIn); in != 5000 {
		t.Errorf("the client received sequence number %d, want 5000", in)
	}
}
