package sctpapp

import (
	"errors"
	"fmt"

	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// Upstream is one backend of the proxy handler.
type Upstream struct {
	// Dial lists the addresses of this upstream, tried in order until one
	// accepts the association: sctp/<host>:<port> (or sctp4, sctp6) to
	// connect from Caddy's own network namespace, or
	// netns/<namespace>/sctp/<ip>:<port> to connect from inside a network
	// namespace (the host must then be an IP address, since a name would
	// be resolved outside the namespace). IPv6 hosts go in brackets:
	// sctp/[::1]:38412, netns/[ns1/sctp/::1]:38412. Required: at least one.
	Dial []string `json:"dial,omitempty"`

	targets []target
}

// target is a parsed dial address.
type target struct {
	ns       string // empty: Caddy's own namespace
	network  string // sctp, sctp4 or sctp6
	hostport string // as sctpnet.ResolveAddr takes it
	addr     string // as configured
}

func (t target) String() string { return t.addr }

// parseTarget parses one dial address.
func parseTarget(s string) (target, error) {
	t, err := nsnetwork.ParseTarget(s, "dial address", "", func(network string) error {
		switch {
		case network == "":
			return errors.New("missing network: want sctp/<host>:<port> or netns/<namespace>/sctp/<ip>:<port>")
		case !isSCTP(network):
			return fmt.Errorf("network %q is not SCTP: want sctp, sctp4 or sctp6", network)
		}
		return nil
	})
	if err != nil {
		return target{addr: s}, err
	}
	return target{ns: t.Namespace, network: t.Network, hostport: t.HostPort(), addr: s}, nil
}
