package benchreport

import (
	"bytes"
	"image/color"
	"image/png"
	"strings"
	"testing"
	"time"
)

// sample is a report with made-up figures.
func sample() *Report {
	ms := func(v ...float64) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x * 1e6)
		}
		return out
	}
	return &Report{
		Date:      time.Date(2026, 12, 1, 16, 0, 0, 0, time.FixedZone("CET", 3600)),
		Machine:   "Test CPU, 2 cores, Linux 6.1",
		LoadStart: "1.00 1.50 2.00 3/100 42", LoadEnd: "2.00 1.60 2.00 3/100 43",
		Seconds: 5, Rounds: 3, Pings: 4, PingInterval: 10 * time.Millisecond,
		Versions: []string{"qcdvpn abc123"},
		Variants: []Variant{
			{Key: "veth", Name: "raw veth", Detail: "none, 1500", Tput1: 16e9, Tput4: 17e9, RTT: ms(0.05, 0.04, 0.06, 0.05)},
			{Key: BaselineKey, Name: "wireguard-go↔wireguard-go", Detail: "ChaCha20-Poly1305, 1420", Tput1: 4e9, Tput4: 3e9, RTT: ms(0.2, 0.3, 0.1, 0.4)},
			{Key: "qcdvpn-aes", Name: "qcdvpn↔qcdvpn", Detail: "AES-256-GCM, 1400", Tput1: 5e9, Tput4: 2.4e9, Runs1: []float64{4e9, 5e9, 6e9}, Runs4: []float64{2.4e9}, RTT: ms(0.3, 0.2, 0.5, 0.4)},
			{Key: "qcdvpn-chacha", Name: "qcdvpn↔qcdvpn", Detail: "ChaCha20-Poly1305, 1400", Tput1: 3.2e9},
		},
		Memory: []Memory{
			{Key: BaselineKey, Name: "wireguard-go", Side: "client", Idle: 8 << 20, Loaded: 16 << 20, HWM: 20 << 20},
			{Key: "qcdvpn-aes", Name: "qcdvpn up", Side: "client", Idle: 12 << 20, Loaded: 30 << 20, HWM: 48 << 20},
			{Key: BaselineKey, Name: "wireguard-go (gw)", Side: "gateway", Idle: 4 << 20, Loaded: 4 << 20, HWM: 4 << 20},
			{Key: "qcdvpn-aes", Name: "qcdvpn gateway", Side: "gateway", Idle: 8 << 20, Loaded: 12 << 20, HWM: 16 << 20},
		},
		Connect: []Connect{{Name: "qcdvpn full", Key: "qcdvpn-full", Times: ms(3, 1, 2), How: "connected.elapsed_ms"}},
		Micro: []Micro{
			{Name: "BenchmarkSeal/AES_GCM_16-256", NsPerOp: 400, MBPerSec: 3500},
			{Name: "BenchmarkOpen/AES_GCM_16-256", NsPerOp: 420, MBPerSec: 3333, AllocsPerOp: 0},
		},
		Notes: []string{"A note."},
	}
}

func TestMarkdownFixedFigures(t *testing.T) {
	r := sample()
	var a, b bytes.Buffer
	if err := r.Markdown(&a, "throughput.png"); err != nil {
		t.Fatal(err)
	}
	if err := r.Markdown(&b, "throughput.png"); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Fatal("two renderings of the same report differ")
	}
	md := a.String()
	for _, want := range []string{
		"- Date: 2026-12-01 15:00 UTC\n",
		"start `1.00 1.50 2.00 3/100 42`, end `2.00 1.60 2.00 3/100 43`",
		"| raw veth | none, 1500 | 16000 | 4.00× | 17000 | 5.67× |",
		"median of 3 rounds",
		"| wireguard-go↔wireguard-go | ChaCha20-Poly1305, 1420 | 4000 | 1.00× | 3000 | 1.00× |",
		"| qcdvpn↔qcdvpn | AES-256-GCM, 1400 | 5000 | 1.25× | 2400 | 0.80× | 4000–6000 / 2400–2400 |\n",
		"| qcdvpn↔qcdvpn | ChaCha20-Poly1305, 1400 | 3200 | 0.80× | – | – | – / – |\n",
		// RTT: medians 0.25 (wg) and 0.35 (qcdvpn); p99 = the largest.
		"| qcdvpn↔qcdvpn | 0.350 | 1.40× | 0.500 | 1.25× |\n",
		"| qcdvpn↔qcdvpn | – | – | – | – |\n",
		"| qcdvpn up | 12.0 | 1.50× | 30.0 | 1.88× | 48.0 | 2.40× |\n",
		"| qcdvpn gateway | 8.0 | 2.00× | 12.0 | 3.00× | 16.0 | 4.00× |\n",
		"| qcdvpn full | 3 | 2.000 | 1.000 | 3.000 | connected.elapsed_ms |\n",
		"| BenchmarkOpen/AES_GCM_16-256 | 420 | 3333 | 0 | 0 |\n",
		"![iperf3 TCP throughput per variant](throughput.png)",
		// Targets.
		"| qcdvpn AES-256-GCM TCP throughput (1 stream) ≥ 1.0× wireguard-go | 1.25× | yes |\n",
		"| qcdvpn AES-256-GCM TCP throughput (4 streams) ≥ 1.0× wireguard-go | 0.80× | no |\n",
		"| qcdvpn ChaCha20-Poly1305 TCP throughput (1 stream) ≥ 0.8× wireguard-go | 0.80× | yes |\n",
		"| qcdvpn ChaCha20-Poly1305 TCP throughput (4 streams) ≥ 0.8× wireguard-go | – | not measured |\n",
		"| qcdvpn AES-256-GCM ping RTT (median) ≤ 1.2× wireguard-go | 1.40× | no |\n",
		"| `qcdvpn up` RSS idle ≤ 15 MiB | 12.0 MiB | yes |\n",
		"| `qcdvpn up` RSS at full throughput ≤ 40 MiB (peak VmHWM) | 48.0 MiB | no |\n",
		"| `esp` Seal/Open 0 allocs/op | max 0 allocs/op over 2 benchmarks | yes |\n",
		"A note.\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q\n%s", want, md)
		}
	}
}

