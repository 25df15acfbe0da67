//go:build linux

package nsenter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
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
	ip, zone, _ := splitZone(host)
	if ip == nil {
		return nil, fmt.Errorf("dial %s %s: host must be an IP address", network, address)
	}
	port, err := net.LookupPort(network, portStr)
	if err != nil {
		return nil, err
	}
	// Unspecified families follow the destination, for both sockets.
	fam := network
	if fam == "tcp" || fam == "udp" {
		if ip.To4() != nil {
			fam += "4"
		} else {
			fam += "6"
		}
	}
	family, _, _, err := Sockaddr(fam, ip, port, zone)
	if err != nil {
		return nil, err
	}
	nd := net.Dialer{KeepAlive: -1}
	if d.KeepAlive.Enable {
		nd = net.Dialer{KeepAliveConfig: d.KeepAlive}
	}
	if n == nil {
		return nd.DialContext(ctx, fam, address)
	}
	fd, err := NewSocket(n, family, typ, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	placed := false
	nd.Control = func(_, _ string, c syscall.RawConn) error {
		if placed {
			return errors.New("a second socket for one dial") // one literal address: never
		}
		var derr error
		if err := c.Control(func(s uintptr) { derr = unix.Dup3(fd, int(s), unix.O_CLOEXEC) }); err != nil {
			return err
		}
		if derr != nil {
			return os.NewSyscallError("dup3", derr)
		}
		placed = true
		return nil
	}
	return nd.DialContext(ctx, fam, address)
}

func splitZone(host string) (net.IP, string, error) {
	h, zone, _ := cutLast(host, '%')
	ip := net.ParseIP(h)
	if ip == nil {
		return nil, "", fmt.Errorf("%q is not an IP address", host)
	}
	return ip, zone, nil
}

func cutLast(s string, c byte) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
