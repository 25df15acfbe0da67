//go:build linux

package fanin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Limits of one round of accepting (one wake-up of Accept). Members are
// level-triggered, so what a round leaves in a backlog is reported again.
const (
	eventBatch      = 64  // members taken from one epoll_wait
	acceptPerMember = 64  // accept4 calls on one member per round
	queueMax        = 256 // accepted connections waiting for Accept
)

// Listener is one net.Listener over many listening TCP sockets.
type Listener struct {
	p    poller
	addr net.Addr

	events []unix.EpollEvent // used only by the goroutine in p.wait

	keepAlive atomic.Pointer[net.KeepAliveConfig]

	qmu   sync.Mutex
	queue []pending // accepted, not handed out yet
	err   error     // an accept error to hand out before waiting again

	backOffLast time.Duration // guarded by qmu
	done        chan struct{} // closed by Close
}

// pending is an accepted descriptor not yet made a net.Conn.
type pending struct {
	fd int
	m  *member
}

// NewListener returns a Listener without members. addr is what Addr
// returns (the address every member listens on, say :8000); it may be nil.
func NewListener(addr net.Addr) (*Listener, error) {
	l := &Listener{addr: addr, events: make([]unix.EpollEvent, eventBatch), done: make(chan struct{})}
	if err := l.p.init(); err != nil {
		return nil, err
	}
	return l, nil
}

// AddFD adds a listening TCP socket under tag, which must be comparable
// and not in use. On success the Listener owns fd (it is made non-blocking
// and is closed by Remove or Close); on error the caller still does.
func (l *Listener) AddFD(tag any, fd int) error {
	if err := checkStream(fd); err != nil {
		return fmt.Errorf("fan-in: adding member %v (fd %d): %w", tag, fd, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("fan-in: adding member %v (fd %d): %w", tag, fd, os.NewSyscallError("fcntl", err))
	}
	return l.p.add(&member{owner: l, tag: tag, fd: fd}, nil)
}

// AddFile adds a duplicate of f's socket, as AddFD does; the caller keeps
// f and may close it. The open file description is shared, so f becomes
// non-blocking too.
func (l *Listener) AddFile(tag any, f *os.File) error {
	fd, err := dupFile(f)
	if err != nil {
		return fmt.Errorf("fan-in: adding member %v: duplicating %s: %w", tag, f.Name(), err)
	}
	if err := l.AddFD(tag, fd); err != nil {
		unix.Close(fd)
		return err
	}
	return nil
}

// checkStream tells whether fd is a listening TCP socket.
func checkStream(fd int) error {
	typ, err := sockInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return err
	}
	dom, err := sockInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return err
	}
	if typ != unix.SOCK_STREAM || (dom != unix.AF_INET && dom != unix.AF_INET6) {
		return fmt.Errorf("not a TCP socket (domain %d, type %d)", dom, typ)
	}
	acc, err := sockInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return err
	}
	if acc == 0 {
		return errors.New("socket is not listening")
	}
	return nil
}

// SetKeepAlive sets the TCP keep-alive of the connections Accept returns
// from now on. By default they have what net.FileConn gives, which is what
// net.Listen's listeners give too: keep-alive on, 15 s idle, the system's
// interval and count. A config with Enable false turns it off.
func (l *Listener) SetKeepAlive(cfg net.KeepAliveConfig) { l.keepAlive.Store(&cfg) }

// Remove takes the member tag out, closes its socket and the connections
// accepted on it that Accept has not returned yet. Once Remove returns,
// Accept returns nothing more from it.
func (l *Listener) Remove(tag any) error {
	m, err := l.p.remove(tag)
	if m == nil {
		return err
	}
	l.qmu.Lock()
	kept := l.queue[:0]
	for _, c := range l.queue {
		if c.m == m {
			unix.Close(c.fd)
			continue
		}
		kept = append(kept, c)
	}
	clear(l.queue[len(kept):])
	l.queue = kept
	l.qmu.Unlock()
	return err
}

// Len returns the number of members.
func (l *Listener) Len() int { return l.p.len() }

// Wake makes every Accept waiting now return an error wrapping ErrWoken,
// without closing anything: the glue that gives several users (say, the
// old and the new config during a reload) Accept on one Listener wakes
// them when one of them is closed, and the others call Accept again.
func (l *Listener) Wake() { l.p.wake() }

func queued(l *Listener) int {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	return len(l.queue)
}

// Stats returns the counters of member tag, nil if it is not a member.
func (l *Listener) Stats(tag any) *Stats {
	if m := l.p.member(tag); m != nil {
		return &m.stats
	}
	return nil
}

// Accept waits for a connection on any member and returns it as a *Conn,
// which carries the member's tag.
func (l *Listener) Accept() (net.Conn, error) {
	tc, tag, err := l.AcceptTagged()
	if err != nil {
		return nil, err
	}
	return &Conn{TCPConn: tc, tag: tag}, nil
}

