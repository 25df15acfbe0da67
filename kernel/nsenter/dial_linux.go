//go:build linux

package nsenter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Dial connects to address over network (tcp, tcp4, tcp6, udp, udp4, udp6)
// from a socket created inside n (the caller's namespace if n is nil). Only
// socket creation happens in the namespace; the connect is waited for in
// Go's netpoller, so no OS thread is held. The host must be an IP address:
// names are resolved by the caller's resolver, outside the namespace, which
// is rarely what is meant.
func Dial(ctx context.Context, n *Namespace, network, address string) (net.Conn, error) {
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
	// Unspecified families follow the destination.
	fam := network
	if fam == "tcp" || fam == "udp" {
		if ip.To4() != nil {
			fam += "4"
		} else {
			fam += "6"
		}
	}
	family, sa, _, err := Sockaddr(fam, ip, port, zone)
	if err != nil {
		return nil, err
	}
	fd, err := NewSocket(n, family, typ, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), network+"/"+address)
	defer f.Close()
	if err := connect(ctx, f, fd, sa); err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: netAddr(network, ip, port, zone), Err: err}
	}
	return net.FileConn(f)
}

func connect(ctx context.Context, f *os.File, fd int, sa unix.Sockaddr) error {
	err := unix.Connect(fd, sa)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, unix.EINPROGRESS):
		return os.NewSyscallError("connect", err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = f.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	// The callback runs once before any wait (after the poller was armed,
	// so no event is lost) and again on each wakeup. While the connect is
	// in progress SO_ERROR is 0 and getpeername says ENOTCONN.
	var soErr error
	werr := rc.Write(func(fd uintptr) bool {
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			soErr = os.NewSyscallError("getsockopt", err)
		case v == int(unix.EINPROGRESS) || v == int(unix.EALREADY) || v == int(unix.EINTR):
			return false
		case v != 0:
			soErr = os.NewSyscallError("connect", unix.Errno(v))
		default:
			if _, err := unix.Getpeername(int(fd)); errors.Is(err, unix.ENOTCONN) {
				return false
			}
		}
		return true
	})
	if werr != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return werr
	}
	_ = f.SetWriteDeadline(time.Time{})
	return soErr
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

func netAddr(network string, ip net.IP, port int, zone string) net.Addr {
	if network[0] == 'u' {
		return &net.UDPAddr{IP: ip, Port: port, Zone: zone}
	}
	return &net.TCPAddr{IP: ip, Port: port, Zone: zone}
}
