package nsnetwork

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// Handles returned to Caddy apps embed the concrete *net.TCPListener or
// *net.UDPConn, so interface assertions (deadlines, SyscallConn, UDP
// messages) keep working; only Close is changed, to return the handle's
// reference to the pool. Close is idempotent: a handle is also closed when
// the config that opened it ends, and the app's own Close after that must
// not report an error.

type tcpListener struct {
	*net.TCPListener
	closeOnce sync.Once
	release   func()
}

// Accept waits for a connection. Each one is noted (nsenter.Busy), so that
// the idle threads a burst of traffic leaves behind are ended once it is
// over.
func (l *tcpListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.Accept()
	if err == nil {
		nsenter.Busy()
	}
	return c, err
}

func (l *tcpListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		err = l.TCPListener.Close()
		l.release()
	})
	return err
}

type udpConn struct {
	*net.UDPConn
	closeOnce sync.Once
	closed    atomic.Bool
	linger    linger
	p         *pooled
}

func (c *udpConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		err = c.UDPConn.Close()
		c.p.release()
	})
	return err
}

// CloseLinger bounds how long ReadFrom on a closed packet handle (of a
// socket or a set) waits before it reports the close. caddy-l4 v0.1.2
// stops a UDP server's loop on that error, and every flow still open then
// blocks forever when it ends (it reports its end to the stopped loop):
// after a reload its goroutines and upstream socket would leak. A flow ends
// at most the server's idle_timeout (default 30s) after the last datagram
// it received, and every datagram reached it through this handle, so the
// reader waits until CloseLinger has passed since the handle last delivered
// one — not at all if it never did.
var CloseLinger = 90 * time.Second

// linger is what a packet handle needs for CloseLinger: when it last
// delivered a datagram.
type linger struct {
	lastRead atomic.Int64 // unix nanoseconds
}

// delivered notes a datagram handed to the reader.
func (l *linger) delivered() { l.lastRead.Store(time.Now().UnixNano()) }

// wait returns once CloseLinger has passed since the last datagram
// delivered, at once if there was none. Call it when a read finds the
// handle closed, before reporting that.
func (l *linger) wait() {
	last := l.lastRead.Load()
	if last == 0 {
		return
	}
	if d := time.Until(time.Unix(0, last).Add(CloseLinger)); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		<-t.C
	}
}

// ReadFrom reads a datagram (noted like a connection, see Accept); see
// CloseLinger for what happens after Close.
func (c *udpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.UDPConn.ReadFrom(b)
	if err == nil {
		nsenter.Busy()
		c.linger.delivered()
		return n, addr, nil
	}
	if c.closed.Load() && errors.Is(err, net.ErrClosed) {
		c.linger.wait()
	}
	return n, addr, err
}

// WriteTo sends a datagram. After the handle is closed it still sends
// through the shared socket while another config holds it: caddy-l4 answers
// a UDP flow through the handle of the config that received the request, and
// a reply that comes back from the upstream just after a reload must still
// reach the client.
func (c *udpConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.UDPConn.WriteTo(b, addr)
	if err != nil && c.closed.Load() && errors.Is(err, net.ErrClosed) {
		if w := c.p.writer(); w != nil {
			return w.WriteTo(b, addr)
		}
	}
	return n, err
}

// wrapStream makes a new listener handle on the shared socket.
func wrapStream(p *pooled) (any, error) {
	ln, err := net.FileListener(p.file) // duplicates the descriptor
	if err != nil {
		return nil, err
	}
	return &tcpListener{TCPListener: ln.(*net.TCPListener), release: p.release}, nil
}

// wrapPacket makes a new packet conn handle on the shared socket.
func wrapPacket(p *pooled) (any, error) {
	pc, err := net.FilePacketConn(p.file) // duplicates the descriptor
	if err != nil {
		return nil, err
	}
	return &udpConn{UDPConn: pc.(*net.UDPConn), p: p}, nil
}

var (
	_ net.Listener   = (*tcpListener)(nil)
	_ net.PacketConn = (*udpConn)(nil)
)
