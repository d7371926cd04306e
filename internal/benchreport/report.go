// Package benchreport renders the figures of one `make bench` network run
// (throughput, RTT, memory, connect times, ESP micro-benchmarks) as
// docs/BENCHMARKS.md and a PNG bar chart of the throughput table. It only
// formats what it is given, deterministically, so the output can be
// unit-tested from fixed figures; the measuring lives in
// internal/interop's TestNetBench.
package benchreport

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is one run: every variant measured back to back on one machine.
type Report struct {
	// Date is when the run started (printed in UTC).
	Date time.Time
	// Machine describes the host: CPU model, cores, kernel, Go version.
	Machine string
	// LoadStart and LoadEnd are /proc/loadavg before and after the run.
	LoadStart, LoadEnd string
	// Seconds is the length of each iperf3 run; Rounds how many runs of
	// each variant there were, interleaved across the variants.
	Seconds, Rounds int
	// Pings is the number of echo requests per RTT measurement, sent
	// every PingInterval.
	Pings        int
	PingInterval time.Duration
	// Versions names the software measured (qcdvpn commit, wireguard-go
	// module version, strongSwan, iperf3 ...), one line each.
	Versions []string
	// Variants in table order; the one whose Key is BaselineKey is what
	// ratios are taken against.
	Variants []Variant
	// Memory of the tunnel processes, client side.
	Memory []Memory
	// Connect times, each over several connects.
	Connect []Connect
	// Micro are the esp Seal/Open benchmark lines of the same run.
	Micro []Micro
	// Notes are extra caveats, one paragraph each.
	Notes []string
}

// BaselineKey is the variant every ratio is taken against.
const BaselineKey = "wireguard-go"

// Variant is one tunnel (or the bare link) between the two namespaces.
type Variant struct {
	// Key identifies the variant for ratios and targets ("veth",
	// "wireguard-go", "qcdvpn-aes", "qcdvpn-chacha", "strongswan", ...).
	Key string
	// Name is what the tables print.
	Name string
	// Detail is the suite and MTU, for the table.
	Detail string
	// Tput1 and Tput4 are iperf3 TCP receiver throughput in bit/s with one
	// and four parallel streams (the median of the rounds); 0 means not
	// measured.
	Tput1, Tput4 float64
	// Runs1 and Runs4 are the single rounds, for the spread.
	Runs1, Runs4 []float64
	// RTT are the ping round trips (any order); empty means not measured.
	RTT []time.Duration
}

// Memory is one process's resident set, in bytes.
type Memory struct {
	// Key is the variant the process belongs to.
	Key string
	// Name is the process, e.g. "qcdvpn up (AES-256-GCM)".
	Name string
	// Side is "client" or "gateway"; ratios compare the same side.
	Side string
	// Idle is VmRSS after connecting, before any traffic.
	Idle uint64
	// Loaded is the largest VmRSS sampled during the iperf3 runs.
	Loaded uint64
	// HWM is VmHWM (peak RSS) at the end of the runs.
	HWM uint64
}

// Connect is the time to bring a tunnel up, over several connects.
type Connect struct {
	// Name is e.g. "qcdvpn up, full exchange".
	Name string
	// Key groups it for targets ("qcdvpn-full", "qcdvpn-resumed", ...).
	Key string
	// Times are the measured connects.
	Times []time.Duration
	// How says what was timed.
	How string
}

// Micro is one benchmark result line of `go test -bench -benchmem`.
type Micro struct {
	// Name is the benchmark name without the -GOMAXPROCS suffix.
	Name string
	// NsPerOp, MBPerSec, BytesPerOp and AllocsPerOp are its figures
	// (MBPerSec 0 when it reports none).
	NsPerOp, MBPerSec       float64
	BytesPerOp, AllocsPerOp float64
}

// Variant returns the variant with key k.
func (r *Report) Variant(k string) (Variant, bool) {
	for _, v := range r.Variants {
		if v.Key == k {
			return v, true
		}
	}
	return Variant{}, false
}

func (r *Report) memory(k, side string) (Memory, bool) {
	for _, m := range r.Memory {
		if m.Key == k && m.Side == side {
			return m, true
		}
	}
	return Memory{}, false
}

// Percentile is the nearest-rank percentile p (0..100] of ds; 0 when
// ds is empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// Median is the middle of ds (the mean of the two middle values for an
// even count); 0 when empty.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratio formats a/b as "1.23×", or "–" when either is missing.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func mbit(bps float64) string {
	if bps <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", bps/1e6)
}

// spread is "min–max" of runs in Mbit/s, "–" without runs.
func spread(runs []float64) string {
	if len(runs) == 0 {
		return "–"
	}
	return mbit(slices.Min(runs)) + "–" + mbit(slices.Max(runs))
}

