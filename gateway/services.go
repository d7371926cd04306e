package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"
)

// Ports and limits of the in-process services.
const (
	EchoPort = 7  // TCP and UDP echo (RFC 862)
	HTTPPort = 80 // HTTP: GET / and GET /bytes?n=N

	// MaxBytes bounds n of GET /bytes.
	MaxBytes = 1 << 30

	// maxEchoConns bounds concurrent TCP echo connections per address, so
	// that a misbehaving client cannot exhaust the gateway's memory.
	maxEchoConns = 256
	// echoIdle closes a TCP echo connection that stays silent this long.
	echoIdle = 5 * time.Minute
	// httpIdle and httpHeader time out idle and slow HTTP clients.
	httpIdle   = 2 * time.Minute
	httpHeader = 10 * time.Second
)

// StartServices serves, on tnet, the hosts "behind" a netstack gateway: a
// TCP and a UDP echo on port 7 and HTTP on port 80 of every address in
// addrs. "GET /" answers 200 with the body "qcdvpn gateway <name>\n";
// "GET /bytes?n=N" streams N zero bytes (0 <= N <= MaxBytes). ICMP echo
// needs no service: gVisor's IPv4 and IPv6 stacks answer echo requests to
// their own addresses themselves. The addrs should be tnet's own: gVisor
// lets one listen on any address, but only its own receive traffic.
//
// The services run until ctx ends or stop is called; stop closes every
// listener and connection and returns once all their goroutines ended. It
// may be called more than once.
func StartServices(ctx context.Context, tnet *netstack.Net, addrs []netip.Addr, name string, log *slog.Logger) (stop func(), err error) {
	if tnet == nil {
		return nil, errors.New("gateway: services: no netstack")
	}
	if len(addrs) == 0 {
		return nil, errors.New("gateway: services: no address to serve on")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &services{log: log, done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	body := []byte("qcdvpn gateway " + name + "\n")
	for _, a := range addrs {
		a = a.Unmap()
		if !a.IsValid() || a.IsUnspecified() {
			return nil, fmt.Errorf("gateway: services: invalid address %s", a)
		}
		tl, err := tnet.ListenTCPAddrPort(netip.AddrPortFrom(a, EchoPort))
		if err != nil {
			return nil, fmt.Errorf("gateway: services: TCP echo on %s: %w", a, err)
		}
		s.addCloser(tl)
		s.goEcho(tl)
		ul, err := tnet.ListenUDPAddrPort(netip.AddrPortFrom(a, EchoPort))
		if err != nil {
			return nil, fmt.Errorf("gateway: services: UDP echo on %s: %w", a, err)
		}
		s.addCloser(ul)
		s.goUDPEcho(ul)
		hl, err := tnet.ListenTCPAddrPort(netip.AddrPortFrom(a, HTTPPort))
		if err != nil {
			return nil, fmt.Errorf("gateway: services: HTTP on %s: %w", a, err)
		}
		s.goHTTP(hl, body)
	}
	// Close everything when ctx ends too; stop still waits.
	s.unhook = context.AfterFunc(ctx, s.closeAll)
	log.Info("gateway services up", "addrs", addrs, "echo", EchoPort, "http", HTTPPort)
	return s.stop, nil
}

// services is the state of one StartServices call.
type services struct {
	log    *slog.Logger
	wg     sync.WaitGroup
	once   sync.Once
	done   chan struct{}
	unhook func() bool // unregisters the close on ctx's end

	mu      sync.Mutex
	closers []io.Closer
	servers []*http.Server
	conns   map[net.Conn]struct{}
}

// stop closes everything and waits for every goroutine.
func (s *services) stop() {
	if s.unhook != nil {
		s.unhook()
	}
	s.closeAll()
	s.wg.Wait()
}

// closeAll closes every listener and connection, once.
func (s *services) closeAll() {
	s.once.Do(func() {
		close(s.done)
		s.mu.Lock()
		closers, servers := s.closers, s.servers
		s.closers, s.servers = nil, nil
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		for _, c := range closers {
			c.Close()
		}
		for _, srv := range servers {
			srv.Close() // listeners and connections
		}
	})
}

func (s *services) addCloser(c io.Closer) {
	s.mu.Lock()
	s.closers = append(s.closers, c)
	s.mu.Unlock()
}

// track registers an accepted connection; false once stopping.
func (s *services) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return false
	default:
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *services) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *services) goEcho(l net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		slots := make(chan struct{}, maxEchoConns)
		for {
			c, err := l.Accept()
			if err != nil {
				select {
				case <-s.done:
				default:
					s.log.Debug("TCP echo accept", "err", err)
				}
				return
			}
			select {
			case slots <- struct{}{}:
			default:
				c.Close() // full: refuse rather than queue
				continue
			}
			if !s.track(c) {
				c.Close()
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { <-slots }()
				defer s.untrack(c)
				echo(c)
			}()
		}
	}()
}

// echo copies c back to itself until EOF, an error or echoIdle of silence.
func echo(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		c.SetReadDeadline(time.Now().Add(echoIdle))
		n, err := c.Read(buf)
		if n > 0 {
			c.SetWriteDeadline(time.Now().Add(echoIdle))
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *services) goUDPEcho(c net.PacketConn) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return // closed by stop
			}
			if _, err := c.WriteTo(buf[:n], from); err != nil {
				s.log.Debug("UDP echo", "to", from, "err", err)
			}
		}
	}()
}

func (s *services) goHTTP(l net.Listener, body []byte) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	mux.HandleFunc("GET /bytes", serveBytes)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: httpHeader,
		IdleTimeout:       httpIdle,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Debug("HTTP serve", "err", err)
		}
	}()
}

// serveBytes answers GET /bytes?n=N with N zero bytes.
func serveBytes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()["n"]
	if len(q) != 1 {
		http.Error(w, "want one query parameter n", http.StatusBadRequest)
		return
	}
	n, err := strconv.ParseInt(q[0], 10, 64)
	if err != nil || n < 0 || n > MaxBytes {
		http.Error(w, fmt.Sprintf("n: want an integer 0..%d", MaxBytes), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	zeros := make([]byte, min(n, 64<<10))
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return // client went away
		}
		n -= k
	}
}
