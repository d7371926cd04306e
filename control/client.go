package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// Client talks to a Server. Its methods may be called from several
// goroutines; requests are sent one at a time.
type Client struct {
	path string

	mu   sync.Mutex
	conn *net.UnixConn
	r    *bufio.Reader
}

// Dial connects to the socket at path (DefaultPath if empty). When path
// is the default of a user other than root and nothing serves it, Dial
// tries SystemPath too: a `sudo qcdvpn up` serves there, and lets that
// user in (--control-owner).
func Dial(ctx context.Context, path string) (*Client, error) {
	if path == "" {
		path = DefaultPath()
	}
	conn, err := dial(ctx, path)
	if errors.Is(err, errNotRunning) && path == DefaultPath() && path != SystemPath && os.Getenv("QCDVPN_CONTROL") == "" && runtime.GOOS != "windows" {
		if c, serr := dial(ctx, SystemPath); serr == nil {
			conn, err, path = c, nil, SystemPath
		} else if !errors.Is(serr, errNotRunning) {
			err = serr // it is there, but refuses us: say so
		} else {
			err = fmt.Errorf("%w (nothing serves %s or %s)", errNotRunning, path, SystemPath)
		}
	} else if errors.Is(err, errNotRunning) {
		err = fmt.Errorf("%w (nothing serves %s)", errNotRunning, path)
	}
	if err != nil {
		return nil, err
	}
	return &Client{path: path, conn: conn, r: bufio.NewReader(conn)}, nil
}

// errNotRunning is Dial's error when no server listens at the path.
var errNotRunning = errors.New("no qcdvpn is running")

func dial(ctx context.Context, path string) (*net.UnixConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, errNotRunning
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("control socket %s: permission denied", path)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return c.(*net.UnixConn), nil
}

// Path is the socket's path.
func (c *Client) Path() string { return c.path }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// RemoteError is an error the server replied with.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return e.Msg }

// roundTrip sends req and reads its reply; ctx ending interrupts both.
func (c *Client) roundTrip(ctx context.Context, req Request) (Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return exchange(ctx, c.conn, c.r, req)
}

func exchange(ctx context.Context, conn *net.UnixConn, r *bufio.Reader, req Request) (Reply, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return Reply{}, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_, werr := conn.Write(append(b, '\n'))
	if werr != nil {
		// The server may have refused us and closed before reading: its
		// reason is still there to read.
		conn.SetReadDeadline(time.Now().Add(time.Second))
	}
	line, err := readLine(r, maxReplySize)
	if werr != nil && err != nil {
		return Reply{}, connErr(ctx, werr)
	}
	if err != nil {
		return Reply{}, connErr(ctx, err)
	}
	var rep Reply
	if err := json.Unmarshal(line, &rep); err != nil {
		return Reply{}, errors.New("control: the server sent an invalid reply")
	}
	if !rep.OK {
		if rep.Error == "" {
			rep.Error = "the server refused the request without saying why"
		}
		return rep, &RemoteError{Msg: rep.Error}
	}
	return rep, nil
}

func connErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.EOF) {
		return errors.New("control: the server closed the connection")
	}
	return fmt.Errorf("control: %w", err)
}

// Status returns the engine's state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	rep, err := c.roundTrip(ctx, Request{Cmd: CmdStatus})
	if err != nil {
		return Status{}, err
	}
	if rep.Status == nil {
		return Status{}, errors.New("control: the server sent no status")
	}
	return *rep.Status, nil
}

// Connect connects with profileJSON (a profile document; file paths in
// it should be absolute, as the server resolves them from its own working
// directory), or reconnects with the current profile if it is empty.
func (c *Client) Connect(ctx context.Context, profileJSON []byte) error {
	req := Request{Cmd: CmdConnect}
	if len(profileJSON) > 0 {
		req.Profile = json.RawMessage(profileJSON)
	}
	_, err := c.roundTrip(ctx, req)
	return err
}

// Disconnect takes the tunnel down; the service keeps running.
func (c *Client) Disconnect(ctx context.Context) error {
	_, err := c.roundTrip(ctx, Request{Cmd: CmdDisconnect})
	return err
}

// Down disconnects and ends the service; it returns once the service has
// closed the connection (gone), or with ctx's error if that takes longer.
func (c *Client) Down(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := exchange(ctx, c.conn, c.r, Request{Cmd: CmdDown}); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	_, err := io.Copy(io.Discard, c.r)
	if ctx.Err() != nil {
		return fmt.Errorf("control: down accepted, but the service has not exited yet: %w", ctx.Err())
	}
	_ = err // EOF or a reset: the service is gone
	return nil
}

// Events opens a stream of live events on a connection of its own. The
// channel closes when ctx ends or the server goes.
func (c *Client) Events(ctx context.Context) (<-chan sdk.Event, error) {
	conn, err := dial(ctx, c.path)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	if _, err := exchange(ctx, conn, r, Request{Cmd: CmdEvents}); err != nil {
		conn.Close()
		return nil, err
	}
	ch := make(chan sdk.Event, 64)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	go func() {
		defer close(ch)
		defer stop()
		defer conn.Close()
		for {
			line, err := readLine(r, maxReplySize)
			if err != nil {
				return
			}
			e, err := DecodeEvent(line)
			if err != nil {
				continue // a line this version cannot read
			}
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}
