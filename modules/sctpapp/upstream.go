package sctpapp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

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
	// sctp/[::1]:38412, netns/[ns1/sctp/::1]:38412. A multi-homed
	// upstream is one address with its IP addresses joined by commas,
	// set up through all of them at once (sctp_connectx):
	// netns/ns1/sctp/10.0.0.2,10.0.1.2:38412,
	// netns/[ns1/sctp6/fd00::2,fd00:1::2]:38412. Placeholders of the
	// association are replaced in each address before it is dialed:
	// {sctp.netns.name}, {sctp.netns.inode}, {sctp.netns.id} (the
	// arrival namespace), {sctp.remote_ip}, {sctp.remote_port},
	// {sctp.local_port} and {sctp.ppid} (of the first message, which is
	// held and then forwarded unchanged); e.g.
	// netns/{sctp.netns.name}/sctp/10.0.0.2:38412 sends each namespace of
	// a set to its own core. The config's allow list is checked when the
	// resulting namespace is opened, which the list must then name
	// (Caddy's own namespace is not excepted for values from
	// placeholders). Required: at least one.
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

// parseTarget parses one dial address, with several hosts for a
// multi-homed upstream: sctp/10.0.0.1,10.0.1.1:38412,
// netns/ns1/sctp/10.0.0.1,10.0.1.1:38412,
// netns/[ns1/sctp6/fd00::1,fd00::2]:38412.
func parseTarget(s string) (target, error) {
	i := strings.IndexByte(s, ',')
	if i < 0 {
		return parseOneTarget(s)
	}
	start := max(strings.LastIndexByte(s[:i], '/'), strings.LastIndexByte(s[:i], '[')) + 1
	end := strings.LastIndexByte(s, ':')
	if j := strings.IndexByte(s[i:], ']'); j >= 0 {
		end = i + j
	}
	if end < i {
		return target{addr: s}, fmt.Errorf("dial address %q: want <host>,<host>...:<port> for a multi-homed upstream", s)
	}
	hosts := strings.Split(s[start:end], ",")
	t, err := parseOneTarget(s[:start] + hosts[0] + s[end:])
	if err != nil {
		return target{addr: s}, err
	}
	_, port, err := net.SplitHostPort(t.hostport)
	if err != nil {
		return target{addr: s}, fmt.Errorf("dial address %q: %w", s, err)
	}
	var hp []string
	for _, h := range hosts {
		ip, err := netip.ParseAddr(h)
		if err != nil {
			return target{addr: s}, fmt.Errorf("dial address %q: host %q of a multi-homed upstream must be an IP address", s, h)
		}
		if ip.Is6() {
			h = "[" + h + "]"
		}
		hp = append(hp, h)
	}
	t.hostport = strings.Join(hp, "/") + ":" + port
	t.addr = s
	return t, nil
}

// parseOneTarget parses a dial address with one host.
func parseOneTarget(s string) (target, error) {
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
