//go:build linux && !386

package sctpnet

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"
	"unsafe"

	"github.com/ishidawataru/sctp"
	"golang.org/x/sys/unix"
)

// Flags of struct sctp_paddrparams (linux/sctp.h).
const (
	sppHBEnable  = 1 << 0 // SPP_HB_ENABLE
	sppHBDisable = 1 << 1 // SPP_HB_DISABLE
)

// sizeofPaddrparams is sizeof(struct sctp_paddrparams): packed, aligned 4.
const sizeofPaddrparams = 156

// Offsets in struct sctp_paddrparams, after the assoc id (4) and the
// sockaddr_storage (128).
const (
	offHBInterval = 132
	offPathMaxRxt = 136
	offFlags      = 146
)

type rtoInfo struct {
	AssocID           int32
	Initial, Max, Min uint32
}

type assocParams struct {
	AssocID    int32
	AsocMaxRxt uint16
	PeerDests  uint16
	PeerRwnd   uint32
	LocalRwnd  uint32
	CookieLife uint32
}

type sackInfo struct {
	AssocID   int32
	SackDelay uint32
	SackFreq  uint32
}

func ms(d time.Duration) uint32 { return uint32(d / time.Millisecond) }

// applyTuning sets t's non-zero fields on fd: the endpoint's defaults
// before an association exists, the association's afterwards.
func applyTuning(fd int, t Tuning) error {
	if t.RTOInitial > 0 || t.RTOMin > 0 || t.RTOMax > 0 {
		v := rtoInfo{Initial: ms(t.RTOInitial), Min: ms(t.RTOMin), Max: ms(t.RTOMax)}
		if err := setsockoptBytes(fd, sctp.SOL_SCTP, sctp.SCTP_RTOINFO, unsafe.Pointer(&v), unsafe.Sizeof(v)); err != nil {
			return fmt.Errorf("rto initial %v min %v max %v: %w", t.RTOInitial, t.RTOMin, t.RTOMax, os.NewSyscallError("setsockopt SCTP_RTOINFO", err))
		}
	}
	if t.HeartbeatInterval != 0 || t.PathMaxRetrans > 0 {
		var p [sizeofPaddrparams]byte
		e := binary.NativeEndian
		switch {
		case t.HeartbeatInterval > 0:
			e.PutUint32(p[offHBInterval:], ms(t.HeartbeatInterval))
			e.PutUint32(p[offFlags:], sppHBEnable)
		case t.HeartbeatInterval < 0:
			e.PutUint32(p[offFlags:], sppHBDisable)
		}
		e.PutUint16(p[offPathMaxRxt:], t.PathMaxRetrans)
		if err := setsockoptBytes(fd, sctp.SOL_SCTP, sctp.SCTP_PEER_ADDR_PARAMS, unsafe.Pointer(&p[0]), sizeofPaddrparams); err != nil {
			return fmt.Errorf("heartbeat interval %v, path max retransmissions %d: %w", t.HeartbeatInterval, t.PathMaxRetrans, os.NewSyscallError("setsockopt SCTP_PEER_ADDR_PARAMS", err))
		}
	}
	if t.AssocMaxRetrans > 0 {
		v := assocParams{AsocMaxRxt: t.AssocMaxRetrans}
		if err := setsockoptBytes(fd, sctp.SOL_SCTP, sctp.SCTP_ASSOCINFO, unsafe.Pointer(&v), unsafe.Sizeof(v)); err != nil {
			return fmt.Errorf("association max retransmissions %d: %w", t.AssocMaxRetrans, os.NewSyscallError("setsockopt SCTP_ASSOCINFO", err))
		}
	}
	if t.SackDelay > 0 || t.SackFrequency > 0 {
		v := sackInfo{SackDelay: ms(t.SackDelay), SackFreq: t.SackFrequency}
		if err := setsockoptBytes(fd, sctp.SOL_SCTP, sctp.SCTP_DELAYED_SACK, unsafe.Pointer(&v), unsafe.Sizeof(v)); err != nil {
			return fmt.Errorf("sack delay %v frequency %d: %w", t.SackDelay, t.SackFrequency, os.NewSyscallError("setsockopt SCTP_DELAYED_SACK", err))
		}
	}
	return nil
}

