//go:build !linux

package nsenter

import "syscall"

// SocketID is not supported on this platform.
func SocketID(c syscall.Conn) (ID, error) { return ID{}, ErrUnsupported }
