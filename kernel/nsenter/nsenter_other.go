//go:build !linux

package nsenter

import (
	"context"
	"errors"
	"net"
	"os"
)

// ErrUnsupported is returned on platforms without network namespaces.
var ErrUnsupported = errors.New("network namespaces are only supported on Linux")

// Namespace is an open handle on a network namespace.
type Namespace struct {
	Spec, Path string
	ID         ID
}

// Open is not supported on this platform.
func Open(spec string) (*Namespace, error) { return nil, ErrUnsupported }

// Close does nothing on this platform.
func (n *Namespace) Close() error { return nil }

// ListenFile is not supported on this platform.
func ListenFile(n *Namespace, network, address string) (*os.File, error) {
	return nil, ErrUnsupported
}

// ListenPacketFile is not supported on this platform.
func ListenPacketFile(n *Namespace, network, address string) (*os.File, error) {
	return nil, ErrUnsupported
}

// Listen is not supported on this platform.
func Listen(n *Namespace, network, address string) (net.Listener, error) {
	return nil, ErrUnsupported
}

// ListenPacket is not supported on this platform.
func ListenPacket(n *Namespace, network, address string) (net.PacketConn, error) {
	return nil, ErrUnsupported
}

// Dial is not supported on this platform.
func Dial(ctx context.Context, n *Namespace, network, address string) (net.Conn, error) {
	return nil, ErrUnsupported
}

// Dialer connects from sockets created inside a namespace.
type Dialer struct {
	// KeepAlive is the TCP keep-alive of the connection. Default: off.
	KeepAlive net.KeepAliveConfig

	// LocalAddr is the address to bind to before connecting. Default:
	// none.
	LocalAddr net.Addr
}

// Dial is not supported on this platform.
func (Dialer) Dial(ctx context.Context, n *Namespace, network, address string) (net.Conn, error) {
	return nil, ErrUnsupported
}

// NewSocket is not supported on this platform.
func NewSocket(n *Namespace, domain, typ, proto int) (int, error) { return -1, ErrUnsupported }

// OpenChecked is not supported on this platform.
func OpenChecked(spec string, allow func(paths []string, id ID) error) (*Namespace, error) {
	return nil, ErrUnsupported
}

// Current is not supported on this platform.
func Current() (ID, error) { return ID{}, ErrUnsupported }

// StatID is not supported on this platform.
func StatID(path string) (ID, error) { return ID{}, ErrUnsupported }

// OpenShared is not supported on this platform.
func OpenShared(spec string, allow func(paths []string, id ID) error) (*Namespace, error) {
	return nil, ErrUnsupported
}

// Busy does nothing on this platform.
func Busy() {}

// StatBeneath is not supported on this platform.
func StatBeneath(dir, rel string) (ID, error) { return ID{}, ErrUnsupported }
