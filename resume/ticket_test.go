package resume

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testClock is an adjustable clock for injection.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testKey(id string, fill byte) TicketKey {
	k := TicketKey{ID: id}
	for i := range k.Key {
		k.Key[i] = fill + byte(i)
	}
	return k
}

func mustAuthority(t testing.TB, keys []TicketKey, lifetime time.Duration, now func() time.Time) *Authority {
	t.Helper()
	a, err := NewAuthority(keys, lifetime, now)
	if err != nil {
		t.Fatalf("NewAuthority: %v", err)
	}
	return a
}

func TestNewAuthorityErrors(t *testing.T) {
	good := testKey("k1", 1)
	cases := []struct {
		name     string
		keys     []TicketKey
		lifetime time.Duration
	}{
		{"no key", nil, time.Hour},
		{"empty id", []TicketKey{testKey("", 1)}, time.Hour},
		{"long id", []TicketKey{testKey("0123456789abcdefX", 1)}, time.Hour},
		{"duplicate id", []TicketKey{good, testKey("k1", 2)}, time.Hour},
		{"zero key", []TicketKey{{ID: "z"}}, time.Hour},
		{"zero lifetime", []TicketKey{good}, 0},
		{"negative lifetime", []TicketKey{good}, -time.Second},
		{"sub-second lifetime", []TicketKey{good}, time.Millisecond},
		{"too long lifetime", []TicketKey{good}, MaxLifetime + time.Second},
	}
	for _, c := range cases {
		if _, err := NewAuthority(c.keys, c.lifetime, nil); err == nil {
			t.Errorf("%s: NewAuthority succeeded", c.name)
		}
	}
	if _, err := NewAuthority([]TicketKey{testKey("0123456789abcdef", 1)}, MaxLifetime, nil); err != nil {
		t.Errorf("16-byte id, max lifetime: %v", err)
	}
}

func TestIssueOpenRoundTrip(t *testing.T) {
	clk := newTestClock()
	a := mustAuthority(t, []TicketKey{testKey("k1", 1)}, 2*time.Hour, clk.Now)
	for _, state := range [][]byte{{}, []byte("x"), bytes.Repeat([]byte("state"), 200)} {
		ticket, lt, err := a.Issue(state)
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		if lt != 7200 {
			t.Errorf("lifetime = %d, want 7200", lt)
		}
		if len(state) > 4 && bytes.Contains(ticket, state[:5]) {
			t.Errorf("ticket contains state plaintext")
		}
		got, exp, err := a.Open(ticket)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, state) {
			t.Errorf("state = %q, want %q", got, state)
		}
		if want := clk.Now().Add(2 * time.Hour); !exp.Equal(want) {
			t.Errorf("expiry = %v, want %v", exp, want)
		}
		if a.Used(ticket) {
			t.Errorf("Open consumed the ticket")
		}
	}
	// Two tickets of the same state differ (random nonce).
	t1, _, _ := a.Issue([]byte("s"))
	t2, _, _ := a.Issue([]byte("s"))
	if bytes.Equal(t1, t2) {
		t.Errorf("two tickets are identical")
	}
}

func TestIssueTooLarge(t *testing.T) {
	a := mustAuthority(t, []TicketKey{testKey("k1", 1)}, time.Hour, nil)
	if _, _, err := a.Issue(make([]byte, MaxTicketLen)); err == nil {
		t.Fatal("Issue accepted an oversized state")
	}
	max := MaxTicketLen - (2 + 2 + 8 + gcmNonceLen + gcmTagLen)
	ticket, _, err := a.Issue(make([]byte, max))
	if err != nil {
		t.Fatalf("Issue of the largest state: %v", err)
	}
	if len(ticket) != MaxTicketLen {
		t.Fatalf("ticket is %d bytes, want %d", len(ticket), MaxTicketLen)
	}
	if _, _, err := a.Open(ticket); err != nil {
		t.Fatalf("Open of the largest ticket: %v", err)
	}
}

func TestSharedDomainKey(t *testing.T) {
	keys := []TicketKey{testKey("dom", 7)}
	a := mustAuthority(t, keys, time.Hour, nil)
	b := mustAuthority(t, keys, time.Hour, nil)
	ticket, _, err := a.Issue([]byte("state-from-A"))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := b.Open(ticket)
	if err != nil || string(got) != "state-from-A" {
		t.Fatalf("B.Open = %q, %v", got, err)
	}
	// A key with the same ID but other bytes must not open it.
	c := mustAuthority(t, []TicketKey{testKey("dom", 8)}, time.Hour, nil)
	if _, _, err := c.Open(ticket); !errors.Is(err, ErrTicketForged) {
		t.Fatalf("other key, same id: %v, want ErrTicketForged", err)
	}
}

