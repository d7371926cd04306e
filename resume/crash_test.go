package resume

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// crashHelperEnv tells a re-executed test binary to act as the writer.
const crashHelperEnv = "QCDVPN_RESUME_CRASH_HELPER_DIR"

var crashKey = StaticKey(bytes.Repeat([]byte{0x5c}, StoreKeySize))

// crashRecord is a self-checking record: State and Ticket derive from the
// ID and the sequence number kept in Gateway.
func crashRecord(id string, seq int) Record {
	sum := sha256.Sum256([]byte(id + "/" + strconv.Itoa(seq)))
	return Record{
		ID:        id,
		Profile:   "p",
		Gateway:   strconv.Itoa(seq),
		Domain:    "d",
		Ticket:    append([]byte("ticket-"), sum[:16]...),
		State:     bytes.Repeat(sum[:], 1+seq%8),
		Expiry:    time.Now().Add(24 * time.Hour),
		QCDTokens: [][]byte{sum[16:]},
		ChildSPIs: []uint32{uint32(seq)},
	}
}

// checkCrashRecord verifies a record read back after a crash.
func checkCrashRecord(r Record) error {
	seq, err := strconv.Atoi(r.Gateway)
	if err != nil {
		return fmt.Errorf("record %s: bad sequence %q", r.ID, r.Gateway)
	}
	want := crashRecord(r.ID, seq)
	if !bytes.Equal(r.QCDTokens[0], want.QCDTokens[0]) || r.ChildSPIs[0] != uint32(seq) {
		return fmt.Errorf("record %s: QCD token or SPI mismatch", r.ID)
	}
	if r.Ticket == nil && r.State == nil {
		return nil // taken
	}
	if !bytes.Equal(r.Ticket, want.Ticket) || !bytes.Equal(r.State, want.State) {
		return fmt.Errorf("record %s: ticket or state mismatch", r.ID)
	}
	return nil
}

// TestHelperWriter is the child process of TestCrashSafety: it writes,
// takes and deletes records in a tight loop until it is killed.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv(crashHelperEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	s, err := OpenStore(dir, crashKey, StoreOptions{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	fmt.Println("ready")
	// Never outlive a parent that failed to kill us.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		id := fmt.Sprintf("sa-%02d", i%48)
		if err := s.Put(crashRecord(id, i)); err != nil {
			fmt.Println("put:", err)
			os.Exit(4)
		}
		switch {
		case i%7 == 3:
			if _, _, err := s.Take("p", "d"); err != nil {
				fmt.Println("take:", err)
				os.Exit(5)
			}
		case i%11 == 5:
			if err := s.Delete(fmt.Sprintf("sa-%02d", (i*5)%48)); err != nil {
				fmt.Println("delete:", err)
				os.Exit(6)
			}
		}
	}
	os.Exit(7)
}

// TestCrashSafety kills a writer process with SIGKILL at random moments
// and checks that the store always reopens without loss of integrity.
func TestCrashSafety(t *testing.T) {
	iterations := 200
	if testing.Short() {
		iterations = 20
	}
	const budget = 45 * time.Second // stay well under a minute on slow CI
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	t.Logf("seed %d", seed)
	dir := filepath.Join(t.TempDir(), "store")
	start := time.Now()
	done, records := 0, 0
	for ; done < iterations && time.Since(start) < budget; done++ {
		delay := time.Duration(5+rng.IntN(46)) * time.Millisecond
		runWriterAndKill(t, dir, delay)

		sink := &logSink{}
		s, err := OpenStore(dir, crashKey, StoreOptions{Logger: slog.New(sink)})
		if err != nil {
			t.Fatalf("iteration %d (kill after %v): OpenStore: %v", done, delay, err)
		}
		recs, err := s.List()
		if err != nil {
			t.Fatalf("iteration %d: List: %v", done, err)
		}
		for _, r := range recs {
			if err := checkCrashRecord(r); err != nil {
				t.Fatalf("iteration %d: %v", done, err)
			}
		}
		records = len(recs)
		if err := s.Close(); err != nil {
			t.Fatalf("iteration %d: Close: %v", done, err)
		}
		if w := sink.warnings(); len(w) != 0 {
			t.Fatalf("iteration %d: store lost data after a kill: %q", done, w)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*")); len(m) != 0 {
		t.Fatalf("database moved aside after a kill: %v", m)
	}
	t.Logf("%d kills in %v, %d records at the end", done, time.Since(start).Round(time.Millisecond), records)
	if done < iterations && done < 20 {
		t.Fatalf("only %d iterations fit the time budget", done)
	}
}

// runWriterAndKill starts TestHelperWriter in a child process, waits
// until its store is open, lets it write for delay and kills it.
func runWriterAndKill(t *testing.T, dir string, delay time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); line == "ready" || strings.Contains(line, ":") {
				ready <- line
				return
			}
		}
		ready <- "child closed stdout"
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			t.Fatalf("writer did not start: %s\n%s", line, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("writer did not start in time\n%s", stderr.String())
	}
	time.Sleep(delay)
	killed = true
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	// Exited by itself instead of dying of the signal? (Windows reports a
	// killed process as exited.)
	if !errors.As(err, &ee) || (ee.Exited() && runtime.GOOS != "windows") {
		t.Fatalf("writer was not killed: %v\n%s", err, stderr.String())
	}
}
