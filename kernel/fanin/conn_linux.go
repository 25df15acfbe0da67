//go:build linux

package fanin

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// How an accepted descriptor becomes a *net.TCPConn. The standard library
// has one way in, net.FileConn, which duplicates the descriptor and asks
// the kernel for its type and addresses. BenchmarkNewTCPConn measures the
// two ways of feeding it; the blocking one is cheaper (see the benchmark):
// os.NewFile on a blocking descriptor does not register it with the
// netpoller, so the short-lived *os.File costs no epoll_ctl pair.
const acceptFlags = unix.SOCK_CLOEXEC // descriptors are accepted blocking

func newTCPConn(fd int) (*net.TCPConn, error) { return newTCPConnFromBlocking(fd) }

// newTCPConnFromBlocking makes a *net.TCPConn of a blocking descriptor,
// which it consumes. net.FileConn makes the duplicate non-blocking, which
// the shared file description then is.
func newTCPConnFromBlocking(fd int) (*net.TCPConn, error) {
	f := os.NewFile(uintptr(fd), "")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("accepted a %T, not a TCP connection", c)
	}
	return tc, nil
}