// AcceptTagged waits for a connection on any member and returns it with
// the member's tag.
func (l *Listener) AcceptTagged() (*net.TCPConn, any, error) {
	gen := l.p.wakeGen.Load()
	for {
		if l.p.closed.Load() {
			return nil, nil, l.opError(net.ErrClosed)
		}
		c, ok, err := l.pop()
		if _, ok := err.(exhausted); ok {
			l.backOff()
			continue
		}
		if err == errFruitless { // a moment, not a growing back-off
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			return nil, nil, l.opError(err)
		}
		if ok {
			if c.m.removed.Load() { // removed after it was queued
				unix.Close(c.fd)
				continue
			}
			tc, err := newTCPConn(c.fd)
			if err != nil {
				c.m.stats.Errors.Add(1)
				return nil, nil, l.opError(err)
			}
			if ka := l.keepAlive.Load(); ka != nil {
				var err error
				if ka.Enable {
					err = tc.SetKeepAliveConfig(*ka)
				} else {
					err = tc.SetKeepAlive(false)
				}
				if err != nil {
					tc.Close()
					c.m.stats.Errors.Add(1)
					return nil, nil, l.opError(err)
				}
			}
			return tc, c.m.tag, nil
		}
		woken, err := l.p.wait(gen, l.fill)
		if err != nil {
			return nil, nil, l.opError(err)
		}
		if woken && queued(l) == 0 {
			return nil, nil, l.opError(ErrWoken)
		}
	}
}

// exhausted is an accept error that passes when descriptors or memory are
// freed.
type exhausted struct{ error }

func (e exhausted) Unwrap() error { return e.error }

// Back-off of Accept while the process is out of descriptors or memory.
const (
	backOffMin = 5 * time.Millisecond
	backOffMax = time.Second
)

// backOff waits after an exhausted accept, longer each time in a row
// (reset by a successful accept), or until Close.
func (l *Listener) backOff() {
	l.qmu.Lock()
	d := max(backOffMin, min(2*l.backOffLast, backOffMax))
	l.backOffLast = d
	l.qmu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.done:
	}
}

func (l *Listener) pop() (pending, bool, error) {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	if len(l.queue) > 0 {
		l.backOffLast = 0
		c := l.queue[0]
		l.queue[0] = pending{}
		l.queue = l.queue[1:]
		if len(l.queue) == 0 {
			l.queue = l.queue[:0:0] // let the backing array go
		}
		return c, true, nil
	}
	err := l.err
	l.err = nil
	return pending{}, false, err
}

// fill runs on the epoll descriptor (one goroutine at a time): it accepts
// on the ready members until something is queued or none is ready.
func (l *Listener) fill(epfd int) bool {
	for fruitless := 0; ; fruitless++ {
		if fruitless > fruitlessMax {
			// Members ready but giving nothing: back off rather than
			// spin (parking now would miss them, see poller.wait).
			l.setErr(errFruitless)
			return true
		}
		n, err := l.p.epollWait(epfd, l.events)
		if err != nil {
			l.setErr(err)
			return true
		}
		if n == 0 {
			return false // park
		}
		got := false
		for _, ev := range l.events[:n] {
			if l.p.isWake(uint32(ev.Fd)) {
				got = true // back to wait, which sees the new generation
				continue
			}
			m := l.p.lookup(uint32(ev.Fd))
			if m == nil {
				continue // removed since
			}
			if l.acceptFrom(m) {
				got = true
			}
		}
		if got {
			return true
		}
	}
}

// acceptFrom accepts on m until EAGAIN or a limit, and queues what it
// got. It reports whether Accept has something to return.
func (l *Listener) acceptFrom(m *member) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.fd < 0 {
		return false
	}
	got := false
	for range acceptPerMember {
		nfd, _, err := unix.Accept4(m.fd, acceptFlags)
		switch err {
		case nil:
		case unix.EAGAIN:
			return got
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			// Out of descriptors or memory: Accept waits and retries
			// rather than failing, since caddy-l4 stops serving a
			// listener on its first accept error, here every member's.
			m.stats.Errors.Add(1)
			l.setErr(exhausted{os.NewSyscallError("accept4", err)})
			return true
		default:
			m.stats.Errors.Add(1)
			l.setErr(os.NewSyscallError("accept4", err))
			return true
		}
		m.stats.Accepted.Add(1)
		l.qmu.Lock()
		l.queue = append(l.queue, pending{fd: nfd, m: m})
		full := len(l.queue) >= queueMax
		l.qmu.Unlock()
		got = true
		if full {
			return true
		}
	}
	return got
}

func (l *Listener) setErr(err error) {
	l.qmu.Lock()
	l.err = err
	l.qmu.Unlock()
}

func (l *Listener) opError(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: err}
}

// Close closes every member and the connections not yet returned by
// Accept, and wakes a parked Accept.
func (l *Listener) Close() error {
	if err := l.p.close(); err != nil {
		return l.opError(err)
	}
	close(l.done)
	l.qmu.Lock()
	for _, c := range l.queue {
		unix.Close(c.fd)
	}
	l.queue = nil
	l.qmu.Unlock()
	return nil
}

// Addr returns the address given to NewListener.
func (l *Listener) Addr() net.Addr { return l.addr }

// SetDeadline sets when a waiting Accept gives up (os.ErrDeadlineExceeded);
// the zero time means never.
func (l *Listener) SetDeadline(t time.Time) error { return l.p.ep.SetReadDeadline(t) }

var _ net.Listener = (*Listener)(nil)
