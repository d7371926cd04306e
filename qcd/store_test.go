package qcd

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestStoreAddInvalidLength(t *testing.T) {
	var logs bytes.Buffer
	s := NewStore(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	sa := SAKey{0x1111, 0x2222}
	secret := []byte("TOPSECRET-TOKEN") // 15 octets: one short
	for _, bad := range [][]byte{nil, secret, tok(129, 0xcd)} {
		if s.Add(sa, bad) {
			t.Fatalf("Add accepted %d octets", len(bad))
		}
	}
	if s.Has(sa) {
		t.Fatal("SA created by invalid tokens")
	}
	out := logs.String()
	if !strings.Contains(out, "len=15") || !strings.Contains(out, "0000000000001111") {
		t.Errorf("log lacks length or SPI: %s", out)
	}
	for _, leak := range []string{"cdcd", "TOPSEC", hex.EncodeToString(secret)} {
		if strings.Contains(strings.ToLower(out), strings.ToLower(leak)) {
			t.Errorf("log leaks token bytes %q: %s", leak, out)
		}
	}
	// Valid tokens are logged without their bytes too.
	logs.Reset()
	if !s.Add(sa, tok(32, 0xab)) {
		t.Fatal("valid token refused")
	}
	if strings.Contains(logs.String(), "abab") {
		t.Errorf("log leaks token: %s", logs.String())
	}
}

func TestStoreHistory(t *testing.T) {
	s := NewStore(nil)
	sa := SAKey{1, 2}
	for i := range 6 {
		s.Add(sa, tok(16, byte(i)))
	}
	got := s.Tokens(sa)
	if len(got) != MaxHistory {
		t.Fatalf("%d tokens held", len(got))
	}
	for i, want := range []byte{5, 4, 3, 2} {
		if got[i][0] != want {
			t.Errorf("Tokens[%d] = %d, want %d", i, got[i][0], want)
		}
	}
	// Re-adding an earlier token makes it current without duplicating it.
	s.Add(sa, tok(16, 3))
	got = s.Tokens(sa)
	if len(got) != 4 || got[0][0] != 3 || got[1][0] != 5 || got[2][0] != 4 || got[3][0] != 2 {
		t.Fatalf("after re-add: %v", got)
	}
	// Copies: changing them or Add's input does not change the store.
	in := tok(16, 7)
	s.Add(sa, in)
	in[0] = 99
	got[0][0] = 99
	if again := s.Tokens(sa); again[0][0] != 7 || again[1][0] != 3 {
		t.Fatal("store aliases caller memory")
	}
	if s.Tokens(SAKey{9, 9}) != nil {
		t.Fatal("tokens for unknown SA")
	}
}

func TestStoreEviction(t *testing.T) {
	s := NewStore(nil)
	for i := range MaxSAs {
		s.Add(SAKey{uint64(i), 1}, tok(16, 1))
	}
	s.AddChild(0xa, SAKey{0, 1})
	s.AddChild(0xb, SAKey{1, 1})
	// SA 0 was given a token longest ago — but refresh it so SA 1 is oldest.
	s.Add(SAKey{0, 1}, tok(16, 2))
	s.Add(SAKey{1000, 1}, tok(16, 1))
	if !s.Has(SAKey{0, 1}) || s.Has(SAKey{1, 1}) || !s.Has(SAKey{1000, 1}) {
		t.Fatal("wrong SA evicted")
	}
	s.mu.RLock()
	n := len(s.sas)
	_, hasA := s.children[0xa]
	_, hasB := s.children[0xb]
	s.mu.RUnlock()
	if n != MaxSAs || hasB || !hasA {
		t.Fatalf("n=%d childA=%v childB=%v", n, hasA, hasB)
	}
}

func TestStoreChildrenBound(t *testing.T) {
	s := NewStore(nil)
	held := SAKey{1, 2}
	s.Add(held, tok(16, 1))
	for i := range MaxChildren {
		s.AddChild(uint32(i), held)
	}
	s.AddChild(0xffff0000, held) // full of live mappings: refused
	s.mu.RLock()
	_, ok := s.children[0xffff0000]
	n := len(s.children)
	s.mu.RUnlock()
	if ok || n != MaxChildren {
		t.Fatalf("full map accepted a mapping (n=%d)", n)
	}
	s.AddChild(6, SAKey{7, 7})   // replacing a key is fine: now an orphan
	s.AddChild(0xffff0001, held) // full again: the orphan makes room
	s.mu.RLock()
	_, orphan := s.children[6]
	_, ok = s.children[0xffff0001]
	s.mu.RUnlock()
	if orphan || !ok {
		t.Fatal("orphans not purged to make room")
	}
}

func TestStoreDeleteRekey(t *testing.T) {
	s := NewStore(nil)
	old, nw := SAKey{1, 2}, SAKey{3, 4}
	s.Add(old, tok(16, 1))
	s.AddChild(0x100, old)
	s.AddChild(0x200, old)
	s.Rekeyed(old, nw)
	if s.Has(old) {
		t.Fatal("old SA kept after rekey")
	}
	s.mu.RLock()
	c1, c2 := s.children[0x100], s.children[0x200]
	s.mu.RUnlock()
	if c1 != nw || c2 != nw {
		t.Fatal("children did not move to the new SA")
	}
	s.Rekeyed(nw, nw) // no-op
	s.Add(nw, tok(16, 2))
	s.Delete(nw)
	s.mu.RLock()
	n := len(s.children)
	s.mu.RUnlock()
	if s.Has(nw) || n != 0 {
		t.Fatal("Delete left state behind")
	}
}

func TestStoreConcurrent(t *testing.T) {
	s := NewStore(nil)
	v := NewVerifier(s, Limits{PerSource: 1e9, PerSourceBurst: 1e9, Global: 1e9, GlobalBurst: 1e9}, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var m Message
			for i := range 300 {
				sa := SAKey{uint64(i % 70), uint64(g)}
				s.Add(sa, tok(16, byte(i)))
				s.AddChild(uint32(i), sa)
				_ = s.Tokens(sa)
				Parse(unprotected(sa.SPIi, sa.SPIr, tok(16, byte(i))), &m)
				v.Check(srcV4(i), &m)
				if i%7 == 0 {
					s.Rekeyed(sa, SAKey{sa.SPIi + 1, sa.SPIr})
				}
				if i%11 == 0 {
					s.Delete(sa)
					s.RemoveChild(uint32(i))
				}
			}
		})
	}
	wg.Wait()
}
