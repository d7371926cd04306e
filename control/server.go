package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// ErrInUse is returned by Listen when another process serves the path.
var ErrInUse = errors.New("in use by another running qcdvpn")

// writeTimeout bounds one reply or event write, so that a client that
// stops reading cannot hold a handler forever.
const writeTimeout = 10 * time.Second

// ServerOptions tune a Server.
type ServerOptions struct {
	// AllowUIDs may connect besides root and the server's own user. The
	// first one also gets the socket (and its directory, when the server
	// runs as root): the user who ran `sudo qcdvpn up`, say.
	AllowUIDs []int
	// Log receives refused connections and errors; nil discards.
	Log *slog.Logger
}

// Server serves one control socket.
type Server struct {
	path    string
	ln      *net.UnixListener
	log     *slog.Logger
	allowed map[int]bool

	mu     sync.Mutex
	conns  map[*net.UnixConn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen creates the socket at path (DefaultPath if empty). Its directory
// is created 0700 if missing; a directory Listen created, or one named
// qcdvpn*, is made 0700 (0711 with several AllowUIDs) and, for root, given
// to the first AllowUID. The socket is 0600 (0666 with several
// AllowUIDs: the peer-credential check is then the only gate) and belongs
// to the first AllowUID, if any. A live socket at path is never replaced
// (ErrInUse); a stale one is removed.
func Listen(path string, opts ServerOptions) (*Server, error) {
	if path == "" {
		path = DefaultPath()
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	euid := os.Geteuid()
	owner := -1
	if len(opts.AllowUIDs) > 0 && euid == 0 {
		owner = opts.AllowUIDs[0]
	}
	dirMode, sockMode := os.FileMode(0o700), os.FileMode(0o600)
	if len(opts.AllowUIDs) > 1 {
		dirMode, sockMode = 0o711, 0o666
	}
	if err := prepareDir(filepath.Dir(path), euid, owner, dirMode); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := removeStale(path); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if errors.Is(err, syscall.EADDRINUSE) {
		// Another process bound it since removeStale looked.
		return nil, fmt.Errorf("control socket %s: %w", path, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, sockMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if owner >= 0 {
		if err := chown(path, owner); err != nil {
			ln.Close()
			return nil, fmt.Errorf("control socket %s: %w", path, err)
		}
	}
	allowed := map[int]bool{0: true}
	if euid >= 0 {
		allowed[euid] = true
	}
	for _, u := range opts.AllowUIDs {
		allowed[u] = true
	}
	return &Server{path: path, ln: ln, log: log, allowed: allowed, conns: map[*net.UnixConn]struct{}{}}, nil
}

// prepareDir makes sure dir exists, is a real directory and belongs to
// us (or root, or owner); it tightens only directories that are ours.
func prepareDir(dir string, euid, owner int, mode os.FileMode) error {
	created := false
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		created = true
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("directory %s is a symbolic link", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	ours := created || strings.HasPrefix(filepath.Base(dir), "qcdvpn")
	if uid, ok := fileOwner(fi); ok && uid != euid && uid != 0 && uid != owner && !(ours && euid == 0) {
		return fmt.Errorf("directory %s belongs to uid %d, not to us", dir, uid)
	}
	if !ours {
		return nil // someone else's directory, such as /tmp: leave it as it is
	}
	if euid == 0 {
		// Take it back first (an earlier run may have given it to
		// another user), then open it to this run's owner.
		to := 0
		if owner >= 0 {
			to = owner
		}
		if err := chown(dir, 0); err != nil {
			return err
		}
		if err := os.Chmod(dir, mode); err != nil {
			return err
		}
		return chown(dir, to)
	}
	return os.Chmod(dir, mode)
}

// removeStale removes a socket nobody serves; a live one is ErrInUse.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return errors.New("exists and is not a socket")
	}
	d := net.Dialer{Timeout: time.Second}
	if c, err := d.Dial("unix", path); err == nil {
		c.Close()
		return ErrInUse
	}
	return os.Remove(path)
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting, closes every connection and removes the socket.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	return s.ln.Close()
}

// Serve answers requests with b until ctx ends or Close is called; it
// returns nil then, after every handler has finished.
func (s *Server) Serve(ctx context.Context, b Backend) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var err error
	for {
		conn, aerr := s.ln.AcceptUnix()
		if aerr != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if !closed && ctx.Err() == nil {
				err = aerr
				s.Close()
			}
			break
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			continue
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, conn)
				s.mu.Unlock()
				conn.Close()
			}()
			s.handle(ctx, conn, b)
		}()
	}
	cancel()
	s.wg.Wait()
	return err
}

// handle serves one connection: the peer check, then requests in turn.
func (s *Server) handle(ctx context.Context, conn *net.UnixConn, b Backend) {
	uid, err := peerUID(conn)
	if err != nil {
		s.log.Warn("control: refused a connection: cannot read peer credentials", "err", err)
		s.reply(conn, Reply{Error: "refused: cannot tell who is connecting (" + oneLine(err) + ")"})
		return
	}
	if !s.allowed[uid] {
		s.log.Warn("control: refused a connection", "uid", uid)
		s.reply(conn, Reply{Error: fmt.Sprintf("refused: uid %d may not use this control socket", uid)})
		return
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	for {
		line, err := readLine(r, MaxRequestSize)
		if errors.Is(err, errLineTooLong) {
			s.reply(conn, Reply{Error: fmt.Sprintf("request too large (the limit is %d bytes)", MaxRequestSize)})
			return
		}
		if err != nil {
			return
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		req, err := DecodeRequest(line)
		if err != nil {
			if !s.reply(conn, Reply{Error: oneLine(err)}) {
				return
			}
			continue
		}
		s.log.Debug("control: request", "cmd", req.Cmd, "uid", uid)
		switch req.Cmd {
		case CmdStatus:
			st := b.Status()
			if !s.reply(conn, Reply{OK: true, Status: &st}) {
				return
			}
		case CmdConnect:
			if !s.reply(conn, result(b.Connect(ctx, req.Profile))) {
				return
			}
		case CmdDisconnect:
			if !s.reply(conn, result(b.Disconnect(ctx))) {
				return
			}
		case CmdDown:
			// Reply first: the client then waits for the connection to
			// close, which happens when the service has gone.
			s.reply(conn, Reply{OK: true})
			s.log.Info("control: down requested", "uid", uid)
			b.Shutdown()
			return
		case CmdEvents:
			s.stream(ctx, conn, r, b)
			return
		}
	}
}

func result(err error) Reply {
	if err != nil {
		return Reply{Error: oneLine(err)}
	}
	return Reply{OK: true}
}

// stream sends events until the client goes, the backend shuts down or
// the server stops.
func (s *Server) stream(ctx context.Context, conn *net.UnixConn, r *bufio.Reader, b Backend) {
	ch, cancel := b.Subscribe()
	defer cancel()
	if !s.reply(conn, Reply{OK: true}) {
		return
	}
	gone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, r) // nothing more is expected; EOF means the client left
		close(gone)
	}()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return
			}
			if !s.writeLine(conn, e) {
				return
			}
		case <-gone:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (s *Server) reply(conn *net.UnixConn, r Reply) bool { return s.writeLine(conn, r) }

func (s *Server) writeLine(conn *net.UnixConn, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Warn("control: encoding a reply", "err", err)
		return false
	}
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write(append(b, '\n')); err != nil {
		s.log.Debug("control: writing a reply", "err", err)
		return false
	}
	return true
}

// compile-time check that sdk.Event encodes as the stream expects.
var _ json.Marshaler = sdk.Event{}
