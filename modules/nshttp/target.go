package nshttp

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// target is a resolved upstream: where to dial, and the key its
// connections are pooled under.
type target struct {
	ns      string     // the namespace as written; empty: Caddy's own
	id      nsenter.ID // the namespace's identity when ns is set
	network string     // tcp, tcp4, tcp6; or unix in Caddy's own namespace
	host    string     // IP address (no brackets), or unix socket path
	port    string
	dial    string // the dial address it was parsed from, for errors
}

func (t *target) hostport() string {
	if t.network == "unix" {
		return t.host
	}
	return net.JoinHostPort(t.host, t.port)
}

// key is the URL host the request is sent to, which is also what the
// http.Transport pools connections by: it carries the namespace identity,
// the network and the address, and, with PROXY protocol, the client
// (client, if not empty). It is escaped like Caddy escapes its PROXY
// protocol hosts, so that HTTP/1 and HTTP/2 pools parse it alike; the
// port stays readable for except_ports.
func (t *target) key(client string) string {
	where := "own"
	if t.ns != "" {
		where = "netns." + strconv.FormatUint(t.id.Dev, 10) + "." + strconv.FormatUint(t.id.Ino, 10)
	}
	k := where + "/" + t.network + "/" + t.host
	if client != "" {
		k = client + "->" + k
	}
	port := t.port
	if port == "" {
		port = "0"
	}
	return url.QueryEscape(k) + ":" + port
}

// parseDial parses an upstream dial address without placeholders:
// netns/<namespace>/<network>/<ip>:<port> (network tcp, tcp4 or tcp6) to
// dial from inside a namespace, or a plain Caddy network address to dial
// from Caddy's own (tcp, tcp4, tcp6 or unix).
func parseDial(s string) (*target, error) {
	if strings.HasPrefix(s, nsnetwork.Network+"/") {
		return parseNetns(s)
	}
	a, err := caddy.ParseNetworkAddressWithDefaults(s, "tcp", 0)
	if err == nil && !isStream(a.Network) && a.Network != "unix" && strings.Contains(s, "/") {
		// Caddy's health_port rewrite drops the netns/ prefix.
		if t, nerr := parseNetns(nsnetwork.Network + "/" + s); nerr == nil {
			return t, nil
		}
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("upstream %q: %w", s, err)
	case a.Network == "unix":
		return &target{network: "unix", host: a.Host, dial: s}, nil
	case !isStream(a.Network):
		return nil, fmt.Errorf("upstream %q: network %q cannot be dialed: want tcp, tcp4, tcp6, unix, or a netns/ address", s, a.Network)
	case a.PortRangeSize() != 1:
		return nil, fmt.Errorf("upstream %q: port ranges cannot be dialed", s)
	case a.StartPort == 0:
		return nil, fmt.Errorf("upstream %q: missing port", s)
	case a.Host == "":
		return nil, fmt.Errorf("upstream %q: missing host", s)
	}
	return &target{network: a.Network, host: a.Host, port: strconv.FormatUint(uint64(a.StartPort), 10), dial: s}, nil
}

func parseNetns(s string) (*target, error) {
	a, err := nsnetwork.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", s, err)
	}
	switch {
	case !isStream(a.Network):
		return nil, fmt.Errorf("upstream %q: network %q cannot carry HTTP: want tcp, tcp4 or tcp6", s, a.Network)
	case a.StartPort != a.EndPort:
		return nil, fmt.Errorf("upstream %q: port ranges cannot be dialed", s)
	case a.StartPort == 0:
		return nil, fmt.Errorf("upstream %q: missing port", s)
	case net.ParseIP(strings.SplitN(a.Host, "%", 2)[0]) == nil:
		return nil, fmt.Errorf("upstream %q: host %q must be an IP address (a name would be resolved outside the namespace)", s, a.Host)
	}
	return &target{ns: a.Namespace, network: a.Network, host: a.Host,
		port: strconv.FormatUint(uint64(a.StartPort), 10), dial: s}, nil
}

func isStream(network string) bool {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return true
	}
	return false
}
