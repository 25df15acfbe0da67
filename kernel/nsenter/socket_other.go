//go:build !linux

package nsenter

import (
	"os"
	"syscall"
)

// SocketFile is not supported on this platform.
func SocketFile(n *Namespace, domain, typ, proto int) (*os.File, error) {
	return nil, ErrUnsupported
}

// InterfaceIndex is not supported on this platform.
func InterfaceIndex(c syscall.Conn, name string) (int, error) { return 0, ErrUnsupported }