func TestKeyRollover(t *testing.T) {
	oldK, newK := testKey("old", 1), testKey("new", 2)
	a := mustAuthority(t, []TicketKey{oldK}, time.Hour, nil)
	b := mustAuthority(t, []TicketKey{newK, oldK}, time.Hour, nil)
	ticket, _, _ := a.Issue([]byte("sealed with old"))
	if got, _, err := b.Open(ticket); err != nil || string(got) != "sealed with old" {
		t.Fatalf("B.Open(old ticket) = %q, %v", got, err)
	}
	nt, _, _ := b.Issue([]byte("sealed with new"))
	if nt[1] != 3 || string(nt[2:5]) != "new" {
		t.Fatalf("B did not seal with keys[0]: id %q", nt[2:2+int(nt[1])])
	}
	if _, _, err := a.Open(nt); !errors.Is(err, ErrTicketUnknownKey) {
		t.Fatalf("A.Open(new ticket) = %v, want ErrTicketUnknownKey", err)
	}
}

func TestBitFlips(t *testing.T) {
	clk := newTestClock()
	a := mustAuthority(t, []TicketKey{testKey("k1", 1)}, time.Hour, clk.Now)
	ticket, _, err := a.Issue([]byte("some state to protect"))
	if err != nil {
		t.Fatal(err)
	}
	idEnd := 2 + int(ticket[1])
	expEnd := idEnd + 8
	for i := range ticket {
		for bit := range 8 {
			mut := bytes.Clone(ticket)
			mut[i] ^= 1 << bit
			_, _, err := a.Open(mut)
			var ok bool
			switch {
			case i == 1: // the ID length: another ID, or nonsense
				ok = errors.Is(err, ErrTicketForged) || errors.Is(err, ErrTicketUnknownKey)
			case i >= 2 && i < idEnd:
				ok = errors.Is(err, ErrTicketUnknownKey)
			case i >= idEnd && i < expEnd:
				// An earlier expiry is refused as expired before the MAC
				// is checked; a later one fails the MAC or the range check.
				ok = errors.Is(err, ErrTicketForged) || errors.Is(err, ErrTicketExpired)
			default:
				ok = errors.Is(err, ErrTicketForged)
			}
			if !ok {
				t.Errorf("flip byte %d bit %d: err = %v", i, bit, err)
			}
		}
	}
	if _, _, err := a.Open(ticket); err != nil {
		t.Fatalf("original no longer opens: %v", err)
	}
}