// MedianOf is the median of xs (0 when empty), for throughput rounds.
func MedianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ms(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f", float64(d)/1e6)
}

func mib(b uint64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}

// Target is one "done when" line of issue 13 checked against the run.
type Target struct {
	// What the target says, the measured figure, and whether it is met
	// (Known false when a figure is missing).
	What, Measured string
	Met, Known     bool
}

// Targets checks the run against issue 13's figures.
func (r *Report) Targets() []Target {
	var out []Target
	wg, haveWG := r.Variant(BaselineKey)
	tput := func(key, label string, want float64) {
		v, ok := r.Variant(key)
		for _, s := range []struct {
			name   string
			a, b   float64
			suffix string
		}{{"1 stream", v.Tput1, wg.Tput1, ""}, {"4 streams", v.Tput4, wg.Tput4, ""}} {
			t := Target{What: fmt.Sprintf("%s TCP throughput (%s) ≥ %.1f× wireguard-go", label, s.name, want)}
			if ok && haveWG && s.a > 0 && s.b > 0 {
				t.Known, t.Measured, t.Met = true, ratio(s.a, s.b), s.a/s.b >= want
			}
			out = append(out, t)
		}
	}
	tput("qcdvpn-aes", "qcdvpn AES-256-GCM", 1.0)
	tput("qcdvpn-chacha", "qcdvpn ChaCha20-Poly1305", 0.8)
	for _, k := range []struct{ key, label string }{{"qcdvpn-aes", "AES-256-GCM"}, {"qcdvpn-chacha", "ChaCha20-Poly1305"}} {
		v, ok := r.Variant(k.key)
		t := Target{What: fmt.Sprintf("qcdvpn %s ping RTT (median) ≤ 1.2× wireguard-go", k.label)}
		if a, b := Median(v.RTT), Median(wg.RTT); ok && haveWG && a > 0 && b > 0 {
			t.Known, t.Measured, t.Met = true, ratio(float64(a), float64(b)), float64(a)/float64(b) <= 1.2
		}
		out = append(out, t)
	}
	m, ok := r.memory("qcdvpn-aes", "client")
	t := Target{What: "`qcdvpn up` RSS idle ≤ 15 MiB"}
	if ok && m.Idle > 0 {
		t.Known, t.Measured, t.Met = true, mib(m.Idle)+" MiB", m.Idle <= 15<<20
	}
	out = append(out, t)
	t = Target{What: "`qcdvpn up` RSS at full throughput ≤ 40 MiB (peak VmHWM)"}
	if ok && m.HWM > 0 {
		t.Known, t.Measured, t.Met = true, mib(m.HWM)+" MiB", m.HWM <= 40<<20
	}
	out = append(out, t)
	t = Target{What: "`esp` Seal/Open 0 allocs/op"}
	var n int
	var worst float64
	for _, b := range r.Micro {
		if strings.HasPrefix(b.Name, "BenchmarkSeal/") || strings.HasPrefix(b.Name, "BenchmarkOpen/") {
			n++
			worst = max(worst, b.AllocsPerOp)
		}
	}
	if n > 0 {
		t.Known, t.Met = true, worst == 0
		t.Measured = fmt.Sprintf("max %g allocs/op over %d benchmarks", worst, n)
	}
	out = append(out, t)
	return out
}

