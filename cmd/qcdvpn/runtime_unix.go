//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// reportRuntimeOnSignal writes one line about the Go runtime (goroutines,
// heap) to w each time the process gets SIGUSR1, until ctx ends, so that a
// long-running `qcdvpn up` can be watched for leaks from outside (the soak
// test does).
func reportRuntimeOnSignal(ctx context.Context, w io.Writer) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				fmt.Fprintf(w, "qcdvpn: runtime goroutines=%d heap_inuse=%d sys=%d\n", runtime.NumGoroutine(), ms.HeapInuse, ms.Sys)
			}
		}
	}()
}
