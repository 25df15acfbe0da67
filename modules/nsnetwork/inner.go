package nsnetwork

import (
	"os"
	"sync"

	"github.com/caddy-netns/caddy-netns/address"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// InnerNetwork lets another package serve a network inside namespaces
// through the netns address grammar and the shared socket pool, as the
// sctp app (modules/sctpapp) does for sctp.
type InnerNetwork struct {
	// Socket creates the bound (and, for streams, listening) socket inside
	// ns, or in the process's namespace when ns is nil.
	Socket func(ns *nsenter.Namespace, network, address string) (*os.File, error)
	// Wrap returns a new handle on the shared socket f for one user; it
	// must not take ownership of f (duplicate it). Closing the handle must
	// call release exactly once.
	Wrap func(f *os.File, release func()) (any, error)
}

var (
	innerMu  sync.RWMutex
	innerNet = map[string]InnerNetwork{}
)

// RegisterInnerNetwork adds an inner network such as sctp, sctp4, sctp6.
// Call it from init; it panics on a duplicate or a built-in name.
func RegisterInnerNetwork(network string, n InnerNetwork) {
	innerMu.Lock()
	defer innerMu.Unlock()
	if _, dup := innerNet[network]; dup || isBuiltin(network) {
		panic("netns: inner network " + network + " already registered")
	}
	innerNet[network] = n
	address.RegisterNetwork(network)
}

func lookupInner(network string) (InnerNetwork, bool) {
	innerMu.RLock()
	defer innerMu.RUnlock()
	n, ok := innerNet[network]
	return n, ok
}

func isBuiltin(network string) bool {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		return true
	}
	return false
}