// Markdown writes the report; png names the throughput plot next to it.
func (r *Report) Markdown(w io.Writer, png string) error {
	var b strings.Builder
	wg, _ := r.Variant(BaselineKey)
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Benchmarks\n\n")
	p("Written by `make bench` (scripts/bench.sh: the micro-benchmarks, then `TestNetBench` in\n")
	p("internal/interop) from one run on this machine; do not edit by hand. Every variant runs\n")
	p("back to back in the same run between two network namespaces joined by a veth pair, and\n")
	p("ratios are against wireguard-go↔wireguard-go measured in that run.\n\n")
	p("- Date: %s\n", r.Date.UTC().Format("2006-01-02 15:04 UTC"))
	p("- Machine: %s\n", r.Machine)
	p("- Load (/proc/loadavg): start `%s`, end `%s`\n", r.LoadStart, r.LoadEnd)
	for _, v := range r.Versions {
		p("- %s\n", v)
	}
	p("\n")
	for _, n := range r.Notes {
		p("%s\n\n", n)
	}

	p("## Issue 13 targets\n\n| target | measured | met |\n|---|---|---|\n")
	for _, t := range r.Targets() {
		met := "no"
		switch {
		case !t.Known:
			met, t.Measured = "not measured", "–"
		case t.Met:
			met = "yes"
		}
		p("| %s | %s | %s |\n", t.What, t.Measured, met)
	}

	p("\n## Throughput\n\niperf3 TCP, client namespace → gateway namespace through the tunnel, %d s per run,\n", r.Seconds)
	p("receiver side; Mbit/s, the median of %d rounds (each round runs every variant once, in\n", max(r.Rounds, 1))
	p("table order), the ratio to wireguard-go, and the range over the rounds.\n\n")
	p("| variant | suite, tunnel MTU | 1 stream | × wg | 4 streams | × wg | range 1 / 4 streams |\n|---|---|---:|---:|---:|---:|---|\n")
	for _, v := range r.Variants {
		p("| %s | %s | %s | %s | %s | %s | %s / %s |\n", v.Name, v.Detail, mbit(v.Tput1), ratio(v.Tput1, wg.Tput1),
			mbit(v.Tput4), ratio(v.Tput4, wg.Tput4), spread(v.Runs1), spread(v.Runs4))
	}
	if png != "" {
		p("\n![iperf3 TCP throughput per variant](%s)\n", png)
	}

	p("\n## Round-trip time\n\n%d pings at %s intervals through the tunnel (after a warm-up), milliseconds;\n", r.Pings, r.PingInterval)
	p("p99 is nearest-rank (below 100 pings, the largest).\n\n")
	p("| variant | median | × wg | p99 | × wg |\n|---|---:|---:|---:|---:|\n")
	for _, v := range r.Variants {
		m, p99 := Median(v.RTT), Percentile(v.RTT, 99)
		p("| %s | %s | %s | %s | %s |\n", v.Name, ms(m), ratio(float64(m), float64(Median(wg.RTT))), ms(p99), ratio(float64(p99), float64(Percentile(wg.RTT, 99))))
	}

	if len(r.Memory) > 0 {
		p("\n## Memory\n\nThe tunnel processes, /proc/PID/status: VmRSS after connecting and before any\n")
		p("traffic (idle), the largest VmRSS sampled every 50 ms during its iperf3 runs (loaded), and\n")
		p("VmHWM at the end. MiB; ratios against wireguard-go on the same side.\n\n")
		p("| process | idle | × wg | loaded | × wg | VmHWM | × wg |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, m := range r.Memory {
			wm, _ := r.memory(BaselineKey, m.Side)
			p("| %s | %s | %s | %s | %s | %s | %s |\n", m.Name, mib(m.Idle), ratio(float64(m.Idle), float64(wm.Idle)),
				mib(m.Loaded), ratio(float64(m.Loaded), float64(wm.Loaded)), mib(m.HWM), ratio(float64(m.HWM), float64(wm.HWM)))
		}
	}

	if len(r.Connect) > 0 {
		p("\n## Connect time\n\nMilliseconds over n connects (wireguard-go has no connect step to compare with).\n\n")
		p("| connect | n | median | min | max | timed |\n|---|---:|---:|---:|---:|---|\n")
		for _, c := range r.Connect {
			lo, hi := Percentile(c.Times, 0), Percentile(c.Times, 100)
			p("| %s | %d | %s | %s | %s | %s |\n", c.Name, len(c.Times), ms(Median(c.Times)), ms(lo), ms(hi), c.How)
		}
	}

	if len(r.Micro) > 0 {
		p("\n## ESP micro-benchmarks\n\n`go test -bench 'Seal|Open|RawAEAD' -benchmem ./esp/` from the same `make bench` run\n")
		p("(1400-byte packets; BenchmarkSeal/BenchmarkOpen must stay at 0 allocs/op, also asserted by\n")
		p("`TestZeroAllocs` in esp/alloc_test.go).\n\n")
		p("| benchmark | ns/op | MB/s | B/op | allocs/op |\n|---|---:|---:|---:|---:|\n")
		for _, m := range r.Micro {
			mbs := "–"
			if m.MBPerSec > 0 {
				mbs = fmt.Sprintf("%.0f", m.MBPerSec)
			}
			p("| %s | %.0f | %s | %g | %g |\n", m.Name, m.NsPerOp, mbs, m.BytesPerOp, m.AllocsPerOp)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ParseBench reads `go test -bench -benchmem` output and returns the
// result lines of the package whose import path ends in pkgSuffix (e.g.
// "/esp") whose names start with one of prefixes, in input order.
func ParseBench(rd io.Reader, pkgSuffix string, prefixes ...string) ([]Micro, error) {
	var out []Micro
	sc := bufio.NewScanner(rd)
	pkg := ""
	for sc.Scan() {
		line := sc.Text()
		if s, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(s)
			continue
		}
		if !strings.HasSuffix(pkg, pkgSuffix) || !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(f[0], p) }) {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		m := Micro{Name: name}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: value %q is not a number", line, f[i])
			}
			switch f[i+1] {
			case "ns/op":
				m.NsPerOp = v
			case "MB/s":
				m.MBPerSec = v
			case "B/op":
				m.BytesPerOp = v
			case "allocs/op":
				m.AllocsPerOp = v
			}
		}
		out = append(out, m)
	}
	return out, sc.Err()
}
