package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// trayAvailable reports whether a system tray can be set up. On Linux
// and the BSDs the tray is a D-Bus StatusNotifierItem; without a session
// bus Fyne's systray fails (and crashes on quit), so the app then runs
// without a tray.
func trayAvailable() bool {
	switch runtime.GOOS {
	case "windows", "darwin":
		return true
	}
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return true
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "bus")); err == nil {
			return true
		}
	}
	_, err := exec.LookPath("dbus-launch")
	return err == nil
}
