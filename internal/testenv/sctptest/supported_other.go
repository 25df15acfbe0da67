//go:build !linux

package sctptest

import (
	"errors"
	"testing"
)

// Supported reports that SCTP is not supported on this platform.
func Supported() error { return errors.New("sctp: not supported on this platform") }

// Netns is only implemented on Linux.
type Netns struct{ Name, Path string }

// NewNetns skips the test: network namespaces exist only on Linux.
func NewNetns(t testing.TB, name string) *Netns {
	t.Helper()
	t.Skip("network namespaces are not supported on this platform")
	return nil
}