func TestTruncatedAndExtended(t *testing.T) {
	a := mustAuthority(t, []TicketKey{testKey("k1", 1)}, time.Hour, nil)
	ticket, _, _ := a.Issue([]byte("state"))
	for n := 0; n < len(ticket); n++ {
		if _, _, err := a.Open(ticket[:n]); err == nil {
			t.Errorf("prefix of %d bytes opened", n)
		}
		if _, _, err := a.Open(ticket[n:]); err == nil && n > 0 {
			t.Errorf("suffix from %d opened", n)
		}
	}
	if _, _, err := a.Open(append(bytes.Clone(ticket), 0)); !errors.Is(err, ErrTicketForged) {
		t.Errorf("extended ticket: %v", err)
	}
	bad := bytes.Clone(ticket)
	bad[0] = 2
	if _, _, err := a.Open(bad); !errors.Is(err, ErrTicketForged) {
		t.Errorf("version 2: %v", err)
	}
	if _, _, err := a.Open(make([]byte, MaxTicketLen+1)); !errors.Is(err, ErrTicketForged) {
		t.Errorf("oversized: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	clk := newTestClock()
	a := mustAuthority(t, []TicketKey{testKey("k1", 1)}, time.Hour, clk.Now)
	ticket, _, _ := a.Issue([]byte("s"))
	clk.Add(time.Hour - time.Second)
	if _, _, err := a.Open(ticket); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	clk.Add(time.Second)
	if _, _, err := a.Open(ticket); !errors.Is(err, ErrTicketExpired) {
		t.Fatalf("at expiry: %v, want ErrTicketExpired", err)
	}
	// A gateway whose clock runs far behind sees an implausible expiry.
	behind := newTestClock()
	behind.Add(-48 * time.Hour)
	b := mustAuthority(t, []TicketKey{testKey("k1", 1)}, time.Hour, behind.Now)
	if _, _, err := b.Open(ticket); !errors.Is(err, ErrTicketForged) {
		t.Fatalf("expiry beyond MaxLifetime: %v, want ErrTicketForged", err)
	}
}

func TestConsume(t *testing.T) {
	clk := newTestClock()
	a := mustAuthority(t, []TicketKey{testKey("k1", 1)}, time.Hour, clk.Now)
	ticket, _, _ := a.Issue([]byte("s"))
	_, exp, err := a.Open(ticket)
	if err != nil {
		t.Fatal(err)
	}
	if a.Used(ticket) {
		t.Fatal("Used before Consume")
	}
	if !a.Consume(ticket, exp) {
		t.Fatal("first Consume = false")
	}
	if !a.Used(ticket) {
		t.Fatal("Used after Consume = false")
	}
	if a.Consume(ticket, exp) {
		t.Fatal("second Consume = true")
	}
	if _, _, err := a.Open(ticket); !errors.Is(err, ErrTicketReused) {
		t.Fatalf("Open after Consume: %v, want ErrTicketReused", err)
	}
	// Another ticket is unaffected.
	other, _, _ := a.Issue([]byte("s"))
	if _, _, err := a.Open(other); err != nil {
		t.Fatalf("other ticket: %v", err)
	}
	// Passing too early an expiry does not shorten the entry.
	t3, _, _ := a.Issue([]byte("s"))
	if !a.Consume(t3, clk.Now().Add(time.Second)) {
		t.Fatal("Consume t3")
	}
	clk.Add(10 * time.Second)
	if !a.Used(t3) {
		t.Fatal("entry dropped at the caller's expiry, not the ticket's")
	}
	// Once the ticket expires, its entry goes.
	clk.Add(time.Hour)
	if a.Used(ticket) || a.usedLen() != 0 {
		t.Fatalf("entries kept past expiry: %d", a.usedLen())
	}
	if _, _, err := a.Open(ticket); !errors.Is(err, ErrTicketExpired) {
		t.Fatalf("Open after expiry: %v", err)
	}
	// Consuming an expired ticket records nothing.
	if !a.Consume(ticket, exp) || a.usedLen() != 0 {
		t.Fatal("expired ticket recorded")
	}
}

func TestReplayCacheFull(t *testing.T) {
	clk := newTestClock()
	a := mustAuthority(t, []TicketKey{testKey("k1", 1)}, time.Hour, clk.Now)
	a.maxUsed = 3
	var tickets [][]byte
	for range 4 {
		tk, _, _ := a.Issue([]byte("s"))
		tickets = append(tickets, tk)
	}
	for _, tk := range tickets[:3] {
		_, exp, err := a.Open(tk)
		if err != nil || !a.Consume(tk, exp) {
			t.Fatalf("Open/Consume: %v", err)
		}
	}
	_, _, err := a.Open(tickets[3])
	if !errors.Is(err, ErrReplayCacheFull) || !errors.Is(err, ErrTicketReused) {
		t.Fatalf("Open with full cache: %v", err)
	}
	if a.Consume(tickets[3], clk.Now().Add(time.Hour)) {
		t.Fatal("Consume with full cache = true")
	}
	// Entries expire; room comes back and nothing was forgotten early.
	clk.Add(time.Hour + time.Second)
	tk, _, _ := a.Issue([]byte("s"))
	if _, exp, err := a.Open(tk); err != nil || !a.Consume(tk, exp) {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestConcurrentConsume(t *testing.T) {
	a := mustAuthority(t, []TicketKey{testKey("k1", 1)}, time.Hour, nil)
	ticket, _, _ := a.Issue([]byte("s"))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, exp, err := a.Open(ticket); err == nil && a.Consume(ticket, exp) {
				wins.Add(1)
			}
			own, _, _ := a.Issue([]byte("own"))
			if _, _, err := a.Open(own); err != nil {
				t.Errorf("own ticket: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d goroutines consumed the ticket", wins.Load())
	}
}

func FuzzOpen(f *testing.F) {
	clk := newTestClock()
	a := mustAuthority(f, []TicketKey{testKey("k1", 1), testKey("old-key", 9)}, time.Hour, clk.Now)
	ticket, _, _ := a.Issue([]byte("fuzz state"))
	f.Add(ticket)
	f.Add(ticket[:minTicketLen])
	f.Add([]byte{1, 2, 'k', '1'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		state, exp, err := a.Open(in)
		if err == nil {
			if state == nil || exp.IsZero() {
				t.Fatalf("success without state or expiry")
			}
			_ = a.Consume(in, exp)
			return
		}
		if !errors.Is(err, ErrTicketForged) && !errors.Is(err, ErrTicketUnknownKey) &&
			!errors.Is(err, ErrTicketExpired) && !errors.Is(err, ErrTicketReused) {
			t.Fatalf("unexpected error %v", err)
		}
		_ = a.Consume(in, exp)
		_ = a.Used(in)
	})
}

func BenchmarkIssue(b *testing.B) {
	a := mustAuthority(b, []TicketKey{testKey("k1", 1)}, time.Hour, nil)
	state := make([]byte, 256)
	b.SetBytes(int64(len(state)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := a.Issue(state); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	a := mustAuthority(b, []TicketKey{testKey("k1", 1)}, time.Hour, nil)
	ticket, _, _ := a.Issue(make([]byte, 256))
	b.SetBytes(256)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := a.Open(ticket); err != nil {
			b.Fatal(err)
		}
	}
}
