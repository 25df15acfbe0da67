//go:build linux

package nsenter

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dial connects to address over network (tcp, tcp4, tcp6, udp, udp4, udp6)
// from a socket created inside n (the caller's namespace if n is nil), with
// TCP keep-alive off; see Dialer.
func Dial(ctx context.Context, n *Namespace, network, address string) (net.Conn, error) {
	return Dialer{}.Dial(ctx, n, network, address)
}

// Dialer connects from sockets created inside a namespace.
type Dialer struct {
	// KeepAlive is the TCP keep-alive of the connection. Default: off
	// (no probes, and no system call to set them).
	KeepAlive net.KeepAliveConfig

	// LocalAddr, when set, is the address (a *net.TCPAddr or *net.UDPAddr
	// of the dialed family) the socket is bound to before it connects. The
	// bind happens on the socket made in the namespace, so the address is
	// one of that namespace. Default: none (the kernel picks).
	LocalAddr net.Addr
}

// Dial connects to address over network (tcp, tcp4, tcp6, udp, udp4, udp6)
// from a socket created inside n (the caller's namespace if n is nil). Only
// socket creation happens in the namespace; the connect is waited for in
// Go's netpoller, so no OS thread is held. The host must be an IP address:
// names would be resolved by the caller's resolver, outside the namespace,
// which is rarely what is meant; an IPv6 zone must be an interface index.
//
// The connection is made by net.Dialer, whose Control hook puts the socket
// created in n in place of the one the dialer created (dup3 onto its
// descriptor, before the connect): the result is an ordinary
// *net.TCPConn or *net.UDPConn, and the descriptor is never duplicated
// again nor asked for its type and addresses (as net.FileConn would). A
// literal address with a single destination means no resolver and no
// Happy Eyeballs; TCP_NODELAY is set as for every Go connection.
func (d Dialer) Dial(ctx context.Context, n *Namespace, network, address string) (net.Conn, error) {
	var typ int
	switch network {
	case "tcp", "tcp4", "tcp6":
		typ = unix.SOCK_STREAM
	case "udp", "udp4", "udp6":
		typ = unix.SOCK_DGRAM
	default:
		return nil, fmt.Errorf("dial: unsupported network %q", network)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: host must be an IP address", network, address)
	}
	if z := ip.Zone(); z != "" {
		// A name would be looked up in the caller's namespace.
		if _, err := strconv.ParseUint(z, 10, 32); err != nil {
			return nil, fmt.Errorf("dial %s %s: IPv6 zone %q must be an interface index", network, address, z)
		}
	}
	if _, err := net.LookupPort(network, portStr); err != nil {
		return nil, err
	}
	fam, family, err := familyOf(network, ip)
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: %w", network, address, err)
	}
	nd := net.Dialer{KeepAlive: -1}
	if d.KeepAlive.Enable {
		nd = net.Dialer{KeepAliveConfig: d.KeepAlive}
	}
	nd.LocalAddr = d.LocalAddr
	if n == nil {
		return nd.DialContext(ctx, fam, address)
	}
	fd, err := NewSocket(n, family, typ, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	// The dialer makes one socket for a literal address, so this runs
	// once, before the dialer binds (LocalAddr) and connects.
	nd.Control = func(_, _ string, c syscall.RawConn) error {
		var derr error
		if err := c.Control(func(s uintptr) { derr = unix.Dup3(fd, int(s), unix.O_CLOEXEC) }); err != nil {
			return err
		}
		if derr != nil {
			return os.NewSyscallError("dup3", derr)
		}
		return nil
	}
	return nd.DialContext(ctx, fam, address)
}

// familyOf returns the network with its family made explicit (tcp4, tcp6,
// udp4, udp6: an unspecified one follows the destination) and the address
// family, for both the socket made in the namespace and the dialer's.
func familyOf(network string, ip netip.Addr) (string, int, error) {
	v4 := ip.Unmap().Is4()
	switch network {
	case "tcp", "udp":
		if v4 {
			if network == "tcp" {
				return "tcp4", unix.AF_INET, nil
			}
			return "udp4", unix.AF_INET, nil
		}
		if network == "tcp" {
			return "tcp6", unix.AF_INET6, nil
		}
		return "udp6", unix.AF_INET6, nil
	case "tcp4", "udp4":
		if !v4 {
			return "", 0, fmt.Errorf("address %s is not IPv4 (network %s)", ip, network)
		}
		return network, unix.AF_INET, nil
	default: // tcp6, udp6
		if v4 && !ip.IsUnspecified() {
			return "", 0, fmt.Errorf("address %s is not IPv6 (network %s)", ip, network)
		}
		return network, unix.AF_INET6, nil
	}
}
