//go:build linux && !386

package sctpapp

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// registerInner makes netns/<namespace>/sctp/<host>:<port> (and sctp4,
// sctp6) listen addresses through nsnetwork's socket pool.
func registerInner() {
	for _, network := range []string{"sctp", "sctp4", "sctp6"} {
		nsnetwork.RegisterInnerNetwork(network, nsnetwork.InnerNetwork{
			Socket: listenSocket,
			Wrap:   wrapListener,
		})
	}
	registerSets()
}

// listenSocket creates the shared listening socket inside ns (nil: the
// calling thread's namespace, which is Caddy's).
func listenSocket(ns *nsenter.Namespace, network, address string) (*os.File, error) {
	var socket sctpnet.SocketFunc
	if ns != nil {
		socket = ns.Socket
	}
	ln, err := sctpnet.Config{ReadBuffer: ReadBuffer}.Listen(context.Background(), socket, network, address)
	if err != nil {
		return nil, explain(err)
	}
	defer ln.Close()
	return ln.File()
}

// listener is one user's handle on a shared listening socket.
type listener struct {
	*sctpnet.Listener
	once    sync.Once
	release func()
}

func wrapListener(f *os.File, release func()) (any, error) {
	ln, err := sctpnet.Config{}.FileListener(f)
	if err != nil {
		return nil, err
	}
	return &listener{Listener: ln, release: release}, nil
}

// Close closes this handle and returns its reference to the pool; later
// calls return net.ErrClosed.
func (l *listener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() {
		err = l.Listener.Close()
		l.release()
	})
	return err
}

// listenOwn is the caddy.ListenerFunc for sctp/<host>:<port>: the socket
// comes from the same pool, in Caddy's own namespace.
func listenOwn(ctx context.Context, network, host, portRange string, portOffset uint, _ net.ListenConfig) (any, error) {
	inner := OwnNamespace + "/" + network + "/" + host
	spec := nsnetwork.Network + "/" + inner + ":" + portRange
	if strings.ContainsRune(host, ':') {
		spec = nsnetwork.Network + "/[" + inner + "]:" + portRange
	}
	full := network + "/" + net.JoinHostPort(host, portRange)
	a, err := nsnetwork.ParseAddress(spec)
	if err != nil {
		return nil, fmt.Errorf("%s address %q: %w", network, full, err)
	}
	if a.StartPort+portOffset > a.EndPort {
		return nil, fmt.Errorf("%s address %q: port offset %d outside the range", network, full, portOffset)
	}
	ln, err := nsnetwork.Listen(ctx, a, portOffset)
	if err != nil {
		return nil, fmt.Errorf("%s address %q: %w", network, full, err)
	}
	return ln, nil
}

// dial connects to t from inside its namespace.
func dial(ctx context.Context, pol *allow.Policy, t target, cfg sctpnet.Config) (*sctpnet.Conn, error) {
	var socket sctpnet.SocketFunc
	if t.ns != "" {
		ns, err := pol.Open(t.ns) // only if the config's allow list allows it
		if err != nil {
			return nil, err
		}
		// The socket pins the namespace; the handle is only needed to
		// create it.
		defer ns.Close()
		socket = ns.Socket
	}
	c, err := cfg.Dial(ctx, socket, t.network, t.hostport)
	return c, explain(err)
}
