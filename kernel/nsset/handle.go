package nsset

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-netns/caddy-netns/kernel/fanin"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// handoff is how many connections (datagrams) another handle may hand a
// handle before it has taken them; more are closed (dropped). Hand-offs
// happen only while two configs hold a set with different allow lists.
const handoff = 64

// handle is one user's share of a set.
type handle struct {
	s      *Set
	pol    Policy
	closed atomic.Bool
	done   chan struct{}
	once   sync.Once
	inFan  atomic.Bool // waiting on the fan-in (holding the set's turn)

	conns  chan net.Conn // connections handed over by other handles
	dgrams chan dgram    // datagrams handed over by other handles

	amu     sync.Mutex
	allowed map[*Member]bool // pol.Allows per member, decided once
}

type dgram struct {
	b    []byte
	from net.Addr
}

func (s *Set) newHandle(pol Policy) (*handle, error) {
	h := &handle{s: s, pol: pol, done: make(chan struct{}), allowed: map[*Member]bool{}}
	if s.cfg.Kind == Datagram {
		h.dgrams = make(chan dgram, handoff)
	} else {
		h.conns = make(chan net.Conn, handoff)
	}
	s.hmu.Lock()
	if s.stopped {
		s.hmu.Unlock()
		return nil, ErrStopped
	}
	s.handles = append(s.handles, h)
	started := s.started
	s.hmu.Unlock()
	if started {
		s.Changed()
	}
	return h, nil
}

// allows reports whether the handle's user admits member m; the answer is
// kept while m is a member.
func (h *handle) allows(m *Member) bool {
	h.amu.Lock()
	ok, known := h.allowed[m]
	h.amu.Unlock()
	if known {
		return ok
	}
	ok = h.pol.Allows(m.spec) == nil
	if !m.gone.Load() {
		h.amu.Lock()
		h.allowed[m] = ok
		h.amu.Unlock()
	}
	return ok
}

// forget drops what the handles know of member m.
func (s *Set) forget(m *Member) {
	s.hmu.Lock()
	hs := s.handles
	s.hmu.Unlock()
	for _, h := range hs {
		h.amu.Lock()
		delete(h.allowed, m)
		h.amu.Unlock()
	}
}

// route returns the handle that gets a connection or datagram of member
// m that h took: h if it is open and admits m, else the newest open
// handle that does, nil if none does.
func (s *Set) route(h *handle, m *Member) *handle {
	if !h.closed.Load() && h.allows(m) {
		return h
	}
	s.hmu.Lock()
	hs := s.handles
	s.hmu.Unlock()
	for i := len(hs) - 1; i >= 0; i-- {
		if o := hs[i]; o != h && !o.closed.Load() && o.allows(m) {
			return o
		}
	}
	return nil
}

// wakeWhile makes the fan-in's waiting callers return (to look at their
// hand-offs, deadlines or closing), and does it again every 10 ms, for up
// to 3 s, while cond holds: a caller that was just about to wait when a
// wake-up came waits through it.
func (s *Set) wakeWhile(cond func() bool) {
	wake := func() {
		switch {
		case s.ln != nil:
			s.ln.Wake()
		case s.pc != nil:
			s.pc.Wake()
		}
	}
	if s.ln == nil && s.pc == nil {
		return // Custom handles select on their channels
	}
	wake()
	var tries int
	var again func()
	again = func() {
		if !cond() || tries >= 300 {
			return
		}
		tries++
		wake()
		time.AfterFunc(10*time.Millisecond, again)
	}
	time.AfterFunc(10*time.Millisecond, again)
}

// close ends the handle: its waiting call returns net.ErrClosed, what was
// handed to it is dropped, and the last handle stops the set.
func (h *handle) close() {
	h.once.Do(func() {
		h.closed.Store(true)
		close(h.done)
		s := h.s
		s.wakeWhile(h.inFan.Load) // it may hold the turn
		h.drain()
		s.hmu.Lock()
		for i, x := range s.handles {
			if x == h {
				s.handles = append(s.handles[:i:i], s.handles[i+1:]...)
				break
			}
		}
		last := len(s.handles) == 0
		if last {
			s.stopped = true
		}
		s.hmu.Unlock()
		if last {
			s.stop()
			return
		}
		s.Changed()
	})
}

