package nsnetwork

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/address"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/kernel/nsset"
	"github.com/caddy-netns/caddy-netns/kernel/nswatch"
)

// A set listens on one address in every namespace whose file in a
// directory matches a glob (netns/tenant-*/tcp/:8000), or in every
// namespace of a list (netns/ns1,ns2,ns3/tcp/:8000), and follows them
// live. kernel/nsset does the work on one fan-in socket per set; this is
// its glue: sets shared by key among the configs that name them (a reload
// that keeps a set keeps every member socket and connection), one handle
// per config with that config's allow list, member sockets opened through
// the shared pool (so they appear in Sockets, which is how the nsmatch
// placeholders name them, and are shared with any other address naming
// the same namespace).
//
// To Caddy a set is one listener: a net.Listener for streams, whose Accept
// returns *fanin.Conn from every member (its Tag is the *nsset.Member),
// or a net.PacketConn for datagrams, whose ReadFrom returns a *fanin.Addr
// naming the member a datagram came in on (String "<ip>:<port>%<member>",
// Tag the *nsset.Member), so that WriteTo replies from that member's
// socket. Inner networks (sctp) are served by nsset's Custom kind.

func init() {
	var (
		mu   sync.Mutex
		last = map[string]string{}
	)
	nswatch.OnError = func(dir string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if last[dir] == err.Error() {
			return // retried every second: say it once
		}
		last[dir] = err.Error()
		logger().Warn("watching namespace directory; sets still look every few seconds",
			zap.String("directory", dir), zap.Error(err))
	}
}

type setKey struct {
	dir, glob, list, network, address string
}

// nsSet is one set, shared by every handle (config) that names it.
type nsSet struct {
	key  setKey
	addr Address // the address as written, at its port
	s    *nsset.Set
}

var sets = struct {
	sync.Mutex
	m map[setKey]*nsSet
}{m: map[setKey]*nsSet{}}

// listenSet returns a new handle on the shared set that a names, creating
// the set (and listening in every namespace that already matches) if it
// is not open yet. Closing the handle returns its reference.
func listenSet(ctx context.Context, a Address, portOffset uint) (any, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("namespace sets are only supported on Linux")
	}
	key := setKey{network: a.Network, address: a.HostPort(portOffset)}
	var list []string
	if a.IsList() {
		var err error
		if list, err = a.List(); err != nil {
			return nil, err
		}
		key.list = strings.Join(list, ",")
	} else {
		var err error
		if key.dir, key.glob, err = a.SetPattern(); err != nil {
			return nil, err
		}
	}
	kind := nsset.Stream
	switch a.Network {
	case "udp", "udp4", "udp6":
		kind = nsset.Datagram
	case "tcp", "tcp4", "tcp6":
	default:
		if _, ok := lookupInner(a.Network); !ok {
			return nil, address.CheckNetwork(a.Network)
		}
		kind = nsset.Custom
	}
	open, wrap, err := opener(a, portOffset)
	if err != nil {
		return nil, err
	}
	pol, err := PolicyFor(ctx)
	if err != nil {
		return nil, err
	}
	policy := nsset.Policy{
		Allows: pol.Allows,
		Open: func(spec string) (nsenter.ID, nsset.Socket, error) {
			p, err := acquire(pol, spec, a.Network, key.address, open)
			if err != nil {
				return nsenter.ID{}, nil, explain(err)
			}
			return p.key.ns, poolSocket{p}, nil
		},
	}
	at := a
	at.StartPort, at.EndPort = a.StartPort+portOffset, a.StartPort+portOffset

	for {
		sets.Lock()
		ns := sets.m[key]
		created := ns == nil
		if created {
			ns = &nsSet{key: key, addr: at}
			cfg := nsset.Config{
				Dir: key.dir, Glob: key.glob, Static: list, Kind: kind, Network: a.Network,
				Log: zapSetLog{logger().With(zap.String("netns", a.Namespace),
					zap.String("network", a.Network), zap.String("address", key.address))},
				OnStop: func() {
					sets.Lock()
					if sets.m[key] == ns {
						delete(sets.m, key)
					}
					sets.Unlock()
				},
			}
			if cfg.Addr, err = setLocalAddr(kind, a.Network, key.address); err != nil {
				sets.Unlock()
				return nil, err
			}
			if kind == nsset.Custom {
				cfg.Listen = func(sock nsset.Socket) (net.Listener, error) {
					h, err := wrap(sock.(poolSocket).p)
					if err != nil {
						return nil, err
					}
					ln, ok := h.(net.Listener)
					if !ok {
						closeHandle(h)
						return nil, fmt.Errorf("network %s: sets need a net.Listener, not %T", a.Network, h)
					}
					return ln, nil
				}
			}
			if ns.s, err = nsset.New(cfg); err != nil {
				sets.Unlock()
				return nil, err
			}
			sets.m[key] = ns
		}
		var h any
		if kind == nsset.Datagram {
			var pc *nsset.PacketConn
			if pc, err = ns.s.ListenPacket(policy); err == nil {
				h = &setPacketConn{PacketConn: pc, name: at.String()}
			}
		} else {
			var ln *nsset.Listener
			if ln, err = ns.s.Listen(policy); err == nil {
				h = ln
			}
		}
		if errors.Is(err, nsset.ErrStopped) {
			// Its last handle closed just now (it is closing its
			// members): a new set takes its place; the pool shares the
			// sockets between the two meanwhile.
			if sets.m[key] == ns {
				delete(sets.m, key)
			}
			sets.Unlock()
			continue
		}
		sets.Unlock()
		if err != nil {
			return nil, err
		}
		if created {
			// Listen in the namespaces that are already there before the
			// config finishes loading, then follow them.
			ns.s.Start()
		}
		if ln, ok := h.(net.Listener); ok {
			return wrapSetListener(a.Network, ln), nil
		}
		return h, nil
	}
}

