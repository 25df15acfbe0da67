//go:build linux && !386

package sctpnet

import (
	"errors"
	"net"
	"os"
	"unsafe"

	"github.com/ishidawataru/sctp"
	"golang.org/x/sys/unix"
)

// Socket options from linux/sctp.h that ishidawataru/sctp does not name.
const (
	sctpRecvRcvInfo = 32 // SCTP_RECVRCVINFO
)

// socketType is what a SocketFunc is asked for.
const socketType = unix.SOCK_STREAM | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC

func newSocket(socket SocketFunc, family int) (int, error) {
	if socket == nil {
		socket = unix.Socket
	}
	fd, err := socket(family, socketType, unix.IPPROTO_SCTP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	// A SocketFunc may have dropped the flags; the netpoller needs them.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

func setsockoptBytes(fd, level, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockoptBytes(fd, level, opt int, p unsafe.Pointer, size uintptr) error {
	l := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// configure sets the options every socket of this package has, before
// bind/listen/connect (accepted sockets inherit them).
func configure(fd, family int, v6only bool, cfg Config) error {
	if family == unix.AF_INET6 {
		v := 0
		if v6only {
			v = 1
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v); err != nil {
			return os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	init := sctp.InitMsg{
		NumOstreams:    cfg.OutStreams,
		MaxInstreams:   cfg.MaxInStreams,
		MaxAttempts:    cfg.MaxInitAttempts,
		MaxInitTimeout: cfg.MaxInitTimeout,
	}
	if err := setsockoptBytes(fd, sctp.SOL_SCTP, sctp.SCTP_INITMSG, unsafe.Pointer(&init), unsafe.Sizeof(init)); err != nil {
		return os.NewSyscallError("setsockopt SCTP_INITMSG", err)
	}
	if cfg.WriteBuffer > 0 {
		if err := setBuffer(fd, unix.SO_SNDBUF, unix.SO_SNDBUFFORCE, cfg.WriteBuffer); err != nil {
			return err
		}
	}
	if cfg.ReadBuffer > 0 {
		if err := setBuffer(fd, unix.SO_RCVBUF, unix.SO_RCVBUFFORCE, cfg.ReadBuffer); err != nil {
			return err
		}
	}
	if !cfg.Nagle {
		if err := unix.SetsockoptInt(fd, sctp.SOL_SCTP, sctp.SCTP_NODELAY, 1); err != nil {
			return os.NewSyscallError("setsockopt SCTP_NODELAY", err)
		}
	}
	if err := applyTuning(fd, cfg.Tuning); err != nil {
		return err
	}
	return subscribe(fd)
}

// setBuffer sets a socket buffer to n bytes (the kernel doubles it). The
// plain option is capped at net.core.wmem_max or rmem_max; where that cut
// it short, the FORCE variant, which needs CAP_NET_ADMIN, is tried, and if
// it is refused the capped size stays.
func setBuffer(fd, opt, force, n int) error {
	name := map[int]string{unix.SO_SNDBUF: "SO_SNDBUF", unix.SO_RCVBUF: "SO_RCVBUF"}[opt]
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, n); err != nil {
		return os.NewSyscallError("setsockopt "+name, err)
	}
	if got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt); err == nil && got < 2*n {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, n)
	}
	return nil
}

// subscribe asks for SCTP_RCVINFO with every message and for the
// association change and shutdown notifications that tell a graceful end
// from an abort.
func subscribe(fd int) error {
	if err := unix.SetsockoptInt(fd, sctp.SOL_SCTP, sctpRecvRcvInfo, 1); err != nil {
		return os.NewSyscallError("setsockopt SCTP_RECVRCVINFO", err)
	}
	ev := sctp.EventSubscribe{Association: 1, Shutdown: 1}
	if err := setsockoptBytes(fd, sctp.SOL_SCTP, sctp.SCTP_EVENTS, unsafe.Pointer(&ev), unsafe.Sizeof(ev)); err != nil {
		return os.NewSyscallError("setsockopt SCTP_EVENTS", err)
	}
	return nil
}

// chooseFamily picks the socket's address family: sctp4 is IPv4, sctp6 is
// IPv6 only, sctp is IPv4 for IPv4 addresses and dual-stack IPv6 for IPv6
// or mixed addresses and for the wildcard.
func chooseFamily(network string, a *sctp.SCTPAddr) (family int, v6only bool) {
	switch network {
	case "sctp4":
		return unix.AF_INET, false
	case "sctp6":
		return unix.AF_INET6, true
	}
	if len(a.IPAddrs) == 0 {
		return unix.AF_INET6, false
	}
	for _, ip := range a.IPAddrs {
		if ip.IP.To4() == nil {
			return unix.AF_INET6, false
		}
	}
	return unix.AF_INET, false
}

// bindAddr binds fd to a: the wildcard, one address, or several through
// sctp_bindx for a multi-homed endpoint.
func bindAddr(fd, family int, a *sctp.SCTPAddr) error {
	if len(a.IPAddrs) == 0 {
		any := net.IPv4zero
		if family == unix.AF_INET6 {
			any = net.IPv6unspecified
		}
		sa, _ := sockaddr(fd, family, net.IPAddr{IP: any}, a.Port)
		return os.NewSyscallError("bind", unix.Bind(fd, sa))
	}
	sa, err := sockaddr(fd, family, a.IPAddrs[0], a.Port)
	if err != nil {
		return err
	}
	if err := unix.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	if len(a.IPAddrs) == 1 {
		return nil
	}
	port, err := localPort(fd)
	if err != nil {
		return err
	}
	rest := &sctp.SCTPAddr{IPAddrs: a.IPAddrs[1:], Port: port}
	return bindx(fd, family, rest)
}

func localPort(fd int) (int, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, os.NewSyscallError("getsockname", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port, nil
	case *unix.SockaddrInet6:
		return sa.Port, nil
	}
	return 0, errors.New("getsockname: not an inet address")
}
