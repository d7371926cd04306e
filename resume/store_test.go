package resume

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// logSink collects log records for assertions.
type logSink struct {
	mu   sync.Mutex
	recs []string
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logSink) WithGroup(string) slog.Handler            { return l }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logSink) warnings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if strings.HasPrefix(r, "WARN") {
			out = append(out, r)
		}
	}
	return out
}

func (l *logSink) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.recs, "\n")
}

var testStoreKey = StaticKey(bytes.Repeat([]byte{0x42}, StoreKeySize))

func openTestStore(t testing.TB, dir string, kp KeyProvider, clk *testClock) (*Store, *logSink) {
	t.Helper()
	sink := &logSink{}
	opts := StoreOptions{Logger: slog.New(sink)}
	if clk != nil {
		opts.Now = clk.Now
	}
	s, err := OpenStore(dir, kp, opts)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, sink
}

func sampleRecord(id string, clk *testClock) Record {
	return Record{
		ID:        id,
		Profile:   "office",
		Gateway:   "vpn1.example.com:4500",
		Domain:    "vpn.example.com",
		Ticket:    []byte("TICKET-PLAINTEXT-" + id),
		State:     []byte("STATE-SECRET-SKd-" + id),
		Expiry:    clk.Now().Add(time.Hour),
		QCDTokens: [][]byte{[]byte("qcd-token-1"), []byte("qcd-token-2")},
		ChildSPIs: []uint32{0x11223344, 0xdeadbeef},
		Created:   clk.Now(),
	}
}

func equalRecord(a, b Record) bool {
	if a.ID != b.ID || a.Profile != b.Profile || a.Gateway != b.Gateway || a.Domain != b.Domain ||
		!bytes.Equal(a.Ticket, b.Ticket) || !bytes.Equal(a.State, b.State) ||
		!a.Expiry.Equal(b.Expiry) || !a.Created.Equal(b.Created) ||
		len(a.QCDTokens) != len(b.QCDTokens) || len(a.ChildSPIs) != len(b.ChildSPIs) {
		return false
	}
	for i := range a.QCDTokens {
		if !bytes.Equal(a.QCDTokens[i], b.QCDTokens[i]) {
			return false
		}
	}
	for i := range a.ChildSPIs {
		if a.ChildSPIs[i] != b.ChildSPIs[i] {
			return false
		}
	}
	return true
}

func TestStoreRoundTrip(t *testing.T) {
	clk := newTestClock()
	dir := filepath.Join(t.TempDir(), "resume")
	s, sink := openTestStore(t, dir, testStoreKey, clk)
	r := sampleRecord("0011223344556677-8899aabbccddeeff", clk)
	if err := s.Put(r); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, ok, err := s.Get(r.ID)
	if err != nil || !ok || !equalRecord(got, r) {
		t.Fatalf("Get = %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := s.Get("absent"); ok || err != nil {
		t.Fatalf("Get(absent) = %v, %v", ok, err)
	}
	// Replace.
	r.Gateway = "vpn2.example.com:4500"
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	// Survives reopening.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Put(r); err == nil {
		t.Fatal("Put after Close succeeded")
	}
	if _, _, err := s.Take("office", "vpn.example.com"); err == nil {
		t.Fatal("Take after Close succeeded")
	}
	s2, _ := openTestStore(t, dir, testStoreKey, clk)
	got, ok, err = s2.Get(r.ID)
	if err != nil || !ok || !equalRecord(got, r) {
		t.Fatalf("Get after reopen = %+v, %v, %v", got, ok, err)
	}
	if err := s2.Delete(r.ID); err != nil {
		t.Fatal(err)
	}
	if err := s2.Delete(r.ID); err != nil {
		t.Fatalf("Delete of absent: %v", err)
	}
	if _, ok, _ := s2.Get(r.ID); ok {
		t.Fatal("record survived Delete")
	}
	if w := sink.warnings(); len(w) != 0 {
		t.Fatalf("warnings: %v", w)
	}
	// Created is filled in; monotonic clock readings are not kept.
	nr := Record{ID: "no-created", Ticket: []byte("t"), Expiry: time.Now().Add(time.Hour)}
	if err := s2.Put(nr); err != nil {
		t.Fatal(err)
	}
	got, _, _ = s2.Get("no-created")
	if !got.Created.Equal(clk.Now()) {
		t.Fatalf("Created = %v, want %v", got.Created, clk.Now())
	}
}

func TestStorePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := filepath.Join(t.TempDir(), "resume")
	openTestStore(t, dir, testStoreKey, nil)
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, DefaultStoreFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