// setLocalAddr is what a set's handles report as their local address.
func setLocalAddr(kind nsset.Kind, network, hp string) (net.Addr, error) {
	switch kind {
	case nsset.Datagram:
		return net.ResolveUDPAddr(network, hp)
	case nsset.Stream:
		if ta, err := net.ResolveTCPAddr(network, hp); err == nil {
			return ta, nil
		}
	}
	return setNetAddr{network, hp}, nil
}

// setNetAddr is the local address of a set of an inner network.
type setNetAddr struct{ network, address string }

func (a setNetAddr) Network() string { return a.network }
func (a setNetAddr) String() string  { return a.address }

// poolSocket is a member socket: a reference on a shared pool socket.
type poolSocket struct{ p *pooled }

func (s poolSocket) File() *os.File { return s.p.file }
func (s poolSocket) Close() error   { s.p.release(); return nil }

// setPacketConn is one config's handle on a datagram set: nsset's, with
// the close behaviour of every packet handle (see CloseLinger).
type setPacketConn struct {
	*nsset.PacketConn
	name   string
	linger linger
}

// ReadFrom returns the next datagram from any member; after Close it
// reports the close as a socket's handle does (see CloseLinger).
func (c *setPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := c.PacketConn.ReadFrom(p)
	if err == nil {
		c.linger.delivered()
	} else if errors.Is(err, net.ErrClosed) {
		c.linger.wait()
	}
	return n, from, err
}

// String describes the handle for logs.
func (c *setPacketConn) String() string { return "netns set " + c.name }

func closeHandle(h any) {
	if c, ok := h.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}

// zapSetLog is the sets' logger.
type zapSetLog struct{ l *zap.Logger }

func (z zapSetLog) Debug(msg, member string, err error) { z.l.Debug(msg, z.fields(member, err)...) }
func (z zapSetLog) Warn(msg, member string, err error)  { z.l.Warn(msg, z.fields(member, err)...) }

func (zapSetLog) fields(member string, err error) []zap.Field {
	var f []zap.Field
	if member != "" {
		f = append(f, zap.String("member", member))
	}
	if err != nil {
		f = append(f, zap.Error(err))
	}
	return f
}
