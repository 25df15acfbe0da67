//go:build !linux

package netnslistener

import (
	"syscall"

	"github.com/caddy-netns/caddy-netns/netnslistener/nsenter"
)

func setsSupported() error { return nsenter.ErrUnsupported }

func statID(string) (nsenter.ID, error) { return nsenter.ID{}, nsenter.ErrUnsupported }

func (m *member) readLoop(syscall.Conn) {}
