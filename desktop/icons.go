package desktop

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"

	"fyne.io/fyne/v2"
)

// Colours of the state icons: connected, connecting or reconnecting,
// and down (idle, disconnected, no backend).
var (
	colorUp   = color.RGBA{0x2e, 0x9d, 0x4f, 0xff}
	colorBusy = color.RGBA{0xe0, 0x9b, 0x1a, 0xff}
	colorDown = color.RGBA{0x8a, 0x8f, 0x98, 0xff}
	colorApp  = color.RGBA{0x1f, 0x5f, 0xb4, 0xff}
)

// Icon resources, drawn once at start: a padlock on a coloured disc.
var (
	iconUp   = fyne.NewStaticResource("qcdvpn-connected.png", IconPNG(64, colorUp))
	iconBusy = fyne.NewStaticResource("qcdvpn-connecting.png", IconPNG(64, colorBusy))
	iconDown = fyne.NewStaticResource("qcdvpn-disconnected.png", IconPNG(64, colorDown))
	// AppIcon is the window and package icon (the same as Icon.png).
	AppIcon = fyne.NewStaticResource("Icon.png", IconPNG(256, colorApp))
)

// StateIcon is the tray icon for a Status.State.
func StateIcon(state string) fyne.Resource {
	switch state {
	case StateConnected:
		return iconUp
	case StateConnecting, StateReconnecting:
		return iconBusy
	}
	return iconDown
}

// IconPNG draws the qcdvpn icon, size pixels square: a white padlock on a
// disc of colour fill, 4× supersampled for smooth edges.
func IconPNG(size int, fill color.RGBA) []byte {
	const ss = 4
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	n := float64(size)
	white := color.RGBA{0xff, 0xff, 0xff, 0xff}
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			var r, g, b, a float64
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					u := (float64(x) + (float64(sx)+0.5)/ss) / n
					v := (float64(y) + (float64(sy)+0.5)/ss) / n
					c, ok := iconAt(u, v, fill, white)
					if !ok {
						continue
					}
					r += float64(c.R)
					g += float64(c.G)
					b += float64(c.B)
					a += 255
				}
			}
			const k = ss * ss
			// Premultiplied: colour sums over covered samples only.
			img.SetRGBA(x, y, color.RGBA{uint8(r / k), uint8(g / k), uint8(b / k), uint8(a / k)})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img) // encoding an in-memory RGBA cannot fail
	return buf.Bytes()
}

// iconAt is the icon's colour at (u, v) in [0,1]², false outside the disc.
func iconAt(u, v float64, fill, fg color.RGBA) (color.RGBA, bool) {
	dx, dy := u-0.5, v-0.5
	if dx*dx+dy*dy > 0.24 {
		return color.RGBA{}, false
	}
	// Lock body: a rounded rectangle.
	if u > 0.30 && u < 0.70 && v > 0.46 && v < 0.76 {
		// Keyhole.
		kx, ky := u-0.5, v-0.57
		if kx*kx+ky*ky < 0.0025 || (math.Abs(kx) < 0.018 && v > 0.57 && v < 0.68) {
			return fill, true
		}
		return fg, true
	}
	// Shackle: a half ring above the body.
	sx, sy := u-0.5, v-0.46
	d := math.Sqrt(sx*sx + sy*sy)
	if sy <= 0 && d > 0.10 && d < 0.155 {
		return fg, true
	}
	return fill, true
}
