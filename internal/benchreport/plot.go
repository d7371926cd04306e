package benchreport

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Plot geometry, in pixels.
const (
	plotWidth  = 960
	labelWidth = 250 // variant names left of the bars
	valueWidth = 150 // room right of the longest bar for its figure
	topMargin  = 56
	barHeight  = 16
	barGap     = 4  // between a variant's two bars
	groupGap   = 18 // between variants
	legendRow  = 30
)

// Colours of the chart: one per stream count, fixed so the PNG is the
// same for the same figures.
var (
	colBackground = color.RGBA{255, 255, 255, 255}
	colText       = color.RGBA{20, 20, 20, 255}
	colAxis       = color.RGBA{160, 160, 160, 255}
	colOne        = color.RGBA{66, 133, 244, 255} // 1 stream
	colFour       = color.RGBA{244, 160, 0, 255}  // 4 streams
)

// BarColors are the colours of the 1-stream and 4-stream bars, for tests.
func BarColors() (one, four color.RGBA) { return colOne, colFour }

// PlotThroughput draws the throughput table as a horizontal bar chart:
// per variant one bar for 1 stream and one for 4 streams, on a linear
// Mbit/s scale shared by all, each labelled with its figure and its ratio
// to wireguard-go.
func (r *Report) PlotThroughput(w io.Writer) error {
	img := r.throughputImage()
	return png.Encode(w, img)
}

// BarRow is where PlotThroughput puts the bar of variant i (stream 0 = 1
// stream, 1 = 4 streams): its top pixel row. For tests.
func BarRow(i, stream int) int {
	return topMargin + i*(2*barHeight+barGap+groupGap) + stream*(barHeight+barGap)
}

// BarLeft is the first pixel column of every bar. For tests.
const BarLeft = labelWidth

// BarWidth is the length in pixels of a bar of bps when the largest
// figure in the chart is maxBps. For tests.
func BarWidth(bps, maxBps float64) int {
	if bps <= 0 || maxBps <= 0 {
		return 0
	}
	return int(math.Round(bps / maxBps * float64(plotWidth-labelWidth-valueWidth)))
}

func (r *Report) throughputImage() *image.RGBA {
	n := len(r.Variants)
	h := BarRow(n, 0) + legendRow
	img := image.NewRGBA(image.Rect(0, 0, plotWidth, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(colBackground), image.Point{}, draw.Src)
	var maxBps float64
	for _, v := range r.Variants {
		maxBps = max(maxBps, v.Tput1, v.Tput4)
	}
	text(img, 10, 20, fmt.Sprintf("iperf3 TCP throughput, Mbit/s (median of %d rounds of %d s; ratio to wireguard-go)", max(r.Rounds, 1), r.Seconds))
	text(img, 10, 38, r.Date.UTC().Format("2006-01-02 15:04 UTC")+"  "+r.Machine)
	wg, _ := r.Variant(BaselineKey)
	for i, v := range r.Variants {
		y := BarRow(i, 0)
		text(img, 10, y+barHeight-3, clip(v.Name, 34))
		text(img, 10, BarRow(i, 1)+barHeight-3, clip(v.Detail, 34))
		for s, f := range []struct {
			bps, base float64
			col       color.RGBA
		}{{v.Tput1, wg.Tput1, colOne}, {v.Tput4, wg.Tput4, colFour}} {
			top := BarRow(i, s)
			bw := BarWidth(f.bps, maxBps)
			draw.Draw(img, image.Rect(BarLeft, top, BarLeft+bw, top+barHeight), image.NewUniform(f.col), image.Point{}, draw.Src)
			label := "not measured"
			if f.bps > 0 {
				label = mbit(f.bps)
				if rt := ratio(f.bps, f.base); rt != "–" && v.Key != BaselineKey {
					label += "  " + ascii(rt)
				}
			}
			text(img, BarLeft+bw+6, top+barHeight-3, label)
		}
	}
	// The axis at the bars' left edge.
	bottom := BarRow(n, 0) - groupGap + 4
	draw.Draw(img, image.Rect(BarLeft-1, topMargin-4, BarLeft, bottom), image.NewUniform(colAxis), image.Point{}, draw.Src)
	// Legend.
	ly := bottom + 8
	draw.Draw(img, image.Rect(BarLeft, ly, BarLeft+14, ly+12), image.NewUniform(colOne), image.Point{}, draw.Src)
	text(img, BarLeft+20, ly+11, "1 stream")
	draw.Draw(img, image.Rect(BarLeft+120, ly, BarLeft+134, ly+12), image.NewUniform(colFour), image.Point{}, draw.Src)
	text(img, BarLeft+140, ly+11, "4 streams")
	return img
}

// text draws s with its baseline at (x, y) in the fixed 7x13 bitmap font
// (ASCII only: anything else is drawn as '?').
func text(img *image.RGBA, x, y int, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(colText), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(ascii(s))
}

func ascii(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case r == '↔':
			b = append(b, "<->"...)
		case r == '→':
			b = append(b, "->"...)
		case r == '×':
			b = append(b, 'x')
		case r == '–':
			b = append(b, '-')
		case r < 0x20 || r > 0x7e:
			b = append(b, '?')
		default:
			b = append(b, byte(r))
		}
	}
	return string(b)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "."
}
