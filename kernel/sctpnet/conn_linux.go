//go:build linux && !386

package sctpnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"unsafe"

	"github.com/ishidawataru/sctp"
	"golang.org/x/sys/unix"
)

// maxNotification bounds a notification read in pieces.
const maxNotification = 64 << 10

func newConn(fd int, raddr *sctp.SCTPAddr, cfg Config) (*Conn, error) {
	f := os.NewFile(uintptr(fd), "sctp")
	if f == nil {
		unix.Close(fd)
		return nil, errors.New("sctp: invalid file descriptor")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	c := &Conn{f: f, rc: rc, raddr: raddr, oob: make([]byte, oobSize)}
	c.max.Store(int64(cfg.MaxMessageSize))
	// Best effort: where the kernel refuses, larger messages fail to send
	// with EMSGSIZE; SetMaxMessageSize reports why.
	_ = fitSendBuffer(fd, cfg.MaxMessageSize)
	return c, nil
}

// LocalAddr returns the association's local addresses.
func (c *Conn) LocalAddr() net.Addr {
	c.laddrOnce.Do(func() {
		c.rc.Control(func(fd uintptr) {
			if a := localAddrs(int(fd)); a != nil {
				c.laddr = a
			}
		})
	})
	return c.laddr
}

func (c *Conn) opErr(op string, err error) error {
	if c.closed.Load() {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: "sctp", Addr: c.RemoteAddr(), Err: err}
}

// recvmsg does one recvmsg(2), waiting in the netpoller while there is
// nothing to read.
func (c *Conn) recvmsg(b []byte) (n, oobn, flags int, err error) {
	rerr := c.rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, flags, _, err = unix.Recvmsg(int(fd), b, c.oob, 0)
			if err != unix.EINTR {
				return err != unix.EAGAIN
			}
		}
	})
	if rerr != nil {
		return 0, 0, 0, rerr
	}
	return n, oobn, flags, err
}

// recvPiece is recvmsg into a buffer from the piece pool, taken only once
// the socket is readable: while it waits, the Conn holds no buffer.
func (c *Conn) recvPiece() (b []byte, n, oobn, flags int, err error) {
	rerr := c.rc.Read(func(fd uintptr) bool {
		b = getPiece()
		for {
			n, oobn, flags, _, err = unix.Recvmsg(int(fd), b, c.oob, 0)
			if err != unix.EINTR {
				break
			}
		}
		if err == unix.EAGAIN {
			ReleasePieces([][]byte{b})
			b = nil
			return false
		}
		return true
	})
	if rerr != nil {
		return nil, 0, 0, 0, rerr
	}
	if err != nil {
		ReleasePieces([][]byte{b})
		return nil, 0, 0, 0, err
	}
	return b, n, oobn, flags, nil
}

// ReadMsg reads what one recvmsg returns of the next message into b: all
// of it, or a piece if the message is larger than b or than the kernel
// hands over at once. flags has MsgEOR on the read that ends the message.
// Notifications are handled here and never returned: after a graceful
// shutdown ReadMsg returns io.EOF, after an abort an error matching
// ErrAborted, and then the same error on every later call.
func (c *Conn) ReadMsg(b []byte) (n int, info Info, flags int, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.readMsg(b)
}

func (c *Conn) readMsg(b []byte) (int, Info, int, error) {
	n, info, flags, _, err := c.readInto(b)
	return n, info, flags, err
}

// readInto is readMsg into b or, if b is nil, into a piece from the pool
// (returned as piece; released on error and for notifications).
func (c *Conn) readInto(b []byte) (n int, info Info, flags int, piece []byte, err error) {
	n, info, flags, piece, err = c.readOne(b)
	if err != nil && piece != nil {
		ReleasePieces([][]byte{piece})
		piece = nil
	}
	return n, info, flags, piece, err
}

func (c *Conn) readOne(b []byte) (int, Info, int, []byte, error) {
	if c.rerr != nil {
		return 0, Info{}, 0, nil, c.rerr
	}
	if b != nil && len(b) == 0 {
		return 0, Info{}, 0, nil, c.opErr("read", errors.New("empty buffer"))
	}
	for {
		var (
			buf            []byte
			piece          []byte
			n, oobn, flags int
			err            error
		)
		if len(c.notif) > 0 || b != nil {
			buf = b
			if len(c.notif) > 0 { // the rest of a notification
				if c.scratch == nil {
					c.scratch = make([]byte, 4096)
				}
				buf = c.scratch
			}
			n, oobn, flags, err = c.recvmsg(buf)
		} else {
			piece, n, oobn, flags, err = c.recvPiece()
			buf = piece
		}
		if err != nil {
			if errors.Is(err, unix.ECONNRESET) {
				c.rerr = c.opErr("read", fmt.Errorf("%w: %w", ErrAborted, err))
				return 0, Info{}, 0, nil, c.rerr
			}
			return 0, Info{}, 0, nil, c.opErr("read", err)
		}
		if flags&sctp.MSG_NOTIFICATION != 0 {
			c.notif = append(c.notif, buf[:n]...)
			if piece != nil {
				ReleasePieces([][]byte{piece})
			}
			if flags&unix.MSG_EOR == 0 && !notificationComplete(c.notif) {
				if len(c.notif) > maxNotification {
					return 0, Info{}, 0, nil, c.opErr("read", fmt.Errorf("notification longer than %d bytes", maxNotification))
				}
				continue
			}
			note, perr := parseNotification(c.notif)
			c.notif = c.notif[:0]
			if perr != nil {
				return 0, Info{}, 0, nil, c.opErr("read", perr)
			}
			if err := note.err(); err != nil {
				if err != io.EOF {
					err = c.opErr("read", err)
				}
				c.rerr = err
				return 0, Info{}, 0, nil, err
			}
			continue
		}
		if n == 0 { // the peer's SHUTDOWN completed
			c.rerr = io.EOF
			return 0, Info{}, 0, piece, io.EOF
		}
		info, _ := parseRcvInfo(c.oob[:oobn])
		return n, info, flags, piece, nil
	}
}

