package nsnetwork

import (
	"errors"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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
	keepAlive *net.KeepAliveConfig // set on each accepted connection, if Go cannot do it (setKeepAlive)
}

// Accept waits for a connection. Each one is noted (nsenter.Busy), so that
// the idle threads a burst of traffic leaves behind are ended once it is
// over.
func (l *tcpListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.AcceptTCP()
	if err != nil {
		return nil, err
	}
	nsenter.Busy()
	if ka := l.keepAlive; ka != nil {
		if ka.Enable {
			err = c.SetKeepAliveConfig(*ka)
		} else {
			err = c.SetKeepAlive(false)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// setKeepAlive sets the keep-alive of the connections Accept returns from
// now on; call it before Accept is. A listener made from a file
// (net.FileListener) always enables Go's default keep-alive (15 s idle:
// four setsockopt calls per connection) and has no ListenConfig to say
// otherwise, so the one *net.TCPListener keeps for Accept is written here
// directly, found by reflection (see listenConfigOf). Where that field is
// not found, each accepted connection is set after the fact.
func (l *tcpListener) setKeepAlive(ka net.KeepAliveConfig) {
	if lc := listenConfigOf(l.TCPListener); lc != nil {
		if ka.Enable {
			*lc = net.ListenConfig{KeepAliveConfig: ka}
		} else {
			*lc = net.ListenConfig{KeepAlive: -1}
		}
		l.keepAlive = nil
		return
	}
	l.keepAlive = &ka
}

// keepAliveOf is the keep-alive that a ListenConfig passed to a listener
// function asks for: Caddy's HTTP servers pass their keep_alive settings
// (enabled by default), caddy-l4 passes an empty one, which here means
// off.
func keepAliveOf(lc net.ListenConfig) net.KeepAliveConfig {
	switch {
	case lc.KeepAliveConfig.Enable:
		return lc.KeepAliveConfig
	case lc.KeepAlive > 0:
		return net.KeepAliveConfig{Enable: true, Idle: lc.KeepAlive}
	}
	return net.KeepAliveConfig{}
}

// listenerConfig is where *net.TCPListener keeps its ListenConfig (the
// unexported field lc, read by Accept for each connection's keep-alive),
// if it has one of that type; ok false otherwise.
var listenerConfig = sync.OnceValues(func() (offset uintptr, ok bool) {
	f, found := reflect.TypeFor[net.TCPListener]().FieldByName("lc")
	if !found || f.Type != reflect.TypeFor[net.ListenConfig]() {
		return 0, false
	}
	return f.Offset, true
})

// listenConfigOf returns a pointer to ln's own ListenConfig, nil if this
// Go's *net.TCPListener has none.
func listenConfigOf(ln *net.TCPListener) *net.ListenConfig {
	off, ok := listenerConfig()
	if !ok {
		return nil
	}
	return (*net.ListenConfig)(unsafe.Add(unsafe.Pointer(ln), off))
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
	l := &tcpListener{TCPListener: ln.(*net.TCPListener), release: p.release}
	l.setKeepAlive(net.KeepAliveConfig{}) // off until a config asks (ListenNetwork)
	return l, nil
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
