//go:build !linux

package nsenter

import "syscall"

// OfSocket is not supported on this platform.
func OfSocket(c syscall.Conn) (*Namespace, error) { return nil, ErrUnsupported }

// OpenTCPConns is not supported on this platform.
func OpenTCPConns(c syscall.Conn, port uint16) (int, error) { return 0, ErrUnsupported }
