package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// forward is one --forward LISTEN=TARGET: a local TCP listener whose
// connections are carried through the netstack tunnel to TARGET.
type forward struct {
	listen string
	target netip.AddrPort
}

func (f forward) String() string { return f.listen + "=" + f.target.String() }

type forwardList []forward

func (l *forwardList) String() string { return fmt.Sprint(*l) }

func (l *forwardList) Set(s string) error {
	listen, target, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want LISTEN=TARGET, got %q", s)
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return fmt.Errorf("listen address %q: %v", listen, err)
	}
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		return fmt.Errorf("target %q: want IP:port", target)
	}
	*l = append(*l, forward{listen: listen, target: ap})
	return nil
}

// start listens and serves until ctx ends; c gives the client to dial
// through (the engine replaces it on reconnects).
func (f forward) start(ctx context.Context, c func() *sdk.Client, log *slog.Logger) error {
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(ctx, c, conn, log)
		}
	}()
	return nil
}

func (f forward) serve(ctx context.Context, c func() *sdk.Client, conn net.Conn, log *slog.Logger) {
	defer conn.Close()
	cl := c() // the engine's client of the moment
	if cl == nil {
		return
	}
	tnet := cl.Net()
	if tnet == nil {
		return
	}
	up, err := tnet.DialContextTCPAddrPort(ctx, f.target)
	if err != nil {
		log.Info("forward: dial through tunnel", "target", f.target, "err", err)
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, conn); up.CloseWrite(); done <- struct{}{} }()
	go func() {
		io.Copy(conn, up)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite() // the far end finished: pass the EOF on
		}
		done <- struct{}{}
	}()
	<-done
	<-done
}
