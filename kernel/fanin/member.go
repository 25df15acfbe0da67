package fanin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// ErrUnsupported is returned by the constructors on platforms without
// epoll.
var ErrUnsupported = errors.New("fan-in sockets are not supported on this platform (linux only)")

// ErrWoken is returned by Accept and ReadFrom when Wake interrupted them.
var ErrWoken = errors.New("woken by Wake")

// ErrUnknownMember is returned by Remove for a tag that is not a member.
var ErrUnknownMember = errors.New("no such member")

// ErrNotMemberAddr is returned by PacketConn.WriteTo for an address that
// did not come from that PacketConn's ReadFrom.
var ErrNotMemberAddr = errors.New("address did not come from this fan-in packet conn (want a *fanin.Addr from ReadFrom)")

// member is one socket of a Listener or PacketConn.
type member struct {
	owner any    // the *Listener or *PacketConn it belongs to
	id    uint32 // its key in the epoll set's data field
	tag   any
	label string // Addr.String's member part (packet conns)
	v6    bool   // AF_INET6 socket: IPv4 peers are sent to as v4-mapped

	// mu guards fd: I/O on the member holds it for reading, Remove holds
	// it for writing while it closes the socket and sets fd to -1, so no
	// I/O ever reaches a descriptor number that has been reused.
	mu sync.RWMutex
	fd int

	removed atomic.Bool

	stats Stats
}

// Stats counts a member's traffic. Read it with Listener.Stats or
// PacketConn.Stats.
type Stats struct {
	// Accepted is the number of connections accepted (streams).
	Accepted atomic.Uint64
	// PacketsIn and BytesIn count datagrams read (datagrams).
	PacketsIn, BytesIn atomic.Uint64
	// PacketsOut and BytesOut count datagrams sent (datagrams).
	PacketsOut, BytesOut atomic.Uint64
	// Errors counts failed accepts, reads and writes, including ICMP
	// errors reported on a datagram socket.
	Errors atomic.Uint64
}

// label names a tag in Addr.String: a string as is, a fmt.Stringer by its
// String, anything else as fmt prints it.
func label(tag any) string {
	switch t := tag.(type) {
	case string:
		return t
	case fmt.Stringer:
		return t.String()
	}
	return fmt.Sprint(tag)
}

// Conn is a connection accepted by a Listener: the *net.TCPConn, embedded
// so that its ReadFrom and WriteTo (the splice paths) are promoted, and the
// tag of the member it arrived on.
type Conn struct {
	*net.TCPConn
	tag any
}

// Tag returns the tag of the member the connection arrived on.
func (c *Conn) Tag() any { return c.tag }

// NetConn returns the bare *net.TCPConn, as crypto/tls.Conn.NetConn does.
func (c *Conn) NetConn() net.Conn { return c.TCPConn }

// Addr is the remote address of a datagram read by a PacketConn: the
// client's address and port, and the member it came in on. WriteTo with it
// replies from that member's socket.
type Addr struct {
	// AddrPort is the client's address; IPv4 clients of a dual-stack
	// socket appear as IPv4.
	AddrPort netip.AddrPort

	m *member
}

// Network returns "udp".
func (a *Addr) Network() string { return "udp" }

// String returns <ip>:<port>%<label>, the label being the member's tag as
// a string (see PacketConn.AddFD).
func (a *Addr) String() string {
	if a == nil {
		return "<nil>"
	}
	if a.m == nil {
		return a.AddrPort.String()
	}
	return a.AddrPort.String() + "%" + a.m.label
}

// Tag returns the tag of the member the datagram came in on.
func (a *Addr) Tag() any {
	if a == nil || a.m == nil {
		return nil
	}
	return a.m.tag
}

// UDPAddr returns the client's address without the member.
func (a *Addr) UDPAddr() *net.UDPAddr { return net.UDPAddrFromAddrPort(a.AddrPort) }

var (
	_ net.Conn = (*Conn)(nil)
	_ net.Addr = (*Addr)(nil)
)
