//go:build linux

package nsenter

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// listenBacklog is passed to listen(2); the kernel caps it at the
// namespace's own net.core.somaxconn, which is what we want.
const listenBacklog = 65535

// ListenFile creates a listening stream socket (network tcp, tcp4 or tcp6)
// inside the namespace and returns it as a file. A nil n means the caller's
// own namespace. Each net.FileListener made from the file is an independent
// handle on the same socket: closing one wakes its Accept without touching
// the others, and the socket closes with the last handle.
func ListenFile(n *Namespace, network, address string) (*os.File, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("listen: unsupported stream network %q", network)
	}
	addr, err := net.ResolveTCPAddr(network, address)
	if err != nil {
		return nil, err
	}
	return bound(n, network, address, unix.SOCK_STREAM, addr.IP, addr.Port, addr.Zone)
}

// ListenPacketFile creates a bound datagram socket (network udp, udp4 or
// udp6) inside the namespace and returns it as a file; see ListenFile.
func ListenPacketFile(n *Namespace, network, address string) (*os.File, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("listen: unsupported datagram network %q", network)
	}
	addr, err := net.ResolveUDPAddr(network, address)
	if err != nil {
		return nil, err
	}
	return bound(n, network, address, unix.SOCK_DGRAM, addr.IP, addr.Port, addr.Zone)
}

// Listen is ListenFile turned into a net.Listener.
func Listen(n *Namespace, network, address string) (net.Listener, error) {
	f, err := ListenFile(n, network, address)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FileListener(f)
}

// ListenPacket is ListenPacketFile turned into a net.PacketConn.
func ListenPacket(n *Namespace, network, address string) (net.PacketConn, error) {
	f, err := ListenPacketFile(n, network, address)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FilePacketConn(f)
}

// NewSocket creates a socket in n, or in the caller's namespace if n is nil.
func NewSocket(n *Namespace, domain, typ, proto int) (int, error) {
	if n == nil {
		return unix.Socket(domain, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	}
	return n.Socket(domain, typ, proto)
}

func bound(n *Namespace, network, address string, typ int, ip net.IP, port int, zone string) (*os.File, error) {
	family, sa, v6only, err := Sockaddr(network, ip, port, zone)
	if err != nil {
		return nil, err
	}
	fd, err := NewSocket(n, family, typ, 0)
	if err != nil {
		return nil, err
	}
	if err := setup(fd, family, typ, v6only, sa); err != nil {
		unix.Close(fd)
		return nil, err
	}
	name := network + "/" + address
	if n != nil {
		name = "netns/" + n.Spec + "/" + name
	}
	return os.NewFile(uintptr(fd), name), nil
}

func setup(fd, family, typ int, v6only bool, sa unix.Sockaddr) error {
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolint(v6only)); err != nil {
			return os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	switch typ {
	case unix.SOCK_STREAM:
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return os.NewSyscallError("setsockopt SO_REUSEADDR", err)
		}
	case unix.SOCK_DGRAM:
		if family == unix.AF_INET {
			// As Go's net package does for UDP.
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
				return os.NewSyscallError("setsockopt SO_BROADCAST", err)
			}
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, listenBacklog); err != nil {
			return os.NewSyscallError("listen", err)
		}
	}
	return nil
}

// Sockaddr chooses the address family and socket address for binding ip
// and port on network the way Go's net package does: tcp4/udp4 use IPv4,
// tcp6/udp6 IPv6 only, and tcp/udp with no or an unspecified address listen
// dual-stack on [::]. It is exported for the SCTP and dial code.
func Sockaddr(network string, ip net.IP, port int, zone string) (family int, sa unix.Sockaddr, v6only bool, err error) {
	last := network[len(network)-1]
	ip4 := ip.To4()
	switch {
	case last == '4':
		if ip != nil && ip4 == nil {
			return 0, nil, false, fmt.Errorf("address %s is not IPv4 (network %s)", ip, network)
		}
		sa := &unix.SockaddrInet4{Port: port}
		if ip4 != nil {
			copy(sa.Addr[:], ip4)
		}
		return unix.AF_INET, sa, false, nil
	case last == '6':
		if ip4 != nil && !ip.IsUnspecified() {
			return 0, nil, false, fmt.Errorf("address %s is not IPv6 (network %s)", ip, network)
		}
		sa, err := sockaddr6(ip, port, zone)
		return unix.AF_INET6, sa, true, err
	case ip == nil || ip.IsUnspecified():
		sa, err := sockaddr6(nil, port, zone)
		return unix.AF_INET6, sa, false, err
	case ip4 != nil:
		sa := &unix.SockaddrInet4{Port: port}
		copy(sa.Addr[:], ip4)
		return unix.AF_INET, sa, false, nil
	default:
		sa, err := sockaddr6(ip, port, zone)
		return unix.AF_INET6, sa, false, err
	}
}

// sockaddr6 builds an IPv6 socket address. Interface names belong to the
// namespace, which this thread is not in, so a zone must be numeric.
func sockaddr6(ip net.IP, port int, zone string) (*unix.SockaddrInet6, error) {
	sa := &unix.SockaddrInet6{Port: port}
	if ip != nil && !ip.IsUnspecified() {
		copy(sa.Addr[:], ip.To16())
	}
	if zone != "" {
		id, err := strconv.ParseUint(zone, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("zone %q: give the interface index inside the namespace, not its name", zone)
		}
		sa.ZoneId = uint32(id)
	}
	return sa, nil
}

func boolint(b bool) int {
	if b {
		return 1
	}
	return 0
}
