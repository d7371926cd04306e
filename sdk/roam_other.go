//go:build !linux

package sdk

import (
	"errors"
	"log/slog"
)

// netWatch: outside Linux the platform reports changes through
// Client.NetworkChanged (ConnectivityManager, NWPathMonitor).
type netWatch struct{}

func startNetWatch(func(), *slog.Logger) (*netWatch, error) {
	return nil, errors.New("no network watch on this OS; call Client.NetworkChanged")
}

func (w *netWatch) close() {}