func (h *handle) drain() {
	for {
		select {
		case c := <-h.conns:
			c.Close()
		case <-h.dgrams:
		default:
			return
		}
	}
}

// Listener is one user's net.Listener on a Stream or Custom set.
type Listener struct{ *handle }

// Listen returns a new handle on a Stream or Custom set. Connections go to
// handles whose pol.Allows admits their member.
func (s *Set) Listen(pol Policy) (*Listener, error) {
	if s.cfg.Kind == Datagram {
		return nil, errors.New("namespace set of datagrams: use ListenPacket")
	}
	h, err := s.newHandle(pol)
	if err != nil {
		return nil, err
	}
	return &Listener{h}, nil
}

// Accept returns the next connection from any member that the handle's
// user admits. For Stream sets it is a *fanin.Conn (its Tag is the
// *Member); it returns net.ErrClosed once the handle or the set is closed.
func (l *Listener) Accept() (net.Conn, error) {
	s := l.s
	for {
		if l.closed.Load() {
			return nil, l.errClosed()
		}
		select {
		case c := <-l.conns:
			return c, nil
		default:
		}
		var (
			c   net.Conn
			m   *Member
			err error
		)
		if s.ln != nil {
			// One handle at a time waits on the fan-in (the turn): the
			// others wait here, where a hand-off reaches them at once.
			select {
			case c := <-l.conns:
				return c, nil
			case <-l.done:
				continue
			case <-s.turn:
			}
			select {
			case c := <-l.conns: // handed over while it waited for the turn
				s.turn <- struct{}{}
				return c, nil
			default:
			}
			l.inFan.Store(true)
			c, err = s.ln.Accept()
			l.inFan.Store(false)
			s.turn <- struct{}{}
			if err != nil {
				switch {
				case errors.Is(err, fanin.ErrWoken):
					continue
				case errors.Is(err, net.ErrClosed):
					return nil, l.errClosed()
				}
				// A failure of one member's accept is not the end of
				// the others': caddy-l4 stops on the first error.
				s.log.Warn("accept failed", "", err)
				select {
				case <-time.After(5 * time.Millisecond):
				case <-l.done:
				}
				continue
			}
			m, _ = c.(*fanin.Conn).Tag().(*Member)
		} else {
			select {
			case ac := <-s.conns:
				c, m = ac.c, ac.m
			case c = <-l.conns:
				return c, nil
			case <-l.done:
				continue
			}
		}
		if m == nil || m.gone.Load() {
			c.Close() // the namespace has left the set
			continue
		}
		nsenter.Busy()
		m.track(c)
		to := s.route(l.handle, m)
		if to == l.handle {
			return c, nil
		}
		if to == nil || !to.handOver(c) {
			c.Close()
			continue
		}
		s.wakeWhile(func() bool { return len(to.conns) > 0 && to.inFan.Load() })
	}
}

// handOver queues c for h; false if h is closed or full.
func (h *handle) handOver(c net.Conn) bool {
	select {
	case h.conns <- c:
	default:
		return false
	}
	if h.closed.Load() {
		h.drain()
	}
	return true
}

func (l *Listener) errClosed() error {
	return &net.OpError{Op: "accept", Net: l.s.cfg.Network, Addr: l.s.cfg.Addr, Err: net.ErrClosed}
}

// Close stops this handle's Accept; the members close with the set's last
// handle.
func (l *Listener) Close() error { l.close(); return nil }

// Addr returns the address the set listens on in each namespace.
func (l *Listener) Addr() net.Addr { return l.s.cfg.Addr }

// PacketConn is one user's net.PacketConn on a Datagram set.
type PacketConn struct {
	*handle

	kick     chan struct{} // the deadline changed or passed
	dmu      sync.Mutex
	deadline time.Time
	timer    *time.Timer
}

// ListenPacket returns a new handle on a Datagram set.
func (s *Set) ListenPacket(pol Policy) (*PacketConn, error) {
	if s.cfg.Kind != Datagram {
		return nil, errors.New("namespace set of streams: use Listen")
	}
	h, err := s.newHandle(pol)
	if err != nil {
		return nil, err
	}
	return &PacketConn{handle: h, kick: make(chan struct{}, 1)}, nil
}

