package desktop

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// iconFile is the package icon `fyne package` uses (FyneApp.toml).
var iconFile = filepath.Join("cmd", "qcdvpn-desktop", "Icon.png")

// TestIconFile checks Icon.png is the icon IconPNG draws at 512 pixels
// (QCDVPN_UPDATE_ICON=1 rewrites it).
func TestIconFile(t *testing.T) {
	want := IconPNG(512, colorApp)
	if os.Getenv("QCDVPN_UPDATE_ICON") == "1" {
		if err := os.WriteFile(iconFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(iconFile)
	if err != nil {
		t.Fatal(err)
	}
	got, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", iconFile, err)
	}
	w, _ := png.Decode(bytes.NewReader(want))
	if got.Bounds() != w.Bounds() {
		t.Fatalf("%s is %v, want %v", iconFile, got.Bounds(), w.Bounds())
	}
	for y := 0; y < 512; y++ {
		for x := 0; x < 512; x++ {
			if got.At(x, y) != w.At(x, y) {
				t.Fatalf("%s differs from IconPNG at (%d,%d); run with QCDVPN_UPDATE_ICON=1", iconFile, x, y)
			}
		}
	}
}

// TestStateIcons: the three tray icons differ and show their colour at
// the disc's edge, transparent outside it.
func TestStateIcons(t *testing.T) {
	seen := map[string]bool{}
	for state, want := range map[string][4]uint8{
		StateConnected:    {colorUp.R, colorUp.G, colorUp.B, 0xff},
		StateConnecting:   {colorBusy.R, colorBusy.G, colorBusy.B, 0xff},
		StateReconnecting: {colorBusy.R, colorBusy.G, colorBusy.B, 0xff},
		StateDisconnected: {colorDown.R, colorDown.G, colorDown.B, 0xff},
		StateIdle:         {colorDown.R, colorDown.G, colorDown.B, 0xff},
	} {
		res := StateIcon(state)
		seen[res.Name()] = true
		img, err := png.Decode(bytes.NewReader(res.Content()))
		if err != nil {
			t.Fatalf("%s: %v", state, err)
		}
		if img.Bounds() != image.Rect(0, 0, 64, 64) {
			t.Fatalf("%s icon is %v", state, img.Bounds())
		}
		r, g, b, a := img.At(10, 32).RGBA()
		if got := [4]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}; got != want {
			t.Errorf("%s icon colour %v, want %v", state, got, want)
		}
		if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
			t.Errorf("%s icon corner not transparent", state)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("%d distinct state icons, want 3", len(seen))
	}
}
