package nsnetwork

import (
	"cmp"
	"slices"
	"time"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/kernel/nsset"
)

// ListenerInfo describes one socket that the netns network holds open in a
// namespace, for the admin API and metrics.
type ListenerInfo struct {
	Socket
	// Sets lists the set addresses (netns/<pattern>/...) that this socket
	// is a member of; empty for a socket only named directly.
	Sets []string
	// OpenConns is the number of connections accepted through a set from
	// this socket and not closed yet. With kernel counts asked for, it is
	// instead the number of TCP connections to this socket's port in its
	// namespace as the kernel counts them (accepted or queued, not in
	// TIME_WAIT), for every TCP socket. -1 when unknown (UDP, a socket
	// outside sets without kernel counts, or a failed count).
	OpenConns int
	// Counters of the sets this socket is a member of (zero otherwise).
	// Accepted counts TCP connections, Errors failed accepts, reads and
	// writes; the packet and byte counters are UDP datagrams through the
	// set (In: from clients, Out: replies).
	Accepted, Errors                         uint64
	PacketsIn, PacketsOut, BytesIn, BytesOut uint64
}

// WaitingInfo describes a namespace that matches a set but has no listener
// yet, and why.
type WaitingInfo struct {
	// Set is the set's address, Namespace the member as it would be named.
	Set, Namespace string
	// Since is when the set first tried; Retry when it tries next.
	Since, Retry time.Time
	// Error is the last failure.
	Error string
}

type memberView struct {
	set string
	m   nsset.MemberInfo
}

type memberKey struct {
	id               nsenter.ID
	network, address string
}

// Listeners lists every socket the netns network holds open in a
// namespace, with set membership and counters, sorted by namespace,
// network and address, and the namespaces that sets are still waiting
// for. The kernel's count of a TCP socket's connections is
// KernelOpenConns, asked only for the sockets a caller shows.
func Listeners() ([]ListenerInfo, []WaitingInfo) {
	byKey := map[memberKey][]memberView{}
	var waiting []WaitingInfo
	sets.Lock()
	all := make([]*nsSet, 0, len(sets.m))
	for _, s := range sets.m {
		all = append(all, s)
	}
	sets.Unlock()
	for _, s := range all {
		name := s.addr.String()
		for _, mi := range s.s.Members() {
			k := memberKey{mi.ID, s.key.network, s.key.address}
			byKey[k] = append(byKey[k], memberView{name, mi})
		}
		for _, w := range s.s.Waiting() {
			waiting = append(waiting, WaitingInfo{Set: name, Namespace: w.Spec,
				Since: w.Since, Retry: w.Retry, Error: w.Error})
		}
	}

	pool.Lock()
	socks := make([]ListenerInfo, 0, len(pool.m))
	for _, p := range pool.m {
		if p.opening != nil {
			continue
		}
		socks = append(socks, ListenerInfo{Socket: Socket{
			Namespace: p.spec, NamespaceID: p.key.ns, Network: p.key.network,
			Address: p.key.address, Handles: p.refs, Since: p.since,
		}, OpenConns: -1})
	}
	pool.Unlock()

	for i := range socks {
		li := &socks[i]
		for _, mv := range byKey[memberKey{li.NamespaceID, li.Network, li.Address}] {
			li.Sets = append(li.Sets, mv.set)
			li.Accepted += mv.m.Accepted
			li.Errors += mv.m.Errors
			li.PacketsIn += mv.m.PacketsIn
			li.PacketsOut += mv.m.PacketsOut
			li.BytesIn += mv.m.BytesIn
			li.BytesOut += mv.m.BytesOut
			if mv.m.OpenConns >= 0 {
				li.OpenConns = max(li.OpenConns, 0) + mv.m.OpenConns
			}
		}
	}
	slices.SortFunc(socks, func(a, b ListenerInfo) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Network, b.Network),
			cmp.Compare(a.Address, b.Address), cmp.Compare(a.NamespaceID.Ino, b.NamespaceID.Ino))
	})
	slices.SortFunc(waiting, func(a, b WaitingInfo) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Set, b.Set))
	})
	return socks, waiting
}

func isTCP(network string) bool {
	return network == "tcp" || network == "tcp4" || network == "tcp6"
}
