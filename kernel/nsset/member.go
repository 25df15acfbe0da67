package nsset

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// Socket is a member's socket as the caller's Open made it.
type Socket interface {
	// File is the socket. Stream and Datagram sets add a duplicate of it
	// to the fan-in.
	File() *os.File
	// Close returns the socket (to the caller's pool); called once, after
	// the member has left the fan-in.
	Close() error
}

// Member is one namespace of a set. It is the tag of its socket in the
// fan-in, so a connection (fanin.Conn.Tag) or datagram address
// (fanin.Addr.Tag) names its member without a system call.
type Member struct {
	name  string // entry in the directory, or the spec of a static member
	spec  string // how the member is named to Open: a bare name or a path
	path  string // the namespace file
	label string
	id    nsenter.ID
	since time.Time

	sock   Socket
	ln     net.Listener // Custom sets: the member's own listener
	gone   atomic.Bool
	custom memberStats // Custom sets (the fan-in counts the others)

	// Accepted connections not known to be closed yet, for OpenConns,
	// without wrapping them (a wrapper would hide the splice path).
	openMu   sync.Mutex
	open     []syscall.Conn
	openMark int
}

type memberStats struct {
	accepted, errors atomic.Uint64
}

// String returns the member's label: its name when that keeps
// "<ip>:<port>%<label>" parseable as host:port, its inode otherwise.
func (m *Member) String() string { return m.label }

// NetnsID returns the identity of the member's namespace.
func (m *Member) NetnsID() nsenter.ID { return m.id }

// NetnsName returns the member as the set names it: a bare name under
// /var/run/netns, a path otherwise (for a static member, as listed).
func (m *Member) NetnsName() string { return m.spec }

// Since returns when the member was added.
func (m *Member) Since() time.Time { return m.since }

// Gone reports whether the member has left the set.
func (m *Member) Gone() bool { return m.gone.Load() }

// Label names a member in addresses: name when it contains none of
// ':', '[', ']' and '%', the namespace's inode otherwise.
func Label(name string, id nsenter.ID) string {
	if name != "" && !strings.ContainsAny(name, ":[]%") {
		return name
	}
	return strconv.FormatUint(id.Ino, 10)
}

// track remembers an accepted connection for OpenConns.
func (m *Member) track(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	m.openMu.Lock()
	defer m.openMu.Unlock()
	m.open = append(m.open, sc)
	if len(m.open) > 2*m.openMark+64 {
		m.pruneLocked()
	}
}

// openConns returns how many accepted connections are still open.
func (m *Member) openConns() int {
	m.openMu.Lock()
	defer m.openMu.Unlock()
	m.pruneLocked()
	return len(m.open)
}

// pruneLocked forgets the connections that have been closed: a closed
// conn's RawConn refuses Control.
func (m *Member) pruneLocked() {
	kept := m.open[:0]
	for _, sc := range m.open {
		if rc, err := sc.SyscallConn(); err == nil && rc.Control(func(uintptr) {}) == nil {
			kept = append(kept, sc)
		}
	}
	clear(m.open[len(kept):])
	m.open = kept
	m.openMark = len(kept)
}
