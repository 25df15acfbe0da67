//go:build linux

package nsenter

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// SocketID returns the namespace that the socket c belongs to, asked of the
// kernel (ioctl SIOCGSKNS), whatever namespace the caller is in. This is
// where a socket was created, so for an accepted connection it is the
// namespace it arrived in. The kernel asks for CAP_NET_ADMIN in the
// socket's namespace.
func SocketID(c syscall.Conn) (ID, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return ID{}, err
	}
	var (
		id   ID
		ierr error
	)
	if err := rc.Control(func(fd uintptr) { id, ierr = socketID(int(fd)) }); err != nil {
		return ID{}, err
	}
	return id, ierr
}

func socketID(fd int) (ID, error) {
	nsfd, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
	if err != nil {
		return ID{}, fmt.Errorf("socket namespace: %w", os.NewSyscallError("ioctl SIOCGSKNS", err))
	}
	defer unix.Close(nsfd)
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		return ID{}, fmt.Errorf("socket namespace: %w", os.NewSyscallError("fstat", err))
	}
	return ID{Dev: uint64(st.Dev), Ino: st.Ino}, nil
}
