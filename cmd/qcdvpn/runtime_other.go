//go:build !unix

package main

import (
	"context"
	"io"
)

// reportRuntimeOnSignal: there is no SIGUSR1 here.
func reportRuntimeOnSignal(context.Context, io.Writer) {}