// ReadMessage reads one whole message, reassembling its pieces, into buf
// (growing it as needed; pass the result back in to reuse it). Info is the
// first piece's. A message larger than Config.MaxMessageSize is read to its
// end and dropped, and ErrMessageTooLarge returned; the association goes on.
func (c *Conn) ReadMessage(buf []byte) ([]byte, Info, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.held != nil {
		msg := buf[:0]
		for _, b := range c.held {
			msg = append(msg, b...)
		}
		ReleasePieces(c.held)
		c.held = nil
		return msg, c.heldInf, nil
	}
	const chunk = 64 << 10
	msg := buf[:0]
	var info Info
	for first := true; ; first = false {
		if cap(msg)-len(msg) < chunk {
			msg = slices.Grow(msg, chunk)
		}
		n, inf, flags, err := c.readMsg(msg[len(msg):cap(msg)])
		if err != nil {
			return msg[:0], info, err
		}
		if first {
			info = inf
		}
		msg = msg[:len(msg)+n]
		if flags&unix.MSG_EOR != 0 {
			return msg, info, nil
		}
		if max := int(c.max.Load()); len(msg) > max {
			size := len(msg)
			for flags&unix.MSG_EOR == 0 {
				n, _, flags, err = c.readMsg(msg[:cap(msg)])
				if err != nil {
					return msg[:0], info, err
				}
				size += n
			}
			return msg[:0], info, c.opErr("read", fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, size, max))
		}
	}
}

// ReadMessagePieces reads one whole message as a list of buffers of at
// most PieceSize bytes each, appended to p (pass p[:0] or nil). The buffers
// come from a pool shared by all Conns and are taken only once data has
// arrived, so a Conn waiting for a message holds none; hand them back with
// ReleasePieces after use. Info is the first piece's. The pieces of a
// message larger than the kernel's receive buffer arrive by partial
// delivery as they come in; memory grows with the message, up to
// Config.MaxMessageSize. A message above that limit is not read further:
// ReadMessagePieces returns an error matching ErrMessageTooLarge, and the
// same error on every later read, since the association cannot go on
// mid-message (abort it).
func (c *Conn) ReadMessagePieces(p [][]byte) ([][]byte, Info, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.held != nil {
		p = append(p, c.held...)
		c.held = nil
		return p, c.heldInf, nil
	}
	var (
		info Info
		size int
	)
	for first := true; ; first = false {
		n, inf, flags, piece, err := c.readInto(nil)
		if err != nil {
			return ReleasePieces(p), info, err
		}
		if first {
			info = inf
		}
		p = append(p, piece[:n])
		size += n
		if max := int(c.max.Load()); size > max {
			c.rerr = c.opErr("read", fmt.Errorf("%w: more than %d bytes on stream %d", ErrMessageTooLarge, max, info.Stream))
			return ReleasePieces(p), info, c.rerr
		}
		if flags&unix.MSG_EOR != 0 {
			return p, info, nil
		}
	}
}

// Unread gives back a whole message read with ReadMessagePieces, so that
// the next ReadMessagePieces or ReadMessage returns it again, with info:
// a caller can look at an association's first message (its PPID, say)
// before deciding who gets the association. The pieces are the Conn's
// until then. Only one message can be held.
func (c *Conn) Unread(p [][]byte, info Info) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.held, c.heldInf = append([][]byte(nil), p...), info
}

// WriteMsgBuffers sends the concatenation of bufs as one message, like
// WriteMsg, without copying them together.
func (c *Conn) WriteMsgBuffers(bufs [][]byte, info Info) (int, error) {
	if len(bufs) == 1 {
		return c.WriteMsg(bufs[0], info)
	}
	size := 0
	for _, b := range bufs {
		size += len(b)
	}
	if size == 0 {
		return 0, c.opErr("write", errors.New("empty message"))
	}
	return c.sendmsg(nil, bufs, info)
}

