package l4sctp

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-netns/caddy-netns/netnslistener"
)

// Upstream is one backend of the proxy handler.
type Upstream struct {
	// Dial lists the addresses of this upstream, tried in order until one
	// accepts the association: sctp/<host>:<port> (or sctp4, sctp6) to
	// connect from Caddy's own network namespace, or
	// netns/<namespace>/sctp/<ip>:<port> to connect from inside a network
	// namespace (the host must then be an IP address, since a name would
	// be resolved outside the namespace). IPv6 hosts go in brackets:
	// sctp/[::1]:38412, netns/[ns1/sctp/::1]:38412. Placeholders of the
	// association are replaced in each address before it is dialed:
	// {sctp.netns.name}, {sctp.netns.inode}, {sctp.netns.id} (the
	// arrival namespace), {sctp.remote_ip}, {sctp.remote_port},
	// {sctp.local_port} and {sctp.ppid} (of the first message, which is
	// held and then forwarded unchanged); e.g.
	// netns/{sctp.netns.name}/sctp/10.0.0.2:38412 sends each namespace of
	// a set to its own core. The config's allow list is checked when the
	// resulting namespace is opened.
	Dial []string `json:"dial,omitempty"`

	targets []target
}

// target is a parsed dial address.
type target struct {
	ns       string // empty: Caddy's own namespace
	network  string // sctp, sctp4 or sctp6
	hostport string // as sctpnet.ResolveAddr takes it
	addr     string // as configured
	template string // set when addr has placeholders: parsed per association
}

func (t target) String() string { return t.addr }

// parseTarget parses one dial address.
func parseTarget(s string) (target, error) {
	t := target{addr: s}
	var host string
	var start, end uint
	if strings.HasPrefix(s, netnslistener.Network+"/") {
		a, err := netnslistener.ParseAddress(s)
		if err != nil {
			return t, err
		}
		if ip, err := netip.ParseAddr(strings.SplitN(a.Host, "%", 2)[0]); err != nil || !ip.IsValid() {
			return t, fmt.Errorf("dial address %q: host %q inside a namespace must be an IP address", s, a.Host)
		}
		t.ns, t.network, host, start, end = a.Namespace, a.Network, a.Host, a.StartPort, a.EndPort
	} else {
		na, err := caddy.ParseNetworkAddress(s)
		if err != nil {
			return t, fmt.Errorf("dial address %q: %w", s, err)
		}
		if !strings.Contains(s, "/") {
			return t, fmt.Errorf("dial address %q: missing network: want sctp/<host>:<port> or netns/<namespace>/sctp/<ip>:<port>", s)
		}
		t.network, host, start, end = strings.ToLower(na.Network), na.Host, na.StartPort, na.EndPort
	}
	switch {
	case !isSCTP(t.network):
		return t, fmt.Errorf("dial address %q: network %q is not SCTP: want sctp, sctp4 or sctp6", s, t.network)
	case host == "":
		return t, fmt.Errorf("dial address %q: missing host", s)
	case start != end:
		return t, fmt.Errorf("dial address %q: port ranges cannot be dialed", s)
	case start == 0:
		return t, fmt.Errorf("dial address %q: missing port", s)
	}
	t.hostport = net.JoinHostPort(host, strconv.FormatUint(uint64(start), 10))
	return t, nil
}
