//go:build linux && !386

package sctpnet

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"unsafe"

	"github.com/ishidawataru/sctp"
	"golang.org/x/sys/unix"
)

// An IPv6 zone ("fe80::1%eth0") names an interface of the namespace the
// socket lives in, which need not be the caller's: Listen and Dial may
// create the socket elsewhere through a SocketFunc. So zones are resolved
// with ioctls on the socket itself, which the kernel answers in the
// socket's own network namespace, never with net.InterfaceByName.

// zoneIndex returns the index of the interface zone names in fd's network
// namespace. A numeric zone is an index already.
func zoneIndex(fd int, zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifr, err := unix.NewIfreq(zone)
	if err != nil {
		return 0, fmt.Errorf("zone %q: invalid interface name: %w", zone, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("zone %q: no such interface in the socket's network namespace: %w", zone, err)
	}
	return ifr.Uint32(), nil
}

// zoneName returns the name of interface index in fd's network namespace,
// or the index as a decimal number if the kernel does not say (a listening
// one-to-one SCTP socket refuses the ioctl).
func zoneName(fd int, index uint32) string {
	if index == 0 {
		return ""
	}
	ifr, _ := unix.NewIfreq("")
	ifr.SetUint32(index)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFNAME, ifr); err == nil && ifr.Name() != "" {
		return ifr.Name()
	}
	return strconv.FormatUint(uint64(index), 10)
}

// sockaddr builds fd's sockaddr for ip and port in family.
func sockaddr(fd, family int, ip net.IPAddr, port int) (unix.Sockaddr, error) {
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
	id, err := zoneIndex(fd, ip.Zone)
	if err != nil {
		return nil, err
	}
	sa.ZoneId = id
	return sa, nil
}

// packAddrs packs a's addresses as the array of sockaddrs sctp_bindx and
// sctp_connectx take, with zones resolved in fd's namespace.
func packAddrs(fd, family int, a *sctp.SCTPAddr) ([]byte, error) {
	var buf []byte
	port := make([]byte, 2)
	binary.BigEndian.PutUint16(port, uint16(a.Port))
	for _, ip := range a.IPAddrs {
		if ip4 := ip.IP.To4(); ip4 != nil && family == unix.AF_INET {
			var s unix.RawSockaddrInet4
			s.Family = unix.AF_INET
			copy((*[2]byte)(unsafe.Pointer(&s.Port))[:], port)
			copy(s.Addr[:], ip4)
			buf = append(buf, unsafe.Slice((*byte)(unsafe.Pointer(&s)), unsafe.Sizeof(s))...)
			continue
		}
		if family == unix.AF_INET {
			return nil, fmt.Errorf("%s is not an IPv4 address", ip.IP)
		}
		var s unix.RawSockaddrInet6
		s.Family = unix.AF_INET6
		copy((*[2]byte)(unsafe.Pointer(&s.Port))[:], port)
		copy(s.Addr[:], ip.IP.To16())
		id, err := zoneIndex(fd, ip.Zone)
		if err != nil {
			return nil, err
		}
		s.Scope_id = id
		buf = append(buf, unsafe.Slice((*byte)(unsafe.Pointer(&s)), unsafe.Sizeof(s))...)
	}
	if len(buf) == 0 {
		return nil, fmt.Errorf("no address")
	}
	return buf, nil
}

// bindx adds a's addresses to fd's endpoint (sctp_bindx SCTP_BINDX_ADD_ADDR).
func bindx(fd, family int, a *sctp.SCTPAddr) error {
	buf, err := packAddrs(fd, family, a)
	if err != nil {
		return err
	}
	return os.NewSyscallError("sctp_bindx", setsockoptBytes(fd, sctp.SOL_SCTP, sctp.SCTP_SOCKOPT_BINDX_ADD, unsafe.Pointer(&buf[0]), uintptr(len(buf))))
}

// connectx starts an association to all of a's addresses (sctp_connectx).
// The error is the raw errno, EINPROGRESS on a non-blocking socket.
func connectx(fd, family int, a *sctp.SCTPAddr) error {
	buf, err := packAddrs(fd, family, a)
	if err != nil {
		return err
	}
	return setsockoptBytes(fd, sctp.SOL_SCTP, sctp.SCTP_SOCKOPT_CONNECTX, unsafe.Pointer(&buf[0]), uintptr(len(buf)))
}

