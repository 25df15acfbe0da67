package sctpnet

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ishidawataru/sctp"
)

// Listener accepts SCTP associations on a one-to-one style socket. It is a
// net.Listener whose Accept returns *Conn.
type Listener struct {
	f      *os.File
	rc     syscall.RawConn
	addr   *sctp.SCTPAddr
	cfg    Config
	closed atomic.Bool
}

// Addr returns the bound address, with the port the kernel picked for 0.
func (l *Listener) Addr() net.Addr { return l.addr }

// SetDeadline makes Accept fail with os.ErrDeadlineExceeded after t; the
// zero time means no deadline.
func (l *Listener) SetDeadline(t time.Time) error { return l.f.SetReadDeadline(t) }

// SyscallConn gives access to the listening socket.
func (l *Listener) SyscallConn() (syscall.RawConn, error) { return l.rc, nil }

// Close closes the listening socket; pending Accepts return net.ErrClosed.
func (l *Listener) Close() error {
	if l.closed.Swap(true) {
		return net.ErrClosed
	}
	return l.f.Close()
}

var _ net.Listener = (*Listener)(nil)
