package nsnetwork

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// SetAddr is the remote address of a datagram received by a namespace
// set: the client's address and port, and the member (namespace) it came
// in on. Replies written to it leave from that member's socket.
//
// The same client address can exist in two namespaces, and caddy-l4 keys
// its UDP flows by RemoteAddr().String(), so String names the member too:
// "10.0.0.2:5353%tenant-a" ("[fd00::2]:5353%tenant-a" for IPv6; the
// namespace's inode instead of its name when the name contains ':', '[',
// ']' or '%'). The part before the last ':' is a plain IP address, so
// matchers that split host and port (remote_ip, ip_hash) keep working.
type SetAddr struct {
	// AddrPort is the client's address; IPv4 clients of a dual-stack
	// socket appear as IPv4.
	AddrPort netip.AddrPort

	m *member
}

// Network returns "udp".
func (a *SetAddr) Network() string { return "udp" }

// String returns <ip>:<port>%<member>.
func (a *SetAddr) String() string {
	if a == nil {
		return "<nil>"
	}
	if a.m == nil {
		return a.AddrPort.String()
	}
	return a.AddrPort.String() + "%" + a.m.tag
}

// UDPAddr returns the client's address without the member.
func (a *SetAddr) UDPAddr() *net.UDPAddr { return net.UDPAddrFromAddrPort(a.AddrPort) }

// NetnsID returns the identity of the namespace the datagram arrived in.
func (a *SetAddr) NetnsID() nsenter.ID { return a.m.id }

// NetnsName returns the namespace as the set names it (a bare name under
// /var/run/netns, a path otherwise).
func (a *SetAddr) NetnsName() string { return a.m.spec }

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// dgramPool holds buffers for datagrams between a member's read and a
// handle's ReadFrom.
var dgramPool = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}

// dgram is one datagram read by a member.
type dgram struct {
	buf  *[]byte
	n    int
	from *SetAddr
}

// newHandle returns a listener (streams) or packet conn (datagrams) for one
// user of a set, and its base, whose set the caller fills in. Closing the
// handle returns its reference.
func newHandle(key setKey, stream bool) (any, *handleBase, error) {
	hp := key.address
	if stream {
		var addr net.Addr = setNetAddr{key.network, hp}
		if ta, err := net.ResolveTCPAddr(key.network, hp); err == nil && isTCP(key.network) {
			addr = ta
		}
		l := &setListener{addr: addr}
		l.closed = make(chan struct{})
		return l, &l.handleBase, nil
	}
	ua, err := net.ResolveUDPAddr(key.network, hp)
	if err != nil {
		return nil, nil, err
	}
	c := &setPacketConn{addr: ua, wake: make(chan struct{})}
	c.closed = make(chan struct{})
	return c, &c.handleBase, nil
}

func isTCP(network string) bool {
	return network == "tcp" || network == "tcp4" || network == "tcp6"
}

// setNetAddr is the local address of a set of an inner network.
type setNetAddr struct{ network, address string }

func (a setNetAddr) Network() string { return a.network }
func (a setNetAddr) String() string  { return a.address }

type handleBase struct {
	set       *nsSet
	cfg       *caddy.Context // the config the handle belongs to, if known
	closeOnce sync.Once
	closed    chan struct{}
}

func (h *handleBase) close() {
	h.closeOnce.Do(func() {
		close(h.closed)
		h.set.release(h)
	})
}

// setListener is one user's net.Listener on a stream set.
type setListener struct {
	handleBase
	addr net.Addr
}

// Accept returns the next connection from any member.
func (l *setListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
	default:
		select {
		case c := <-l.set.conns:
			return c, nil
		case <-l.closed:
		}
	}
	return nil, &net.OpError{Op: "accept", Net: l.set.key.network, Addr: l.addr, Err: net.ErrClosed}
}

// Close stops this handle's Accept; the members close with the set's last
// handle.
func (l *setListener) Close() error { l.close(); return nil }

// Addr returns the address the set listens on in each namespace.
func (l *setListener) Addr() net.Addr { return l.addr }

