package nsproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/mholt/caddy-l4/modules/l4proxy"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// Upstream is one backend.
type Upstream struct {
	// Dial is the address to connect to, a string or, as caddy-l4
	// writes it, an array. With several addresses, as caddy-l4's proxy,
	// each is connected to for every connection, the client's bytes are
	// copied to all of them and what each sends back goes to the client;
	// the upstream is available only while all are (health, limits), and
	// a failed connect to any of them fails the upstream. Each address is
	// either the listen grammar
	// netns/<namespace>/<network>/<ip>:<port> to connect from inside a
	// network namespace (network tcp, tcp4, tcp6, udp, udp4 or udp6; the
	// host must be an IP address, since names would be resolved outside
	// the namespace), or [<network>/]<host>:<port> to connect from
	// Caddy's own namespace (network tcp or udp and their 4/6 variants;
	// default tcp). Placeholders such as {l4.netns.name} are replaced per
	// connection. With {l4.netns.name} as the namespace, the connection
	// is dialed into the very namespace it arrived in: if that name was
	// given to another namespace meanwhile (deleted and re-created), the
	// connect fails rather than reach the new one. A namespace that comes
	// from placeholders (values a client may control, such as
	// {l4.proxy_protocol.netns}) must be named by the allow list: Caddy's
	// own namespace is not excepted there.
	Dial string `json:"dial,omitempty"`

	// MaxConnections is how many connections this upstream may have at
	// once before it is skipped, counted per target (with placeholders,
	// per namespace and address they resolve to); 0 means no limit.
	// Default: 0, or the passive health checks'
	// unhealthy_connection_count.
	MaxConnections int `json:"max_connections,omitempty"`

	// Weight is the upstream's relative weight for weighted selection
	// policies (weighted_round_robin). A value <= 0 counts as 1.
	// Default: 1.
	Weight int `json:"weight,omitempty"`

	upstreamCompat // caddy-l4's other upstream options (compat.go)

	target   *target           // nil when Dial has placeholders
	state    *state            // the target's state; nil when Dial has placeholders
	released bool              // state was released (Cleanup)
	arrival  bool              // Dial has {l4.netns.name}: it may name the arrival namespace
	shadow   *l4proxy.Upstream // stands for this upstream in caddy-l4 selection policies
	passive  *PassiveHealthChecks

	// dialMore are the addresses after the first of a dial array, and
	// more their provisioned upstreams: each is dialed too and gets a copy
	// of the client's bytes, as caddy-l4 does (mirror.go).
	dialMore []string
	more     []*Upstream
}

func (u *Upstream) String() string { return u.Dial }

// target is a parsed dial address.
type target struct {
	ns       string // empty: Caddy's own namespace
	network  string
	hostport string
	// id, when set, is the namespace the connection arrived in, which ns
	// named through {l4.netns.name}: the dial goes there or nowhere.
	id nsenter.ID
}

func (t target) String() string {
	if t.ns == "" {
		return t.network + "/" + t.hostport
	}
	host, port, _ := net.SplitHostPort(t.hostport)
	return nsnetwork.Address{Namespace: t.ns, Network: t.network, Host: host,
		StartPort: atoui(port), EndPort: atoui(port)}.String()
}

func atoui(s string) uint {
	n, _ := strconv.ParseUint(s, 10, 16)
	return uint(n)
}

// parseTarget parses a dial address without placeholders.
func parseTarget(s string) (*target, error) {
	t, err := nsnetwork.ParseTarget(s, "upstream", "tcp", func(network string) error {
		if !isTCPOrUDP(network) {
			return fmt.Errorf("network %q cannot be dialed: want tcp, tcp4, tcp6, udp, udp4 or udp6, or a netns/ address", network)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &target{ns: t.Namespace, network: t.Network, hostport: t.HostPort()}, nil
}

func isTCPOrUDP(network string) bool {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		return true
	}
	return false
}

func isUDP(network string) bool { return strings.HasPrefix(network, "udp") }

// dial connects to t. Inside a namespace only the socket is created there
// (nsenter.Dial); the connect is waited for in the netpoller, so no thread
// is held while it is in progress nor afterwards. The namespace is opened
// only if pol, the config's allow list, allows it. When t.id is set, the
// namespace ns names now must be that one. With local addresses (of the
// namespace dialed from) the socket is bound to each in turn until a
// connect succeeds, as caddy-l4 does; without, the kernel picks.
func dial(ctx context.Context, pol *allow.Policy, t *target, locals ...net.Addr) (net.Conn, error) {
	var ns *nsenter.Namespace
	if t.ns != "" {
		var err error
		if ns, err = pol.Open(t.ns); err != nil {
			return nil, err
		}
		defer ns.Close()
		if t.id != (nsenter.ID{}) && ns.ID != t.id {
			return nil, fmt.Errorf("namespace %q is now %s, not %s where the connection arrived: %w",
				t.ns, ns.ID, t.id, errNamespaceReplaced)
		}
	}
	if len(locals) == 0 {
		return dialFrom(ctx, ns, t, nil)
	}
	var err error
	for _, la := range locals {
		var c net.Conn
		if c, err = dialFrom(ctx, ns, t, la); err == nil {
			return c, nil
		}
	}
	return nil, err
}

// dialFrom connects to t from a socket made in ns (nil: Caddy's own
// namespace), bound to local if set.
func dialFrom(ctx context.Context, ns *nsenter.Namespace, t *target, local net.Addr) (net.Conn, error) {
	if ns == nil {
		d := net.Dialer{KeepAlive: -1, LocalAddr: local} // as nsenter.Dial: no keep-alive
		return d.DialContext(ctx, t.network, t.hostport)
	}
	return nsenter.Dialer{LocalAddr: local}.Dial(ctx, ns, t.network, t.hostport)
}

// errNamespaceReplaced is wrapped by dial errors for a connection whose
// arrival namespace's name was given to another namespace meanwhile.
var errNamespaceReplaced = errors.New("the name was given to another namespace; not dialing into it")

// available tells whether u may be selected now, for the target whose
// state is st.
func (u *Upstream) available(st *state) bool {
	if st.Unhealthy.Load() {
		return false
	}
	if p := u.passive; p != nil && p.MaxFails > 0 && int(st.Fails.Load()) >= p.MaxFails {
		return false
	}
	return u.MaxConnections <= 0 || int(st.Sessions.Load()) < u.MaxConnections
}