// ReadFrom returns the next datagram from any member the handle's user
// admits. The address is a *fanin.Addr whose Tag is the *Member; WriteTo
// with it replies from that member's socket.
func (c *PacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	s := c.s
	for {
		if c.closed.Load() {
			return 0, nil, c.opError("read", nil, net.ErrClosed)
		}
		select {
		case d := <-c.dgrams:
			return copy(p, d.b), d.from, nil
		default:
		}
		c.dmu.Lock()
		dl := c.deadline
		c.dmu.Unlock()
		if !dl.IsZero() && !time.Now().Before(dl) {
			return 0, nil, c.opError("read", nil, os.ErrDeadlineExceeded)
		}
		select {
		case d := <-c.dgrams:
			return copy(p, d.b), d.from, nil
		case <-c.done:
			continue
		case <-c.kick: // the deadline changed or passed
			continue
		case <-s.turn:
		}
		select {
		case d := <-c.dgrams:
			s.turn <- struct{}{}
			return copy(p, d.b), d.from, nil
		default:
		}
		c.inFan.Store(true)
		n, from, err := s.pc.ReadFrom(p)
		c.inFan.Store(false)
		s.turn <- struct{}{}
		if err != nil {
			switch {
			case errors.Is(err, fanin.ErrWoken):
				continue
			case errors.Is(err, net.ErrClosed):
				return 0, nil, c.opError("read", nil, net.ErrClosed)
			}
			s.log.Warn("datagram read failed", "", err)
			select {
			case <-time.After(5 * time.Millisecond):
			case <-c.done:
			}
			continue
		}
		fa, _ := from.(*fanin.Addr)
		m, _ := fa.Tag().(*Member)
		if m == nil || m.gone.Load() {
			continue
		}
		nsenter.Busy()
		to := s.route(c.handle, m)
		if to == c.handle {
			return n, from, nil
		}
		if to == nil {
			continue
		}
		select {
		case to.dgrams <- dgram{b: append([]byte(nil), p[:n]...), from: from}:
			s.wakeWhile(func() bool { return len(to.dgrams) > 0 && to.inFan.Load() })
		default: // full: dropped, as a full socket buffer would
		}
	}
}

// WriteTo sends p from the socket of the member that addr (a *fanin.Addr
// from ReadFrom) came in on. After Close it still sends while the member
// is in the set (another user holds it): a reply that comes back from an
// upstream just after a reload must still reach the client.
func (c *PacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	return c.s.pc.WriteTo(p, addr)
}

func (c *PacketConn) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: c.s.cfg.Network, Source: c.s.cfg.Addr, Addr: addr, Err: err}
}

// Close stops this handle's ReadFrom; the members close with the set's
// last handle.
func (c *PacketConn) Close() error {
	c.dmu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.dmu.Unlock()
	c.close()
	return nil
}

// LocalAddr returns the address the set listens on in each namespace.
func (c *PacketConn) LocalAddr() net.Addr { return c.s.cfg.Addr }

// SetDeadline sets the read deadline; writes do not block.
func (c *PacketConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline sets when this handle's waiting ReadFrom gives up; other
// handles of the set are not affected.
func (c *PacketConn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.deadline = t
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !t.IsZero() {
		if d := time.Until(t); d > 0 {
			c.timer = time.AfterFunc(d, c.wake)
		}
	}
	c.wake()
	return nil
}

// wake makes this handle's waiting ReadFrom look at its deadline again,
// wherever it waits (for the turn, or on the fan-in).
func (c *PacketConn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
	c.s.wakeWhile(func() bool {
		c.dmu.Lock()
		dl := c.deadline
		c.dmu.Unlock()
		return c.inFan.Load() && !dl.IsZero() && !time.Now().Before(dl)
	})
}

// SetWriteDeadline does nothing: a write to a UDP socket does not wait.
func (c *PacketConn) SetWriteDeadline(time.Time) error { return nil }

var (
	_ net.Listener   = (*Listener)(nil)
	_ net.PacketConn = (*PacketConn)(nil)
)
