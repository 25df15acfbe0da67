//go:build linux

package nsenter

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TCP states (include/net/tcp_states.h) counted as open connections: all
// but LISTEN, TIME_WAIT and CLOSE.
const openTCPStates = 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5 | 1<<8 | 1<<9 | 1<<11

// OfSocket returns a handle on the namespace the socket c belongs to,
// obtained from the socket itself (SIOCGSKNS), so no path can name another
// namespace in the meantime. Close it when done.
func OfSocket(c syscall.Conn) (*Namespace, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		nsfd int
		ierr error
	)
	if err := rc.Control(func(fd uintptr) { nsfd, ierr = unix.IoctlRetInt(int(fd), unix.SIOCGSKNS) }); err != nil {
		return nil, err
	}
	if ierr != nil {
		return nil, fmt.Errorf("socket namespace: %w", os.NewSyscallError("ioctl SIOCGSKNS", ierr))
	}
	unix.CloseOnExec(nsfd)
	id, err := check(nsfd, "socket namespace")
	if err != nil {
		unix.Close(nsfd)
		return nil, err
	}
	return &Namespace{Spec: "socket:" + id.String(), Path: "", ID: id, h: netns.NsHandle(nsfd)}, nil
}

// OpenTCPConns counts the TCP connections with local port port in the
// namespace of the socket c — established or closing, not listening and
// not in TIME_WAIT — as the kernel has them (sock_diag, asked from a
// netlink socket created inside that namespace). Connections still in the
// accept queue count too.
func OpenTCPConns(c syscall.Conn, port uint16) (int, error) {
	ns, err := OfSocket(c)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	fd, err := ns.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if err := unix.SetNonblock(fd, false); err != nil {
		return 0, err
	}
	total := 0
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		n, err := countTCP(fd, family, port)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// countTCP dumps the TCP sockets of one family and counts those on port.
func countTCP(fd int, family uint8, port uint16) (int, error) {
	// struct nlmsghdr + struct inet_diag_req_v2 (56 bytes).
	req := make([]byte, unix.NLMSG_HDRLEN+56)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], 1)
	r := req[unix.NLMSG_HDRLEN:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(r[4:], openTCPStates)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, os.NewSyscallError("sendto sock_diag", err)
	}
	buf := make([]byte, 32<<10)
	count := 0
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return 0, os.NewSyscallError("recvfrom sock_diag", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return 0, fmt.Errorf("sock_diag reply: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return count, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
						return 0, os.NewSyscallError("sock_diag", syscall.Errno(-e))
					}
				}
				return count, nil
			}
			// struct inet_diag_msg: family, state, timer, retrans,
			// then the socket id starting with the source port.
			if len(m.Data) >= 6 && binary.BigEndian.Uint16(m.Data[4:6]) == port {
				count++
			}
		}
	}
}