func TestStoreBadInput(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenStore("", testStoreKey, StoreOptions{}); err == nil {
		t.Error("empty dir accepted")
	}
	if _, err := OpenStore(dir, nil, StoreOptions{}); err == nil {
		t.Error("nil key provider accepted")
	}
	if _, err := OpenStore(dir, StaticKey(make([]byte, 8)), StoreOptions{}); err == nil {
		t.Error("short key accepted")
	}
	if _, err := OpenStore(dir, testStoreKey, StoreOptions{File: "../x.db"}); err == nil {
		t.Error("file with a path accepted")
	}
	clk := newTestClock()
	s, _ := openTestStore(t, dir, testStoreKey, clk)
	if err := s.Put(Record{}); err == nil {
		t.Error("empty ID accepted")
	}
	if err := s.Put(Record{ID: strings.Repeat("x", MaxRecordIDLen+1)}); err == nil {
		t.Error("long ID accepted")
	}
	if err := s.Put(Record{ID: "t", Ticket: []byte("t")}); err == nil {
		t.Error("ticket without expiry accepted")
	}
	if _, _, err := s.Get(""); err == nil {
		t.Error("Get(\"\") accepted")
	}
}

func TestStoreCustomFile(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, testStoreKey, StoreOptions{File: "other.db"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, "other.db")); err != nil {
		t.Fatal(err)
	}
}

func TestStoreEncryptedAtRest(t *testing.T) {
	clk := newTestClock()
	dir := t.TempDir()
	s, _ := openTestStore(t, dir, testStoreKey, clk)
	r := sampleRecord("sa-1", clk)
	r.State = []byte("STATE-SECRET-0123456789abcdef-SKd")
	r.Ticket = []byte("TICKET-PLAINTEXT-fedcba9876543210")
	r.Domain = "secret-domain.example"
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, DefaultStoreFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range [][]byte{r.State, r.Ticket, []byte(r.Domain), r.QCDTokens[0]} {
		if bytes.Contains(raw, secret) {
			t.Errorf("database file contains %q in the clear", secret)
		}
	}
	if !bytes.Contains(raw, []byte("sa-1")) {
		t.Errorf("record ID not found: is this the right file?")
	}
}

