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
// deleted and re-created under the same name gets a fresh socket.

type poolKey struct {
	ns      nsenter.ID
	network string
	address string
}

type pooled struct {
	key   poolKey
	spec  string // the namespace as first named
	file  *os.File
	refs  int
	since time.Time
	w     net.PacketConn // see writer
}

// writer returns a packet conn on the shared socket for replies sent
// through handles already closed, or nil once the socket is gone.
func (p *pooled) writer() net.PacketConn {
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
	m map[poolKey]*pooled
	// byNS counts the open sockets per namespace identity and name, so
	// a connection's namespace is named without walking every socket.
	byNS map[nsenter.ID]map[string]int
}{m: map[poolKey]*pooled{}, byNS: map[nsenter.ID]map[string]int{}}

// NamespaceNames returns the names and paths (as configs wrote them) under
// which the pool holds sockets in the namespace id.
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
	defer pool.Unlock()
	if p := pool.m[key]; p != nil {
		p.refs++
		return p, nil
	}
	f, err := open(ns)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", network, address, err)
	}
	p := &pooled{key: key, spec: spec, file: f, refs: 1, since: time.Now()}
	pool.m[key] = p
	if pool.byNS[key.ns] == nil {
		pool.byNS[key.ns] = map[string]int{}
	}
	pool.byNS[key.ns][spec]++
	logger().Debug("socket opened",
		zap.String("netns", spec), zap.Stringer("netns_id", ns.ID),
		zap.String("network", network), zap.String("address", address))
	return p, nil
}

// release drops a reference and closes the socket with the last one.
func (p *pooled) release() {
	pool.Lock()
	defer pool.Unlock()
	p.refs--
	if p.refs > 0 {
		return
	}
	delete(pool.m, p.key)
	if names := pool.byNS[p.key.ns]; names != nil {
		if names[p.spec]--; names[p.spec] <= 0 {
			delete(names, p.spec)
		}
		if len(names) == 0 {
			delete(pool.byNS, p.key.ns)
		}
	}
	if p.w != nil {
		_ = p.w.Close()
	}
	if err := p.file.Close(); err != nil {
		logger().Error("closing socket", zap.String("netns", p.spec),
			zap.String("network", p.key.network), zap.String("address", p.key.address), zap.Error(err))
		return
	}
	logger().Debug("socket closed", zap.String("netns", p.spec),
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
		out = append(out, Socket{
			Namespace: p.spec, NamespaceID: p.key.ns, Network: p.key.network,
			Address: p.key.address, Handles: p.refs, Since: p.since,
		})
	}
	return out
}
