// Package address is the grammar of netns addresses,
// netns/<namespace>/<network>/<host>:<port>, and of namespace sets (a
// namespace with * or ?). It is Caddy-free and makes no system calls; it
// takes only the directory of named namespaces from kernel/nsenter.
package address

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// Network is the name of the netns network, the first element of every
// address.
const Network = "netns"

// Address is the parsed form of a listen address
// netns/<namespace>/<network>/<host>:<port>.
type Address struct {
	// Namespace is a name under /var/run/netns or an absolute path to a
	// network namespace file, as written; with * or ? it is a pattern
	// naming a set of namespaces (see IsSet); with commas, a list of them
	// (see IsList).
	Namespace string
	// Network is the inner network: tcp, tcp4, tcp6, udp, udp4, udp6, or
	// one added with RegisterNetwork (sctp).
	Network string
	// Host is the IP address or host name to bind; empty means all.
	Host string
	// StartPort and EndPort are the inclusive port range.
	StartPort, EndPort uint
}

// Parse parses a full listen address such as netns/ns1/tcp/:8000,
// netns//run/netns/ns1/udp/10.0.0.1:53 or netns/[ns1/tcp6/::1]:8000.
func Parse(s string) (Address, error) {
	rest, ok := strings.CutPrefix(s, Network+"/")
	if !ok {
		return Address{}, fmt.Errorf("address %q: want %s/<namespace>/<network>/<host>:<port>", s, Network)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return Address{}, fmt.Errorf("address %q: %w (for IPv6 write %s/[<namespace>/<network>/<ip>]:<port>)", s, err, Network)
	}
	return ParseHostPort(host, port)
}

// ParseHostPort takes the pieces Caddy hands a network plugin: for
// netns/ns1/tcp/10.0.0.1:8000-8010 the host is "ns1/tcp/10.0.0.1" and the
// port range "8000-8010". The namespace may be a path, so the host is split
// from the right.
func ParseHostPort(host, portRange string) (Address, error) {
	a := Address{}
	full := Network + "/" + host + ":" + portRange
	fail := func(err error) (Address, error) {
		return Address{}, fmt.Errorf("netns address %q: %w", full, err)
	}
	i := strings.LastIndexByte(host, '/')
	if i < 0 {
		return fail(errors.New("missing namespace and network: want netns/<namespace>/<network>/<host>:<port>"))
	}
	rest, h := host[:i], host[i+1:]
	j := strings.LastIndexByte(rest, '/')
	if j < 0 {
		return fail(errors.New("missing namespace or network: want netns/<namespace>/<network>/<host>:<port>"))
	}
	a.Namespace, a.Network, a.Host = rest[:j], strings.ToLower(rest[j+1:]), strings.Trim(h, "[]")

	if a.Namespace == "" {
		return fail(errors.New("empty namespace"))
	}
	if err := checkNamespace(a.Namespace); err != nil {
		return fail(err)
	}
	if err := CheckNetwork(a.Network); err != nil {
		return fail(err)
	}
	if strings.ContainsRune(a.Host, ':') && net.ParseIP(strings.SplitN(a.Host, "%", 2)[0]) == nil {
		return fail(fmt.Errorf("host %q is not a valid IPv6 address", a.Host))
	}
	var err error
	a.StartPort, a.EndPort, err = parsePortRange(portRange)
	if err != nil {
		return fail(err)
	}
	return a, nil
}

func checkNamespace(ns string) error {
	if strings.ContainsRune(ns, ',') {
		_, err := splitList(ns)
		return err
	}
	if filepath.IsAbs(ns) {
		return nil
	}
	if strings.ContainsRune(ns, '/') {
		return fmt.Errorf("namespace %q: want a name under /var/run/netns or an absolute path", ns)
	}
	if ns == "." || ns == ".." {
		return fmt.Errorf("namespace %q is not a valid name", ns)
	}
	return nil
}

// CheckNetwork returns an error unless network is a built-in inner network
// (tcp, tcp4, tcp6, udp, udp4, udp6) or one added with RegisterNetwork.
func CheckNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		return nil
	case "":
		return errors.New("missing network: want one of tcp, tcp4, tcp6, udp, udp4, udp6" + innerList())
	}
	if registered(network) {
		return nil
	}
	if strings.HasPrefix(network, "sctp") {
		return fmt.Errorf("network %q needs the sctp app (modules/sctpapp), which is not in this build", network)
	}
	return fmt.Errorf("unknown network %q: want one of tcp, tcp4, tcp6, udp, udp4, udp6%s", network, innerList())
}

// parsePortRange parses "8000" or "8000-8010".
func parsePortRange(s string) (start, end uint, err error) {
	if s == "" {
		return 0, 0, errors.New("missing port")
	}
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("port %q out of range or not a number (0-65535)", lo)
	}
	b, err := strconv.ParseUint(hi, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("port %q out of range or not a number (0-65535)", hi)
	}
	if b < a {
		return 0, 0, fmt.Errorf("port range %q: end before start", s)
	}
	return uint(a), uint(b), nil
}

// HostPort returns host:port for the port at offset in the range.
func (a Address) HostPort(offset uint) string {
	return net.JoinHostPort(a.Host, strconv.FormatUint(uint64(a.StartPort+offset), 10))
}

// String returns the address in the form ParseAddress and Caddy parse back
// to the same address: the part before the port is bracketed when it holds
// a colon, in an IPv6 host or in the namespace's name or path. (Brackets
// inside that part are refused by the parsers, so no address has them.)
func (a Address) String() string {
	port := strconv.FormatUint(uint64(a.StartPort), 10)
	if a.EndPort != a.StartPort {
		port += "-" + strconv.FormatUint(uint64(a.EndPort), 10)
	}
	inner := a.Namespace + "/" + a.Network + "/" + a.Host
	if strings.ContainsRune(inner, ':') {
		return Network + "/[" + inner + "]:" + port
	}
	return Network + "/" + inner + ":" + port
}
