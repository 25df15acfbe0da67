package sctpnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ishidawataru/sctp"
)

// ResolveAddr parses an SCTP address for network "sctp", "sctp4" or
// "sctp6": "host:port", "[v6addr]:port", ":port" (any address), or several
// hosts for a multi-homed endpoint, "10.0.0.1/10.0.1.1:2905" or
// "[fd00::1]/[fd00::2]:2905". Host names are looked up with
// net.DefaultResolver, taking the first address of the right family; the
// port must be a number (0 picks one when listening).
func ResolveAddr(ctx context.Context, network, address string) (*sctp.SCTPAddr, error) {
	ipNet, err := ipNetwork(network)
	if err != nil {
		return nil, err
	}
	hosts, port, err := splitHostsPort(address)
	if err != nil {
		return nil, fmt.Errorf("%s address %q: %w", network, address, err)
	}
	a := &sctp.SCTPAddr{Port: port}
	for _, h := range hosts {
		ip, err := netip.ParseAddr(h)
		if err != nil {
			ips, lerr := net.DefaultResolver.LookupNetIP(ctx, ipNet, h)
			if lerr != nil {
				return nil, fmt.Errorf("%s address %q: %w", network, address, lerr)
			}
			if len(ips) == 0 {
				return nil, fmt.Errorf("%s address %q: no address for %q", network, address, h)
			}
			ip = ips[0]
		}
		if ip.Is4In6() {
			ip = ip.Unmap()
		}
		switch {
		case network == "sctp4" && !ip.Is4():
			return nil, fmt.Errorf("%s address %q: %s is not an IPv4 address", network, address, ip)
		case network == "sctp6" && ip.Is4():
			return nil, fmt.Errorf("%s address %q: %s is not an IPv6 address", network, address, ip)
		}
		a.IPAddrs = append(a.IPAddrs, net.IPAddr{IP: ip.AsSlice(), Zone: ip.Zone()})
	}
	return a, nil
}

func ipNetwork(network string) (string, error) {
	switch network {
	case "sctp":
		return "ip", nil
	case "sctp4":
		return "ip4", nil
	case "sctp6":
		return "ip6", nil
	}
	return "", fmt.Errorf("unknown network %q (want sctp, sctp4 or sctp6)", network)
}

// splitHostsPort splits "h1/h2:port" or "h1,h2:port"; IPv6 hosts must be
// in brackets, each or all together ("[a,b]:port").
func splitHostsPort(address string) ([]string, int, error) {
	i := strings.LastIndexByte(address, ':')
	if i < 0 {
		return nil, 0, fmt.Errorf("missing port")
	}
	host, portStr := address[:i], address[i+1:]
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("invalid port %q", portStr)
	}
	if host == "" {
		return nil, int(port), nil
	}
	bracketed := false
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") && strings.Count(host, "[") == 1 {
		host, bracketed = host[1:len(host)-1], true // [fd00::1] or [fd00::1,fd00::2]
	}
	var hosts []string
	for _, h := range strings.Split(strings.ReplaceAll(host, ",", "/"), "/") {
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			h = h[1 : len(h)-1]
		} else if strings.ContainsAny(h, "[]") || (!bracketed && strings.Contains(h, ":")) {
			return nil, 0, fmt.Errorf("IPv6 address %q must be in brackets", h)
		}
		if h == "" {
			return nil, 0, fmt.Errorf("empty host")
		}
		hosts = append(hosts, h)
	}
	return hosts, int(port), nil
}
