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
	// sctp/[::1]:38412, netns/[ns1/sctp/::1]:38412. Placeholders of the
	// association are replaced in each address before it is dialed:
	// {sctp.netns.name}, {sctp.netns.inode}, {sctp.netns.id} (the
	// arrival namespace), {sctp.remote_ip}, {sctp.remote_port},
	// {sctp.local_port} and {sctp.ppid} (of the first message, which is
	// held and then forwarded unchanged); e.g.
	// netns/{sctp.netns.name}/sctp/10.0.0.2:38412 sends each namespace of
	// a set to its own core. The config's allow list is checked when the
	// resulting namespace is opened. Required: at least one.
	Dial []string `json:"dial,omitempty"`

	// MaxAssociations is how many associations each target of this
	// upstream (each dial address, and with placeholders each namespace
	// and address it resolves to) may have open at once; a target at the
	// limit is skipped for the next one. Default: 0 (no limit).
	MaxAssociations int `json:"max_associations,omitempty"`

	targets  []target
	states   []*state // of targets without placeholders; nil for the others
	released bool     // states were released (Cleanup)
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
