package desktop

import (
	"image"
	"image/color"
	"image/draw"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
)

// graphPoints is how many one-second samples the traffic graph shows.
const graphPoints = 60

// Colours of the graph lines: received and sent.
var (
	colorIn   = color.RGBA{0x2e, 0x9d, 0x4f, 0xff}
	colorOut  = color.RGBA{0x1f, 0x5f, 0xb4, 0xff}
	colorGrid = color.RGBA{0x80, 0x80, 0x80, 0x40}
)

// Graph is the live traffic graph: inbound and outbound bytes per second
// over the last minute, drawn into a raster so it scales with the window.
type Graph struct {
	mu      sync.Mutex
	in, out []float64 // oldest first, at most graphPoints
	raster  *canvas.Raster
}

// NewGraph returns an empty graph.
func NewGraph() *Graph {
	g := &Graph{}
	g.raster = canvas.NewRaster(g.draw)
	g.raster.SetMinSize(fyne.NewSize(320, 120))
	return g
}

// Object is the graph's canvas object.
func (g *Graph) Object() fyne.CanvasObject { return g.raster }

// Add appends one sample (bytes per second in and out) and redraws.
func (g *Graph) Add(in, out float64) {
	g.mu.Lock()
	g.in = appendCapped(g.in, in)
	g.out = appendCapped(g.out, out)
	g.mu.Unlock()
	g.raster.Refresh()
}

// Reset clears the graph (a new connection).
func (g *Graph) Reset() {
	g.mu.Lock()
	g.in, g.out = nil, nil
	g.mu.Unlock()
	g.raster.Refresh()
}

// Samples returns copies of the samples, oldest first.
func (g *Graph) Samples() (in, out []float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]float64(nil), g.in...), append([]float64(nil), g.out...)
}

func appendCapped(s []float64, v float64) []float64 {
	s = append(s, v)
	if len(s) > graphPoints {
		s = s[len(s)-graphPoints:]
	}
	return s
}

func (g *Graph) draw(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.Transparent, image.Point{}, draw.Src)
	if w < 4 || h < 4 {
		return img
	}
	for i := 1; i < 4; i++ {
		y := h - 1 - i*(h-1)/4
		for x := 0; x < w; x++ {
			img.Set(x, y, colorGrid)
		}
	}
	g.mu.Lock()
	in, out := append([]float64(nil), g.in...), append([]float64(nil), g.out...)
	g.mu.Unlock()
	top := 1.0
	for _, v := range append(in, out...) {
		top = max(top, v)
	}
	top *= 1.3
	line := func(s []float64, c color.RGBA) {
		step := float64(w-3) / float64(graphPoints-1)
		off := graphPoints - len(s)
		px, py := -1, -1
		for i, v := range s {
			x := 1 + int(float64(off+i)*step)
			y := h - 2 - int(v/top*float64(h-3))
			if px >= 0 {
				thickLine(img, px, py, x, y, c)
			} else {
				thickLine(img, x, y, x, y, c)
			}
			px, py = x, y
		}
	}
	// Received: a translucent area under a line; sent: a line on top.
	fill := color.RGBA{colorIn.R / 3, colorIn.G / 3, colorIn.B / 3, 0x55}
	step := float64(w-3) / float64(graphPoints-1)
	off := graphPoints - len(in)
	for i := 0; i+1 < len(in); i++ {
		x0, x1 := 1+int(float64(off+i)*step), 1+int(float64(off+i+1)*step)
		for x := x0; x <= x1; x++ {
			f := float64(x-x0) / float64(max(x1-x0, 1))
			v := in[i]*(1-f) + in[i+1]*f
			for y := h - 2 - int(v/top*float64(h-3)); y < h-1; y++ {
				img.SetRGBA(x, y, fill)
			}
		}
	}
	line(in, colorIn)
	line(out, colorOut)
	return img
}

// thickLine draws a two-pixel Bresenham line from (x0,y0) to (x1,y1).
func thickLine(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		img.SetRGBA(x0+1, y0, c)
		img.SetRGBA(x0, y0+1, c)
		img.SetRGBA(x0+1, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
