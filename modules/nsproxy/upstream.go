package nsproxy

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/caddy-l4/modules/l4proxy"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// Upstream is one backend.
type Upstream struct {
	// Dial is the address to connect to. Either the listen grammar
	// netns/<namespace>/<network>/<ip>:<port> to connect from inside a
	// network namespace (network tcp, tcp4, tcp6, udp, udp4 or udp6; the
	// host must be an IP address, since names would be resolved outside
	// the namespace), or [<network>/]<host>:<port> to connect from
	// Caddy's own namespace (network tcp or udp and their 4/6 variants;
	// default tcp). Placeholders such as {l4.netns.name} are replaced per
	// connection.
	Dial string `json:"dial,omitempty"`

	// MaxConnections is how many connections this upstream may have at
	// once before it is skipped; 0 means no limit. Default: 0, or the
	// passive health checks' unhealthy_connection_count.
	MaxConnections int `json:"max_connections,omitempty"`

	// Weight is the upstream's relative weight for weighted selection
	// policies (weighted_round_robin). A value <= 0 counts as 1.
	// Default: 1.
	Weight int `json:"weight,omitempty"`

	target  *target // nil when Dial has placeholders
	state   *state
	shadow  *l4proxy.Upstream // stands for this upstream in caddy-l4 selection policies
	passive *PassiveHealthChecks
}

func (u *Upstream) String() string { return u.Dial }

// target is a parsed dial address.
type target struct {
	ns       string // empty: Caddy's own namespace
	network  string
	hostport string
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
// only if pol, the config's allow list, allows it.
func dial(ctx context.Context, pol *allow.Policy, t *target) (net.Conn, error) {
	if t.ns == "" {
		var d net.Dialer
		return d.DialContext(ctx, t.network, t.hostport)
	}
	ns, err := pol.Open(t.ns)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return nsenter.Dial(ctx, ns, t.network, t.hostport)
}

// state is an upstream's health and load, kept across config reloads (by
// dial address) like caddy-l4's peers.
type state struct {
	conns     atomic.Int32
	fails     atomic.Int32
	unhealthy atomic.Bool

	mu             sync.Mutex
	okRun, failRun int
}

func (s *state) Destruct() error { return nil }

var states = caddy.NewUsagePool()

// available tells whether u may be selected now.
func (u *Upstream) available() bool {
	if u.state.unhealthy.Load() {
		return false
	}
	if p := u.passive; p != nil && p.MaxFails > 0 && int(u.state.fails.Load()) >= p.MaxFails {
		return false
	}
	return u.MaxConnections <= 0 || int(u.state.conns.Load()) < u.MaxConnections
}

// record folds one active check into the upstream's runs and reports
// whether its health changed.
func (s *state) record(ok bool, rise, fall int) (changed bool) {
	rise, fall = max(rise, 1), max(fall, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.failRun = 0
		s.okRun = min(s.okRun+1, rise)
		if s.okRun >= rise {
			return s.unhealthy.CompareAndSwap(true, false)
		}
		return false
	}
	s.okRun = 0
	s.failRun = min(s.failRun+1, fall)
	if s.failRun >= fall {
		return s.unhealthy.CompareAndSwap(false, true)
	}
	return false
}