// readTuning reads fd's parameters back from the kernel.
func readTuning(fd int) (Tuning, error) {
	var t Tuning
	var rto rtoInfo
	if err := getsockoptBytes(fd, sctp.SOL_SCTP, sctp.SCTP_RTOINFO, unsafe.Pointer(&rto), unsafe.Sizeof(rto)); err != nil {
		return t, os.NewSyscallError("getsockopt SCTP_RTOINFO", err)
	}
	t.RTOInitial = time.Duration(rto.Initial) * time.Millisecond
	t.RTOMin = time.Duration(rto.Min) * time.Millisecond
	t.RTOMax = time.Duration(rto.Max) * time.Millisecond
	var p [sizeofPaddrparams]byte
	if err := getsockoptBytes(fd, sctp.SOL_SCTP, sctp.SCTP_PEER_ADDR_PARAMS, unsafe.Pointer(&p[0]), sizeofPaddrparams); err != nil {
		return t, os.NewSyscallError("getsockopt SCTP_PEER_ADDR_PARAMS", err)
	}
	e := binary.NativeEndian
	t.HeartbeatInterval = time.Duration(e.Uint32(p[offHBInterval:])) * time.Millisecond
	if e.Uint32(p[offFlags:])&sppHBDisable != 0 {
		t.HeartbeatInterval = -1
	}
	t.PathMaxRetrans = e.Uint16(p[offPathMaxRxt:])
	var a assocParams
	if err := getsockoptBytes(fd, sctp.SOL_SCTP, sctp.SCTP_ASSOCINFO, unsafe.Pointer(&a), unsafe.Sizeof(a)); err != nil {
		return t, os.NewSyscallError("getsockopt SCTP_ASSOCINFO", err)
	}
	t.AssocMaxRetrans = a.AsocMaxRxt
	var s sackInfo
	if err := getsockoptBytes(fd, sctp.SOL_SCTP, sctp.SCTP_DELAYED_SACK, unsafe.Pointer(&s), unsafe.Sizeof(s)); err != nil {
		return t, os.NewSyscallError("getsockopt SCTP_DELAYED_SACK", err)
	}
	t.SackDelay = time.Duration(s.SackDelay) * time.Millisecond
	t.SackFrequency = s.SackFreq
	return t, nil
}

// Tune sets t's non-zero fields on the association (settings that only
// matter when an association starts, such as stream counts, are
// Config's).
func (c *Conn) Tune(t Tuning) error {
	var err error
	if cerr := c.rc.Control(func(fd uintptr) { err = applyTuning(int(fd), t) }); cerr != nil {
		return c.opErr("setsockopt", cerr)
	}
	if err != nil {
		return c.opErr("setsockopt", err)
	}
	return nil
}

// Tuning reads the association's parameters back from the kernel.
func (c *Conn) Tuning() (Tuning, error) {
	var t Tuning
	var err error
	if cerr := c.rc.Control(func(fd uintptr) { t, err = readTuning(int(fd)) }); cerr != nil {
		return t, c.opErr("getsockopt", cerr)
	}
	if err != nil {
		return t, c.opErr("getsockopt", err)
	}
	return t, nil
}

// SocketOptions are the socket-level settings of an association, read
// back from the kernel.
type SocketOptions struct {
	NoDelay                 bool
	ReadBuffer, WriteBuffer int // SO_RCVBUF, SO_SNDBUF as the kernel reports them (doubled)
	InitMsg                 sctp.InitMsg
}

// SocketOptions reads the socket-level settings back from the kernel.
func (c *Conn) SocketOptions() (SocketOptions, error) {
	var o SocketOptions
	var err error
	cerr := c.rc.Control(func(fd uintptr) {
		var nd int
		if nd, err = unix.GetsockoptInt(int(fd), sctp.SOL_SCTP, sctp.SCTP_NODELAY); err != nil {
			return
		}
		o.NoDelay = nd != 0
		if o.ReadBuffer, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err != nil {
			return
		}
		if o.WriteBuffer, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF); err != nil {
			return
		}
		err = getsockoptBytes(int(fd), sctp.SOL_SCTP, sctp.SCTP_INITMSG, unsafe.Pointer(&o.InitMsg), unsafe.Sizeof(o.InitMsg))
	})
	if cerr != nil {
		return o, c.opErr("getsockopt", cerr)
	}
	if err != nil {
		return o, c.opErr("getsockopt", err)
	}
	return o, nil
}

// SetNoDelay sets or clears SCTP_NODELAY on the association.
func (c *Conn) SetNoDelay(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return c.control("setsockopt", func(fd int) error {
		return os.NewSyscallError("setsockopt SCTP_NODELAY", unix.SetsockoptInt(fd, sctp.SOL_SCTP, sctp.SCTP_NODELAY, v))
	})
}

// SetWriteBuffer sets the send buffer to n bytes (doubled by the kernel,
// past net.core.wmem_max where the process may), never below what a
// message of MaxMessageSize needs.
func (c *Conn) SetWriteBuffer(n int) error {
	return c.control("setsockopt", func(fd int) error {
		if err := setBuffer(fd, unix.SO_SNDBUF, unix.SO_SNDBUFFORCE, n); err != nil {
			return err
		}
		return fitSendBuffer(fd, c.MaxMessageSize())
	})
}

func (c *Conn) control(op string, f func(fd int) error) error {
	var err error
	if cerr := c.rc.Control(func(fd uintptr) { err = f(int(fd)) }); cerr != nil {
		return c.opErr(op, cerr)
	}
	if err != nil {
		return c.opErr(op, err)
	}
	return nil
}