// setPacketConn is one user's net.PacketConn on a datagram set.
type setPacketConn struct {
	handleBase
	addr net.Addr

	mu           sync.Mutex
	readDeadline time.Time
	wake         chan struct{} // closed and replaced when the deadline changes
	linger       linger
}

var errNotSetAddr = errors.New("address did not come from this namespace set (want a *nsnetwork.SetAddr from ReadFrom)")

// ReadFrom returns the next datagram from any member. The address is a
// *SetAddr naming the member. After Close it takes no more datagrams (the
// other handles of the set get them) and reports the close as a socket's
// handle does (see CloseLinger).
func (c *setPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := c.read(p)
	if err == nil {
		c.linger.delivered()
	} else if errors.Is(err, net.ErrClosed) {
		c.linger.wait()
	}
	return n, from, err
}

func (c *setPacketConn) read(p []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		dl, wake := c.readDeadline, c.wake
		c.mu.Unlock()
		var (
			timeout <-chan time.Time
			t       *time.Timer
		)
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, c.opError("read", nil, os.ErrDeadlineExceeded)
			}
			t = time.NewTimer(d)
			timeout = t.C
		}
		n, from, again, err := c.readOnce(p, timeout, wake)
		if t != nil {
			t.Stop()
		}
		if !again {
			return n, from, err
		}
	}
}

func (c *setPacketConn) readOnce(p []byte, timeout <-chan time.Time, wake chan struct{}) (n int, from net.Addr, again bool, err error) {
	select {
	case <-c.closed:
		return 0, nil, false, c.opError("read", nil, net.ErrClosed)
	default:
	}
	select {
	case d := <-c.set.packets:
		n = copy(p, (*d.buf)[:d.n])
		dgramPool.Put(d.buf)
		return n, d.from, false, nil
	case <-c.closed:
		return 0, nil, false, c.opError("read", nil, net.ErrClosed)
	case <-timeout:
		return 0, nil, true, nil
	case <-wake:
		return 0, nil, true, nil
	}
}

// WriteTo sends p from the socket of the member that addr (a *SetAddr
// from ReadFrom) came in on. After Close it still sends while the member
// is open (another config holds the set): caddy-l4 answers a UDP flow
// through the handle that received the request, and a reply that comes
// back from the upstream just after a reload must still reach the client.
func (c *setPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	sa, ok := addr.(*SetAddr)
	if !ok || sa.m == nil || sa.m.set != c.set {
		return 0, c.opError("write", addr, errNotSetAddr)
	}
	m := sa.m
	if m.ctx.Err() != nil {
		return 0, c.opError("write", addr, fmt.Errorf("namespace %q left the set: %w", m.spec, net.ErrClosed))
	}
	n, err := m.udp.WriteToUDPAddrPort(p, sa.AddrPort)
	if err != nil {
		m.stats.errors.Add(1)
		return n, err
	}
	m.stats.packetsOut.Add(1)
	m.stats.bytesOut.Add(uint64(n))
	return n, nil
}

func (c *setPacketConn) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: c.set.key.network, Source: c.addr, Addr: addr, Err: err}
}

// Close stops this handle's ReadFrom; the members close with the set's
// last handle.
func (c *setPacketConn) Close() error { c.close(); return nil }

// LocalAddr returns the address the set listens on in each namespace.
func (c *setPacketConn) LocalAddr() net.Addr { return c.addr }

// SetDeadline sets the read deadline; writes do not block.
func (c *setPacketConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline sets when a waiting ReadFrom gives up.
func (c *setPacketConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
	close(c.wake)
	c.wake = make(chan struct{})
	return nil
}

// SetWriteDeadline does nothing: a write to a UDP socket does not wait.
func (c *setPacketConn) SetWriteDeadline(time.Time) error { return nil }

// String describes the handle for logs.
func (c *setPacketConn) String() string {
	return "netns set " + c.set.pattern + "/" + c.set.key.network + "/" + c.set.key.address
}

var (
	_ net.Listener   = (*setListener)(nil)
	_ net.PacketConn = (*setPacketConn)(nil)
	_ net.Addr       = (*SetAddr)(nil)
)
