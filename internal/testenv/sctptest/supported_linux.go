package sctptest

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Supported returns nil when the running kernel can create an SCTP socket,
// and the reason otherwise (typically EPROTONOSUPPORT).
func Supported() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
	if err != nil {
		return fmt.Errorf("socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP): %w", err)
	}
	unix.Close(fd)
	return nil
}
