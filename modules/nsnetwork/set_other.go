//go:build !linux

package nsnetwork

import (
	"syscall"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

func setsSupported() error { return nsenter.ErrUnsupported }

func (m *member) readLoop(syscall.Conn) {}
