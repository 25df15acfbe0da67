//go:build linux

package nsenter

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// SocketFile creates a socket of any kind (socket(2)'s domain, type and
// protocol: AF_PACKET SOCK_RAW, AF_NETLINK, ICMP, ...) inside the namespace
// n, or in the caller's own if n is nil, and returns it as a file. The
// socket is non-blocking and close-on-exec, so the file's reads and writes
// go through Go's netpoller and honour SetReadDeadline; bind, setsockopt
// and I/O may follow from any goroutine (through f.SyscallConn, or the
// file's own Read and Write), since the socket stays in the namespace it
// was created in. Everything that names a device or a route (an interface
// index, a bind address) is resolved in that namespace: see InterfaceIndex.
func SocketFile(n *Namespace, domain, typ, proto int) (*os.File, error) {
	name := fmt.Sprintf("socket(%d,%d,%d)", domain, typ, proto)
	if n != nil {
		name = "netns/" + n.Spec + "/" + name
	}
	fd, err := NewSocket(n, domain, typ, proto)
	if err != nil {
		if _, ok := err.(unix.Errno); ok {
			err = os.NewSyscallError("socket", err)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// InterfaceIndex returns the index of the network interface called name in
// the namespace the socket c belongs to (ioctl SIOCGIFINDEX on c), whatever
// namespace the caller is in. net.InterfaceByName would look in the
// caller's namespace instead.
func InterfaceIndex(c syscall.Conn, name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("interface %q: %w", name, err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("interface %q: %w", name, err)
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = unix.IoctlIfreq(int(fd), unix.SIOCGIFINDEX, ifr) }); err != nil {
		return 0, fmt.Errorf("interface %q: %w", name, err)
	}
	if ierr != nil {
		return 0, fmt.Errorf("interface %q in the socket's namespace: %w", name, os.NewSyscallError("ioctl SIOCGIFINDEX", ierr))
	}
	return int(ifr.Uint32()), nil
}
