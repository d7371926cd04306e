package sdk

import (
	"log/slog"
	"os"
	"syscall"
)

// netWatch reads rtnetlink address, link and route notifications: any of
// them may change the source address towards the gateway.
type netWatch struct {
	f    *os.File
	deb  *debouncer
	done chan struct{}
}

// rtnetlink multicast groups (linux/rtnetlink.h; Android's syscall
// package lacks the names).
const (
	rtmgrpLink       = 0x1
	rtmgrpIPv4IfAddr = 0x10
	rtmgrpIPv4Route  = 0x40
	rtmgrpIPv6IfAddr = 0x100
	rtmgrpIPv6Route  = 0x400
)

func startNetWatch(onChange func(), log *slog.Logger) (*netWatch, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	groups := uint32(rtmgrpLink | rtmgrpIPv4IfAddr | rtmgrpIPv4Route | rtmgrpIPv6IfAddr | rtmgrpIPv6Route)
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: groups}); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	// A non-blocking descriptor goes to Go's poller, so Close ends a
	// pending Read.
	w := &netWatch{f: os.NewFile(uintptr(fd), "rtnetlink"), deb: &debouncer{d: watchDebounce, f: onChange}, done: make(chan struct{})}
	go w.run(log)
	return w, nil
}

func (w *netWatch) run(log *slog.Logger) {
	defer close(w.done)
	buf := make([]byte, 16<<10)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !isClosed(err) {
				log.Debug("rtnetlink watch stopped", "err", err)
			}
			return
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case syscall.RTM_NEWADDR, syscall.RTM_DELADDR, syscall.RTM_NEWROUTE, syscall.RTM_DELROUTE,
				syscall.RTM_NEWLINK, syscall.RTM_DELLINK:
				w.deb.kick()
			}
		}
	}
}

func isClosed(err error) bool {
	pe, ok := err.(*os.PathError)
	return ok && pe.Err == os.ErrClosed
}

func (w *netWatch) close() {
	w.f.Close()
	<-w.done
	w.deb.stop()
}
