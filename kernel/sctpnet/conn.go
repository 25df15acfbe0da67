package sctpnet

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ishidawataru/sctp"
)

// Conn is one SCTP association on a one-to-one style socket. ReadMsg and
// ReadMessage may not be called concurrently with each other (they are
// serialized); WriteMsg may be called from any goroutine. Conn is a
// net.Conn whose Read and Write deal in whole messages on stream 0.
type Conn struct {
	f     *os.File
	rc    syscall.RawConn
	raddr *sctp.SCTPAddr
	max   atomic.Int64 // Config.MaxMessageSize

	closed    atomic.Bool
	laddrOnce sync.Once
	laddr     net.Addr

	rmu     sync.Mutex
	rerr    error    // sticky: io.EOF or an abort
	oob     []byte   // control data of the current recvmsg
	notif   []byte   // a notification read in pieces
	scratch []byte   // buffer for the pieces after the first
	held    [][]byte // a message given back with Unread
	heldInf Info
}

// RemoteAddr returns the peer's address as dialed or accepted.
func (c *Conn) RemoteAddr() net.Addr {
	if c.raddr == nil {
		return nil
	}
	return c.raddr
}

// SetDeadline sets the read and write deadlines; see net.Conn. An expired
// deadline makes reads and writes fail with os.ErrDeadlineExceeded.
func (c *Conn) SetDeadline(t time.Time) error { return c.f.SetDeadline(t) }

// SetReadDeadline sets the deadline for ReadMsg, ReadMessage and Read.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.f.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for WriteMsg and Write.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// SyscallConn gives access to the socket for options this package does
// not wrap.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// Read reads (part of) one message's data, dropping its Info.
func (c *Conn) Read(b []byte) (int, error) {
	n, _, _, err := c.ReadMsg(b)
	return n, err
}

// Write sends b as one message on stream 0 with PPID 0.
func (c *Conn) Write(b []byte) (int, error) { return c.WriteMsg(b, Info{}) }

// Close closes the socket. The kernel ends the association gracefully
// when all received data has been read, and with an ABORT otherwise.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return net.ErrClosed
	}
	return c.f.Close()
}

var _ net.Conn = (*Conn)(nil)