func TestStoreWrongKey(t *testing.T) {
	clk := newTestClock()
	dir := t.TempDir()
	s, _ := openTestStore(t, dir, testStoreKey, clk)
	for i := range 3 {
		if err := s.Put(sampleRecord(fmt.Sprintf("sa-%d", i), clk)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	other := StaticKey(bytes.Repeat([]byte{0x17}, StoreKeySize))
	s2, sink := openTestStore(t, dir, other, clk)
	w := sink.warnings()
	if len(w) != 3 {
		t.Fatalf("warnings = %q, want 3", w)
	}
	for i, msg := range w {
		if !strings.Contains(msg, fmt.Sprintf("id=sa-%d", i)) {
			t.Errorf("warning %q does not name the record", msg)
		}
	}
	if strings.Contains(sink.all(), "STATE-SECRET") || strings.Contains(sink.all(), "TICKET-PLAINTEXT") {
		t.Fatal("a secret was logged")
	}
	recs, err := s2.List()
	if err != nil || len(recs) != 0 {
		t.Fatalf("List = %d records, %v", len(recs), err)
	}
	if err := s2.Put(sampleRecord("new", clk)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s2.Get("new"); !ok || err != nil {
		t.Fatalf("Get(new) = %v, %v", ok, err)
	}
}

func TestStoreTamperedValue(t *testing.T) {
	clk := newTestClock()
	s, sink := openTestStore(t, t.TempDir(), testStoreKey, clk)
	if err := s.Put(sampleRecord("a", clk)); err != nil {
		t.Fatal(err)
	}
	// Move a's sealed value under another ID: the AAD must catch it.
	var val []byte
	if err := s.view(func(b *bolt.Bucket) error { val = bytes.Clone(b.Get([]byte("a"))); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.update(func(b *bolt.Bucket) error { return b.Put([]byte("b"), val) }); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Get("b"); ok || err != nil {
		t.Fatalf("moved value accepted: %v, %v", ok, err)
	}
	if len(sink.warnings()) != 1 {
		t.Fatalf("warnings = %v", sink.warnings())
	}
	// It was deleted; a still reads.
	if err := s.view(func(b *bolt.Bucket) error {
		if b.Get([]byte("b")) != nil {
			return errors.New("b still stored")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get("a"); !ok {
		t.Fatal("a lost")
	}
}

func TestStoreTake(t *testing.T) {
	clk := newTestClock()
	s, _ := openTestStore(t, t.TempDir(), testStoreKey, clk)
	older := sampleRecord("older", clk)
	clk.Add(time.Minute)
	newer := sampleRecord("newer", clk)
	otherProfile := sampleRecord("other-profile", clk)
	otherProfile.Profile = "home"
	otherDomain := sampleRecord("other-domain", clk)
	otherDomain.Domain = "vpn.other.example"
	noTicket := sampleRecord("no-ticket", clk)
	noTicket.Ticket = nil
	for _, r := range []Record{older, newer, otherProfile, otherDomain, noTicket} {
		if err := s.Put(r); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.Candidates("office", "vpn.example.com")
	if err != nil || len(c) != 2 || c[0].ID != "newer" || c[1].ID != "older" {
		t.Fatalf("Candidates = %v, %v", ids(c), err)
	}
	got, ok, err := s.Take("office", "vpn.example.com")
	if err != nil || !ok || !equalRecord(got, newer) {
		t.Fatalf("Take = %v %v %v", got.ID, ok, err)
	}
	// The ticket and state are gone from the store; QCD tokens stay.
	rest, ok, err := s.Get("newer")
	if err != nil || !ok {
		t.Fatalf("Get(newer) after Take: %v %v", ok, err)
	}
	if rest.Ticket != nil || rest.State != nil || len(rest.QCDTokens) != 2 || len(rest.ChildSPIs) != 2 {
		t.Fatalf("record after Take: %+v", rest)
	}
	got, ok, _ = s.Take("office", "vpn.example.com")
	if !ok || got.ID != "older" {
		t.Fatalf("second Take = %q %v, want older", got.ID, ok)
	}
	if _, ok, _ := s.Take("office", "vpn.example.com"); ok {
		t.Fatal("third Take found a ticket")
	}
	if c, _ := s.Candidates("office", "vpn.example.com"); len(c) != 0 {
		t.Fatalf("Candidates after Take: %v", ids(c))
	}
	// The consumption is durable.
	s.Close()
	s2, _ := openTestStore(t, filepath.Dir(s.path), testStoreKey, clk)
	if _, ok, _ := s2.Take("office", "vpn.example.com"); ok {
		t.Fatal("Take after reopen found a consumed ticket")
	}
	if got, ok, _ := s2.Take("home", "vpn.example.com"); !ok || got.ID != "other-profile" {
		t.Fatalf("Take(home) = %q %v", got.ID, ok)
	}
}

func ids(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestStoreExpiry(t *testing.T) {
	clk := newTestClock()
	s, _ := openTestStore(t, t.TempDir(), testStoreKey, clk)
	short := sampleRecord("short", clk)
	short.Expiry = clk.Now().Add(time.Minute)
	long := sampleRecord("long", clk)
	long.Expiry = clk.Now().Add(2 * time.Hour)
	long.Created = clk.Now().Add(-time.Hour) // older, but outlives short
	qcdOnly := Record{ID: "qcd-only", QCDTokens: [][]byte{[]byte("q")}}
	for _, r := range []Record{short, long, qcdOnly} {
		if err := s.Put(r); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(time.Minute) // short expires exactly now
	c, err := s.Candidates("office", "vpn.example.com")
	if err != nil || len(c) != 1 || c[0].ID != "long" {
		t.Fatalf("Candidates = %v, %v", ids(c), err)
	}
	got, ok, err := s.Take("office", "vpn.example.com")
	if err != nil || !ok || got.ID != "long" {
		t.Fatalf("Take = %q %v %v", got.ID, ok, err)
	}
	if _, ok, _ := s.Get("short"); ok {
		t.Fatal("Take did not purge the expired record")
	}
	clk.Add(3 * time.Hour)
	n, err := s.Purge()
	if err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1 (long)", n, err)
	}
	all, _ := s.List()
	if len(all) != 1 || all[0].ID != "qcd-only" {
		t.Fatalf("after Purge: %v (records without expiry stay)", ids(all))
	}
}

func TestStoreList(t *testing.T) {
	clk := newTestClock()
	s, _ := openTestStore(t, t.TempDir(), testStoreKey, clk)
	for i := range 5 {
		r := sampleRecord(fmt.Sprintf("sa-%d", i), clk)
		if i == 2 {
			r.Expiry = clk.Now().Add(-time.Second) // expired but listed
		}
		if err := s.Put(r); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Second)
	}
	all, err := s.List()
	if err != nil || len(all) != 5 || all[0].ID != "sa-4" || all[4].ID != "sa-0" {
		t.Fatalf("List = %v, %v", ids(all), err)
	}
}

func TestStoreCorruptFile(t *testing.T) {
	clk := newTestClock()
	for _, size := range []int{1, 100, 4096, 10000, 64 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := t.TempDir()
			garbage := bytes.Repeat([]byte("garbage!"), size/8+1)[:size]
			path := filepath.Join(dir, DefaultStoreFile)
			if err := os.WriteFile(path, garbage, 0o600); err != nil {
				t.Fatal(err)
			}
			s, sink := openTestStore(t, dir, testStoreKey, clk)
			w := sink.warnings()
			if len(w) != 1 || !strings.Contains(w[0], "corrupt") {
				t.Fatalf("warnings = %q", w)
			}
			moved := fmt.Sprintf("%s.corrupt-%d", path, clk.Now().Unix())
			old, err := os.ReadFile(moved)
			if err != nil || !bytes.Equal(old, garbage) {
				t.Fatalf("old file not moved aside to %s: %v", moved, err)
			}
			if err := s.Put(sampleRecord("fresh", clk)); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := s.Get("fresh"); !ok || err != nil {
				t.Fatalf("fresh store unusable: %v %v", ok, err)
			}
		})
	}
}

// TestStoreTruncatedFile cuts a valid database short: its meta pages
// still check out, but the pages they point to are past the end of the
// file, which faults when read through the mapping.
func TestStoreTruncatedFile(t *testing.T) {
	clk := newTestClock()
	dir := t.TempDir()
	s, _ := openTestStore(t, dir, testStoreKey, clk)
	for i := range 100 {
		r := sampleRecord(fmt.Sprintf("sa-%03d", i), clk)
		r.State = bytes.Repeat([]byte{byte(i)}, 500)
		if err := s.Put(r); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	path := filepath.Join(dir, DefaultStoreFile)
	if err := os.Truncate(path, 2*4096); err != nil {
		t.Fatal(err)
	}
	s2, sink := openTestStore(t, dir, testStoreKey, clk)
	if recs, err := s2.List(); err != nil || len(recs) != 0 {
		t.Fatalf("List = %d, %v", len(recs), err)
	}
	if w := sink.warnings(); len(w) != 1 || !strings.Contains(w[0], "corrupt") {
		t.Fatalf("warnings = %q", w)
	}
}

func TestStoreLocked(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTestStore(t, dir, testStoreKey, nil)
	_ = s
	start := time.Now()
	_, err := OpenStore(dir, testStoreKey, StoreOptions{lockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrStoreLocked) {
		t.Fatalf("second open: %v, want ErrStoreLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second open took %v", d)
	}
	// The database is intact and was not moved aside.
	if _, err := os.Stat(filepath.Join(dir, DefaultStoreFile)); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*"))
	if len(matches) != 0 {
		t.Fatalf("locked database moved aside: %v", matches)
	}
}

func TestStoreConcurrent(t *testing.T) {
	clk := newTestClock()
	s, _ := openTestStore(t, t.TempDir(), testStoreKey, clk)
	var wg sync.WaitGroup
	taken := make(chan string, 64)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				if err := s.Put(sampleRecord(fmt.Sprintf("g%d-%d", g, i), clk)); err != nil {
					t.Error(err)
				}
			}
			for range 8 {
				if r, ok, err := s.Take("office", "vpn.example.com"); err != nil {
					t.Error(err)
				} else if ok {
					taken <- r.ID
				}
			}
		}()
	}
	wg.Wait()
	close(taken)
	seen := map[string]bool{}
	for id := range taken {
		if seen[id] {
			t.Fatalf("ticket %s taken twice", id)
		}
		seen[id] = true
	}
	if len(seen) != 32 {
		t.Fatalf("%d tickets taken, want 32", len(seen))
	}
}

func FuzzOpenRecord(f *testing.F) {
	aead, err := newAEAD(testStoreKey, storeKDFInfo)
	if err != nil {
		f.Fatal(err)
	}
	clk := newTestClock()
	val, err := sealRecord(aead, sampleRecord("id", clk))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("id", val)
	f.Add("id", val[:13])
	f.Add("", []byte{1})
	f.Fuzz(func(t *testing.T, id string, v []byte) {
		if r, err := openRecord(aead, id, v); err == nil && r.ID != id {
			t.Fatalf("decoded ID %q under %q", r.ID, id)
		}
	})
}