// sendmsg sends p, or the concatenation of bufs when bufs is not nil, as
// one message with info, retrying on EINTR and waiting in the netpoller
// while the send buffer is full.
func (c *Conn) sendmsg(p []byte, bufs [][]byte, info Info) (int, error) {
	oob := encodeSndInfo(info)
	var n int
	var err error
	werr := c.rc.Write(func(fd uintptr) bool {
		for {
			if bufs != nil {
				n, err = unix.SendmsgBuffers(int(fd), bufs, oob, nil, 0)
			} else {
				n, err = unix.SendmsgN(int(fd), p, oob, nil, 0)
			}
			if err != unix.EINTR {
				return err != unix.EAGAIN
			}
		}
	})
	return n, c.writeErr(werr, err)
}

func (c *Conn) writeErr(werr, err error) error {
	if werr != nil {
		return c.opErr("write", werr)
	}
	if err != nil {
		if errors.Is(err, unix.ECONNRESET) {
			err = fmt.Errorf("%w: %w", ErrAborted, err)
		}
		return c.opErr("write", os.NewSyscallError("sendmsg", err))
	}
	return nil
}

// MaxMessageSize returns the largest message ReadMessage and
// ReadMessagePieces accept.
func (c *Conn) MaxMessageSize() int { return int(c.max.Load()) }

// SetMaxMessageSize changes the largest message ReadMessage and
// ReadMessagePieces accept (n <= 0: DefaultMaxMessageSize) and raises the
// send buffer to hold a message that large, since Linux refuses to send a
// message larger than the send buffer; see fitSendBuffer.
func (c *Conn) SetMaxMessageSize(n int) error {
	if n <= 0 {
		n = DefaultMaxMessageSize
	}
	c.max.Store(int64(n))
	var err error
	if cerr := c.rc.Control(func(fd uintptr) { err = fitSendBuffer(int(fd), n) }); cerr != nil {
		return c.opErr("setsockopt", cerr)
	}
	if err != nil {
		return c.opErr("setsockopt", err)
	}
	return nil
}

// fitSendBuffer raises fd's send buffer to at least size bytes (never
// lowers it): SO_SNDBUF, which the kernel doubles and caps at twice
// net.core.wmem_max, then, if that fell short, SO_SNDBUFFORCE, which
// ignores the cap but needs CAP_NET_ADMIN. The buffer is a limit, not an
// allocation: memory is taken only for data queued.
func fitSendBuffer(fd, size int) error {
	cur, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_SNDBUF", err)
	}
	if cur >= size {
		return nil
	}
	half := (size + 1) / 2
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, half); err != nil {
		return os.NewSyscallError("setsockopt SO_SNDBUF", err)
	}
	if cur, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil && cur >= size {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, half); err != nil {
		return fmt.Errorf("send buffer of %d bytes for messages up to %d bytes (net.core.wmem_max caps SO_SNDBUF, and SO_SNDBUFFORCE needs CAP_NET_ADMIN): %w", cur, size, os.NewSyscallError("setsockopt SO_SNDBUFFORCE", err))
	}
	return nil
}

// WriteMsg sends p as one message with the stream, PPID (raw), flags and
// context of info, waiting in the netpoller while the send buffer is full.
// SCTP has no empty messages: an empty p is an error.
func (c *Conn) WriteMsg(p []byte, info Info) (int, error) {
	if len(p) == 0 {
		return 0, c.opErr("write", errors.New("empty message"))
	}
	n, err := c.sendmsg(p, nil, info)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Shutdown starts a graceful end of the association (SHUTDOWN): queued
// data is still delivered, then both sides' reads return io.EOF. SCTP has
// no half-close: the peer cannot send after it has seen the SHUTDOWN.
func (c *Conn) Shutdown() error {
	var err error
	if cerr := c.rc.Control(func(fd uintptr) { err = unix.Shutdown(int(fd), unix.SHUT_WR) }); cerr != nil {
		return c.opErr("shutdown", cerr)
	}
	if err != nil {
		return c.opErr("shutdown", os.NewSyscallError("shutdown", err))
	}
	return nil
}

// Abort ends the association at once with an ABORT (SO_LINGER 0 and
// close): queued data is dropped and the peer's reads fail with an error
// matching ErrAborted. The Conn is closed afterwards.
func (c *Conn) Abort() error {
	var err error
	if cerr := c.rc.Control(func(fd uintptr) {
		err = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}); cerr != nil {
		return c.opErr("abort", cerr)
	}
	if err != nil {
		c.Close()
		return c.opErr("abort", os.NewSyscallError("setsockopt SO_LINGER", err))
	}
	return c.Close()
}

// Streams returns the association's negotiated inbound and outbound
// stream counts (SCTP_STATUS).
func (c *Conn) Streams() (in, out uint16, err error) {
	var st sctp.Status
	var gerr error
	if cerr := c.rc.Control(func(fd uintptr) {
		gerr = getsockoptBytes(int(fd), sctp.SOL_SCTP, sctp.SCTP_STATUS, unsafe.Pointer(&st), unsafe.Sizeof(st))
	}); cerr != nil {
		return 0, 0, c.opErr("status", cerr)
	}
	if gerr != nil {
		return 0, 0, c.opErr("status", os.NewSyscallError("getsockopt SCTP_STATUS", gerr))
	}
	return st.Instreams, st.Ostreams, nil
}