// addrFromSockaddr turns a peer's or local sockaddr into an SCTPAddr, the
// zone named as fd's namespace names it.
func addrFromSockaddr(fd int, sa unix.Sockaddr) *sctp.SCTPAddr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &sctp.SCTPAddr{IPAddrs: []net.IPAddr{{IP: net.IP(sa.Addr[:]).To16()}}, Port: sa.Port}
	case *unix.SockaddrInet6:
		ip := net.IPAddr{IP: net.IP(sa.Addr[:])}
		if ip.IP.To4() != nil {
			ip.IP = ip.IP.To4()
		} else {
			ip.Zone = zoneName(fd, sa.ZoneId)
		}
		return &sctp.SCTPAddr{IPAddrs: []net.IPAddr{ip}, Port: sa.Port}
	}
	return nil
}

// peerAddr is accept's peer address with its zone. The kernel reports a
// link-local peer's sockaddr without a scope id (the socket is bound to no
// device), so the zone comes from the association's own list of peer
// addresses, which has the interface each one was seen on.
func peerAddr(fd int, sa unix.Sockaddr) *sctp.SCTPAddr {
	a := addrFromSockaddr(fd, sa)
	if a == nil || len(a.IPAddrs) != 1 || !a.IPAddrs[0].IP.IsLinkLocalUnicast() || a.IPAddrs[0].Zone != "" {
		return a
	}
	if peers, err := getAddrs(fd, sctp.SCTP_GET_PEER_ADDRS); err == nil {
		for _, p := range peers.IPAddrs {
			if p.IP.Equal(a.IPAddrs[0].IP) {
				a.IPAddrs[0].Zone = p.Zone
			}
		}
	}
	return a
}

// getAddrs asks the kernel for fd's local or peer addresses
// (SCTP_GET_LOCAL_ADDRS, SCTP_GET_PEER_ADDRS).
func getAddrs(fd, opt int) (*sctp.SCTPAddr, error) {
	var param struct {
		assocID int32
		num     uint32
		addrs   [4096]byte
	}
	if err := getsockoptBytes(fd, sctp.SOL_SCTP, opt, unsafe.Pointer(&param), unsafe.Sizeof(param)); err != nil {
		return nil, err
	}
	a := &sctp.SCTPAddr{}
	b := param.addrs[:]
	for i := uint32(0); i < param.num; i++ {
		if len(b) < 2 {
			break
		}
		var one *sctp.SCTPAddr
		switch binary.NativeEndian.Uint16(b) {
		case unix.AF_INET:
			if len(b) < unix.SizeofSockaddrInet4 {
				return a, nil
			}
			s := (*unix.RawSockaddrInet4)(unsafe.Pointer(&b[0]))
			one = addrFromSockaddr(fd, &unix.SockaddrInet4{Port: int(binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&s.Port))[:])), Addr: s.Addr})
			b = b[unix.SizeofSockaddrInet4:]
		case unix.AF_INET6:
			if len(b) < unix.SizeofSockaddrInet6 {
				return a, nil
			}
			s := (*unix.RawSockaddrInet6)(unsafe.Pointer(&b[0]))
			one = addrFromSockaddr(fd, &unix.SockaddrInet6{Port: int(binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&s.Port))[:])), ZoneId: s.Scope_id, Addr: s.Addr})
			b = b[unix.SizeofSockaddrInet6:]
		default:
			return a, nil
		}
		a.Port = one.Port
		a.IPAddrs = append(a.IPAddrs, one.IPAddrs...)
	}
	return a, nil
}

// localAddrs asks the kernel for all local addresses of fd's association
// (or endpoint), falling back to getsockname.
func localAddrs(fd int) *sctp.SCTPAddr {
	if a, err := getAddrs(fd, sctp.SCTP_GET_LOCAL_ADDRS); err == nil && len(a.IPAddrs) > 0 {
		return a
	}
	if sa, err := unix.Getsockname(fd); err == nil {
		return addrFromSockaddr(fd, sa)
	}
	return nil
}
