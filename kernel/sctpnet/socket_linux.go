//go:build linux && !386

package sctpnet

import (
	"errors"
	"fmt"
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
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, cfg.WriteBuffer); err != nil {
			return os.NewSyscallError("setsockopt SO_SNDBUF", err)
		}
	}
	if cfg.ReadBuffer > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.ReadBuffer); err != nil {
			return os.NewSyscallError("setsockopt SO_RCVBUF", err)
		}
	}
	if !cfg.Nagle {
		if err := unix.SetsockoptInt(fd, sctp.SOL_SCTP, sctp.SCTP_NODELAY, 1); err != nil {
			return os.NewSyscallError("setsockopt SCTP_NODELAY", err)
		}
	}
	return subscribe(fd)
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

func sockaddr(family int, ip net.IPAddr, port int) (unix.Sockaddr, error) {
	if family == unix.AF_INET {
		ip4 := ip.IP.To4()
		if ip4 == nil {
			return nil, fmt.Errorf("%s is not an IPv4 address", ip.IP)
		}
		sa := &unix.SockaddrInet4{Port: port}
		copy(sa.Addr[:], ip4)
		return sa, nil
	}
	sa := &unix.SockaddrInet6{Port: port}
	copy(sa.Addr[:], ip.IP.To16()) // IPv4 becomes v4-mapped
	if ip.Zone != "" {
		ifi, err := net.InterfaceByName(ip.Zone)
		if err != nil {
			return nil, fmt.Errorf("zone %q: %w", ip.Zone, err)
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
}

// bindAddr binds fd to a: the wildcard, one address, or several through
// sctp_bindx for a multi-homed endpoint.
func bindAddr(fd, family int, a *sctp.SCTPAddr) error {
	if len(a.IPAddrs) == 0 {
		any := net.IPv4zero
		if family == unix.AF_INET6 {
			any = net.IPv6unspecified
		}
		sa, _ := sockaddr(family, net.IPAddr{IP: any}, a.Port)
		return os.NewSyscallError("bind", unix.Bind(fd, sa))
	}
	sa, err := sockaddr(family, a.IPAddrs[0], a.Port)
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
	return os.NewSyscallError("sctp_bindx", sctp.SCTPBind(fd, rest, sctp.SCTP_BINDX_ADD_ADDR))
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

// addrFromSockaddr turns an accepted peer's address into an SCTPAddr.
func addrFromSockaddr(sa unix.Sockaddr) *sctp.SCTPAddr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &sctp.SCTPAddr{IPAddrs: []net.IPAddr{{IP: net.IP(sa.Addr[:]).To16()}}, Port: sa.Port}
	case *unix.SockaddrInet6:
		ip := net.IPAddr{IP: net.IP(sa.Addr[:])}
		if ip.IP.To4() != nil {
			ip.IP = ip.IP.To4()
		} else if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				ip.Zone = ifi.Name
			}
		}
		return &sctp.SCTPAddr{IPAddrs: []net.IPAddr{ip}, Port: sa.Port}
	}
	return nil
}

// localAddrs asks the kernel for all local addresses of fd's association
// (or endpoint), falling back to getsockname.
func localAddrs(fd int) *sctp.SCTPAddr {
	if a, err := sctp.NewSCTPConn(fd, nil).SCTPLocalAddr(0); err == nil && len(a.IPAddrs) > 0 {
		return a
	}
	if sa, err := unix.Getsockname(fd); err == nil {
		return addrFromSockaddr(sa)
	}
	return nil
}