func TestPlotFixedFigures(t *testing.T) {
	r := sample()
	var a, b bytes.Buffer
	if err := r.PlotThroughput(&a); err != nil {
		t.Fatal(err)
	}
	if err := r.PlotThroughput(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two plots of the same report differ")
	}
	img, err := png.Decode(&a)
	if err != nil {
		t.Fatalf("the plot is not a PNG: %v", err)
	}
	if w := img.Bounds().Dx(); w != plotWidth {
		t.Errorf("width %d, want %d", w, plotWidth)
	}
	one, four := BarColors()
	same := func(c color.Color, want color.RGBA) bool {
		r, g, b, a := c.RGBA()
		wr, wg, wb, wa := want.RGBA()
		return r == wr && g == wg && b == wb && a == wa
	}
	const maxBps = 17e9 // the largest figure: raw veth, 4 streams
	for i, v := range r.Variants {
		for s, bps := range []float64{v.Tput1, v.Tput4} {
			col := one
			if s == 1 {
				col = four
			}
			y := BarRow(i, s) + barHeight/2
			w := BarWidth(bps, maxBps)
			if w == 0 {
				if same(img.At(BarLeft+1, y), col) {
					t.Errorf("%s stream %d: a bar where nothing was measured", v.Key, s)
				}
				continue
			}
			if !same(img.At(BarLeft+w-1, y), col) {
				t.Errorf("%s stream %d: pixel %d,%d is %v, want the bar's %v", v.Key, s, BarLeft+w-1, y, img.At(BarLeft+w-1, y), col)
			}
			if same(img.At(BarLeft+w+1, y), col) {
				t.Errorf("%s stream %d: the bar runs past %d px", v.Key, s, w)
			}
		}
	}
	// The bars are to scale: 4 Gbit/s is 4/17 of the longest.
	if got, want := BarWidth(4e9, maxBps), 132; got != want {
		t.Errorf("BarWidth(4e9) = %d, want %d", got, want)
	}
}

func TestParseBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/qcdvpn/qcdvpn/dataplane
BenchmarkSeal/x-2   	 100	 99 ns/op	 0 B/op	 7 allocs/op
pkg: github.com/qcdvpn/qcdvpn/esp
cpu: Test CPU
BenchmarkSeal/AES_GCM_16-256-2         	 2846714	       412.3 ns/op	3395.43 MB/s	       0 B/op	       0 allocs/op
BenchmarkOpen/CHACHA20_POLY1305-2      	 1000000	      1001 ns/op	1398.60 MB/s	       16 B/op	       1 allocs/op
BenchmarkRawAEAD/AES_GCM_16-256-2      	 3000000	       400 ns/op	3500.00 MB/s	       0 B/op	       0 allocs/op
PASS
ok  	github.com/qcdvpn/qcdvpn/esp	3.1s
`
	got, err := ParseBench(strings.NewReader(out), "/esp", "BenchmarkSeal/", "BenchmarkOpen/")
	if err != nil {
		t.Fatal(err)
	}
	want := []Micro{
		{Name: "BenchmarkSeal/AES_GCM_16-256", NsPerOp: 412.3, MBPerSec: 3395.43},
		{Name: "BenchmarkOpen/CHACHA20_POLY1305", NsPerOp: 1001, MBPerSec: 1398.60, BytesPerOp: 16, AllocsPerOp: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	r := &Report{Micro: got}
	for _, tg := range r.Targets() {
		if strings.Contains(tg.What, "allocs") && (tg.Met || !tg.Known) {
			t.Errorf("1 alloc/op passes the 0-allocs target: %+v", tg)
		}
	}
	if _, err := ParseBench(strings.NewReader("pkg: x/esp\nBenchmarkSeal/a-2 1 zz ns/op\n"), "/esp", "BenchmarkSeal/"); err == nil {
		t.Error("a malformed figure parsed without error")
	}
}

func TestPercentileMedian(t *testing.T) {
	d := []time.Duration{5, 1, 4, 2, 3}
	if m := Median(d); m != 3 {
		t.Errorf("Median = %v", m)
	}
	if p := Percentile(d, 99); p != 5 {
		t.Errorf("p99 = %v", p)
	}
	if p := Percentile(d, 0); p != 1 {
		t.Errorf("p0 = %v", p)
	}
	if Median(nil) != 0 || Percentile(nil, 50) != 0 {
		t.Error("empty input gives a figure")
	}
	if m := MedianOf([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("MedianOf = %v", m)
	}
	if d[0] != 5 {
		t.Error("Median sorted its input in place")
	}
}
