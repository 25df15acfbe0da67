package nsnetwork

import (
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// The pool keeps one socket per (namespace, network, address) and hands out
// independent handles on it. Caddy starts a new config before it stops the
// old one, so during a reload both configs hold a handle on the same socket:
// nothing is re-bound, no connection waiting in the accept queue is lost,
// and closing the old config's handle wakes only its own Accept. The socket
// closes when its last handle does.
//
// Sockets are keyed by the namespace's identity, not its name: a namespace
// deleted and re-created under the same name gets a fresh socket. Each
// handle remembers how its config named the namespace, so that a reload
// that names it differently (ns1, then /run/netns/ns1) is named the new
// way once the old config's handles are closed.

type poolKey struct {
	ns      nsenter.ID
	network string
	address string
}

// socket is one shared socket.
type socket struct {
	key   poolKey
	spec  string         // the namespace as the newest open handle named it
	specs map[string]int // open handles per name of the namespace
	file  *os.File
	refs  int
	since time.Time
	w     net.PacketConn // see writer

	// opening is closed when the socket is open or failed to open;
	// nil after that. While it is set, file is nil and refs 0.
	opening chan struct{}
}

// pooled is one handle's reference on a shared socket.
type pooled struct {
	*socket
	name string // the namespace as this handle's config named it
}

// release returns the handle's reference; the socket closes with the
// last one.
func (p *pooled) release() { p.socket.release(p.name) }

// writer returns a packet conn on the shared socket for replies sent
// through handles already closed, or nil once the socket is gone.
func (p *socket) writer() net.PacketConn {
	pool.Lock()
	defer pool.Unlock()
	if p.refs == 0 || p.file == nil {
		return nil
	}
	if p.w == nil {
		w, err := net.FilePacketConn(p.file)
		if err != nil {
			return nil
		}
		p.w = w
	}
	return p.w
}

var pool = struct {
	sync.Mutex
	m map[poolKey]*socket
	// byNS counts the open handles per namespace identity and name, so
	// a connection's namespace is named without walking every socket.
	byNS map[nsenter.ID]map[string]int
}{m: map[poolKey]*socket{}, byNS: map[nsenter.ID]map[string]int{}}

// NamespaceNames returns the names and paths (as configs wrote them) under
// which open handles hold sockets in the namespace id.
func NamespaceNames(id nsenter.ID) []string {
	pool.Lock()
	defer pool.Unlock()
	names := make([]string, 0, len(pool.byNS[id]))
	for name := range pool.byNS[id] {
		names = append(names, name)
	}
	return names
}

// acquire returns the shared socket for network/address inside the
// namespace spec, creating it with open if needed, and takes a reference.
// The namespace is opened only if pol allows it, before the pool is looked
// at: a config cannot reach a socket that another config opened.
//
// open runs without the pool locked: it may resolve a host name or wait
// for the namespace, and that must not hold up sockets in other
// namespaces. Callers asking for the same socket meanwhile wait for it.
func acquire(pol *allow.Policy, spec, network, address string, open func(*nsenter.Namespace) (*os.File, error)) (*pooled, error) {
	ns, err := pol.Open(spec)
	if err != nil {
		return nil, err
	}
	// The socket pins the namespace by itself; the handle is only needed
	// to create it.
	defer ns.Close()

	key := poolKey{ns: ns.ID, network: network, address: address}
	pool.Lock()
	for {
		p := pool.m[key]
		if p == nil {
			break
		}
		if p.opening != nil {
			opening := p.opening
			pool.Unlock()
			<-opening
			pool.Lock()
			continue // opened, or failed and gone: look again
		}
		p.refs++
		p.named(spec, 1)
		pool.Unlock()
		return &pooled{socket: p, name: spec}, nil
	}
	p := &socket{key: key, specs: map[string]int{}, opening: make(chan struct{})}
	pool.m[key] = p
	pool.Unlock()

	f, err := open(ns)

	pool.Lock()
	defer pool.Unlock()
	close(p.opening)
	p.opening = nil
	if err != nil {
		delete(pool.m, key)
		return nil, fmt.Errorf("listen %s %s: %w", network, address, err)
	}
	p.file, p.refs, p.since = f, 1, time.Now()
	p.named(spec, 1)
	logger().Debug("socket opened",
		zap.String("netns", spec), zap.Stringer("netns_id", ns.ID),
		zap.String("network", network), zap.String("address", address))
	return &pooled{socket: p, name: spec}, nil
}

// named counts a handle (delta 1) or its end (-1) under the name spec of
// the namespace, here and in pool.byNS; pool is locked. The socket is
// named as its newest handle named it, or as one still open.
func (p *socket) named(spec string, delta int) {
	if p.specs[spec] += delta; p.specs[spec] <= 0 {
		delete(p.specs, spec)
	}
	names := pool.byNS[p.key.ns]
	if names == nil {
		names = map[string]int{}
		pool.byNS[p.key.ns] = names
	}
	if names[spec] += delta; names[spec] <= 0 {
		delete(names, spec)
	}
	if len(names) == 0 {
		delete(pool.byNS, p.key.ns)
	}
	switch {
	case delta > 0:
		p.spec = spec
	case p.specs[p.spec] == 0:
		p.spec = ""
		for other := range p.specs {
			if p.spec == "" || other < p.spec {
				p.spec = other
			}
		}
	}
}

// release drops a reference taken under the name spec and closes the
// socket with the last one.
func (p *socket) release(spec string) {
	pool.Lock()
	defer pool.Unlock()
	p.refs--
	p.named(spec, -1)
	if p.refs > 0 {
		return
	}
	delete(pool.m, p.key)
	if p.w != nil {
		_ = p.w.Close()
	}
	if err := p.file.Close(); err != nil {
		logger().Error("closing socket", zap.String("netns", spec),
			zap.String("network", p.key.network), zap.String("address", p.key.address), zap.Error(err))
		return
	}
	logger().Debug("socket closed", zap.String("netns", spec),
		zap.String("network", p.key.network), zap.String("address", p.key.address))
}

// Socket describes one shared socket in the pool.
type Socket struct {
	Namespace   string
	NamespaceID nsenter.ID
	Network     string
	Address     string
	Handles     int
	Since       time.Time
}

// Sockets lists the sockets currently open in namespaces.
func Sockets() []Socket {
	pool.Lock()
	defer pool.Unlock()
	out := make([]Socket, 0, len(pool.m))
	for _, p := range pool.m {
		if p.opening != nil {
			continue
		}
		out = append(out, Socket{
			Namespace: p.spec, NamespaceID: p.key.ns, Network: p.key.network,
			Address: p.key.address, Handles: p.refs, Since: p.since,
		})
	}
	return out
}
