//go:build linux && !386

package sctpapp

import (
	"context"
	"fmt"
	"net"

	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// registerSets makes namespace sets of the sctp networks
// (netns/tenant-*/sctp/:38412) usable by the app: the set's listener
// accepts from every member namespace, and the members' own Accept returns
// *sctpnet.Conn.
func registerSets() {
	for _, network := range []string{"sctp", "sctp4", "sctp6"} {
		nsnetwork.RegisterSetListener(network, func(ln net.Listener) any { return setListener{ln} })
	}
}

// setListener is a namespace set's listener seen as a Listener.
type setListener struct{ net.Listener }

// AcceptConn returns the next association from any member namespace.
func (l setListener) AcceptConn(context.Context) (*sctpnet.Conn, error) {
	c, err := l.Accept()
	if err != nil {
		return nil, err
	}
	sc, ok := c.(*sctpnet.Conn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("sctp set %s: accepted a %T, not an SCTP association", l.Addr(), c)
	}
	return sc, nil
}

var _ Listener = setListener{}
