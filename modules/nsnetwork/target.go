package nsnetwork

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// Target is a parsed address to dial.
type Target struct {
	Namespace string // empty: Caddy's own namespace
	Network   string // lower case
	Host      string
	Port      uint
}

// HostPort returns host:port as net.Dial takes it.
func (t Target) HostPort() string {
	return net.JoinHostPort(t.Host, strconv.FormatUint(uint64(t.Port), 10))
}

// ParseTarget parses an address to dial: the listen grammar
// netns/<namespace>/<network>/<ip>:<port> to dial from inside a network
// namespace, or [<network>/]<host>:<port> to dial from Caddy's own, with
// defaultNetwork when the address names none ("": it must name one).
// Inside a namespace the host must be an IP address: a name would be
// resolved outside it. checkNetwork refuses the networks the caller cannot
// dial (it is also asked about a missing network, ""), with an error
// naming the network. Errors name what the address is ("upstream") and the
// address.
func ParseTarget(s, what, defaultNetwork string, checkNetwork func(network string) error) (Target, error) {
	fail := func(err error) (Target, error) { return Target{}, fmt.Errorf("%s %q: %w", what, s, err) }
	var (
		t          Target
		start, end uint
	)
	if strings.HasPrefix(s, Network+"/") {
		a, err := ParseAddress(s)
		if err != nil {
			return Target{}, err
		}
		t, start, end = Target{Namespace: a.Namespace, Network: a.Network, Host: a.Host}, a.StartPort, a.EndPort
	} else {
		na, err := caddy.ParseNetworkAddressWithDefaults(s, defaultNetwork, 0)
		if err != nil {
			return fail(err)
		}
		t, start, end = Target{Network: strings.ToLower(na.Network), Host: na.Host}, na.StartPort, na.EndPort
	}
	if err := checkNetwork(t.Network); err != nil {
		return fail(err)
	}
	switch {
	case start != end:
		return fail(errors.New("port ranges cannot be dialed"))
	case start == 0:
		return fail(errors.New("missing port"))
	case t.Host == "":
		return fail(errors.New("missing host"))
	case t.Namespace != "":
		if ip, err := netip.ParseAddr(strings.SplitN(t.Host, "%", 2)[0]); err != nil || !ip.IsValid() {
			return fail(fmt.Errorf("host %q inside a namespace must be an IP address (a name would be resolved outside the namespace)", t.Host))
		}
	}
	t.Port = start
	return t, nil
}
