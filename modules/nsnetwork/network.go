package nsnetwork

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/caddy-netns/caddy-netns/address"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

func init() {
	caddy.RegisterNetwork(Network, ListenNetwork)
	nsenter.OnThreadDiscarded = func(err error) {
		logger().Error("thread discarded", zap.Error(err))
	}
}

func logger() *zap.Logger { return caddy.Log().Named("netns") }

// ListenNetwork is the caddy.ListenerFunc for the netns network (and,
// through modules/nshttp, for the HTTP/3 socket of a netns listener). For
// netns/ns1/tcp/:8000-8010 Caddy calls it with host "ns1/tcp/" and port
// range "8000-8010", once per port offset. Streams return a net.Listener,
// datagrams a net.PacketConn, inner networks whatever they wrap.
//
// Every handle is also closed when ctx ends (the config that asked for it
// is unloaded), so an app that fails half-way through starting cannot leak
// sockets.
//
// A stream listener's connections have the TCP keep-alive that lc asks
// for, and none when it asks for nothing (caddy-l4 passes an empty lc;
// Caddy's HTTP servers pass their keep_alive settings).
func ListenNetwork(ctx context.Context, _, host, portRange string, portOffset uint, lc net.ListenConfig) (any, error) {
	h, err := Open(ctx, host, portRange, portOffset)
	if err != nil {
		return nil, err
	}
	if l, ok := h.(*tcpListener); ok {
		l.setKeepAlive(keepAliveOf(lc))
	}
	CloseWhenDone(ctx, h, nil)
	return h, nil
}

// Open returns a handle on the socket or set that host and portRange name,
// at portOffset. Nothing closes it but its own Close.
func Open(ctx context.Context, host, portRange string, portOffset uint) (any, error) {
	a, err := address.ParseHostPort(host, portRange)
	if err != nil {
		return nil, err
	}
	if a.StartPort+portOffset > a.EndPort {
		return nil, fmt.Errorf("netns address %q: port offset %d outside the range", a, portOffset)
	}
	open := listenAddress
	if a.IsSet() || a.IsList() {
		open = listenSet // a namespace pattern or list (set.go)
	}
	h, err := open(ctx, a, portOffset)
	if err != nil {
		return nil, fmt.Errorf("netns address %q: %w", a, err)
	}
	return h, nil
}

// CloseWhenDone closes h when ctx ends, unless inUse (if not nil) then
// reports that something that outlives ctx still holds h.
func CloseWhenDone(ctx context.Context, h any, inUse func() bool) {
	c, ok := h.(interface{ Close() error })
	if !ok {
		return
	}
	context.AfterFunc(ctx, func() {
		if inUse == nil || !inUse() {
			_ = c.Close()
		}
	})
}

// Listen opens (or shares) the socket for the port at portOffset of a and
// returns a new handle on it. The handle is closed when ctx ends.
func Listen(ctx context.Context, a Address, portOffset uint) (any, error) {
	h, err := listenAddress(ctx, a, portOffset)
	if err != nil {
		return nil, err
	}
	CloseWhenDone(ctx, h, nil)
	return h, nil
}

// listenAddress is Listen without the close when ctx ends.
func listenAddress(ctx context.Context, a Address, portOffset uint) (any, error) {
	open, wrap, err := opener(a, portOffset)
	if err != nil {
		return nil, err
	}
	pol, err := PolicyFor(ctx)
	if err != nil {
		return nil, err
	}
	p, err := acquire(pol, a.Namespace, a.Network, a.HostPort(portOffset), open)
	if err != nil {
		return nil, explain(err)
	}
	h, err := wrap(p)
	if err != nil {
		p.release()
		return nil, err
	}
	return h, nil
}

// opener returns how to create the socket of a (at portOffset) inside a
// namespace, and how to make a handle of a shared socket.
func opener(a Address, portOffset uint) (open func(*nsenter.Namespace) (*os.File, error), wrap func(*pooled) (any, error), err error) {
	switch a.Network {
	case "tcp", "tcp4", "tcp6":
		open = func(ns *nsenter.Namespace) (*os.File, error) {
			return nsenter.ListenFile(ns, a.Network, a.HostPort(portOffset))
		}
		wrap = wrapStream
	case "udp", "udp4", "udp6":
		open = func(ns *nsenter.Namespace) (*os.File, error) {
			return nsenter.ListenPacketFile(ns, a.Network, a.HostPort(portOffset))
		}
		wrap = wrapPacket
	default:
		inner, ok := lookupInner(a.Network)
		if !ok {
			return nil, nil, address.CheckNetwork(a.Network)
		}
		open = func(ns *nsenter.Namespace) (*os.File, error) {
			return inner.Socket(ns, a.Network, a.HostPort(portOffset))
		}
		wrap = func(p *pooled) (any, error) { return inner.Wrap(p.file, p.release) }
	}
	return open, wrap, nil
}

// explain adds what an operator needs to know to the errors they will meet.
func explain(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w (create it with `ip netns add`, or give an absolute path to a namespace file)", err)
	case errors.Is(err, nsenter.ErrPermission):
		return fmt.Errorf("%w (run as root or grant the capability, e.g. AmbientCapabilities=CAP_SYS_ADMIN)", err)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w (ports below the namespace's net.ipv4.ip_unprivileged_port_start, 1024 by default, need CAP_NET_BIND_SERVICE)", err)
	}
	return err
}
