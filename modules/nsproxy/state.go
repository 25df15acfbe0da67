package nsproxy

import (
	"net"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/kernel/targets"
)

// Health and load are kept per resolved target (kernel/targets): the
// namespace's identity, the network and the address. An upstream with
// placeholders, such as netns/{l4.netns.name}/tcp/127.0.0.1:80, is one
// target per tenant. Entries are shared by every config that reaches the
// same target, so health survives a reload like caddy-l4's peers; a
// state's Sessions are the connections open to the target.

// stateKey identifies a resolved target.
type stateKey = targets.Key

// state is a target's health and load.
type state = targets.State

// states are the targets of this handler module, at most 65536
// remembered at once (states.Max).
var states = targets.NewRegistry(65536)

// keyOf identifies t. The namespace of a netns target is identified by
// t.id when set (the namespace the connection arrived in), else by the
// file its name leads to now.
func keyOf(t *target) stateKey {
	return targets.KeyOf(t.ns, t.id, t.network, t.hostport)
}

// holdState returns the shared state of k and takes a reference on it;
// Release returns it.
func holdState(k stateKey) *state {
	s, full := states.Hold(k)
	if full {
		caddy.Log().Named("layer4.handlers.netns_proxy").Warn("too many upstream targets to remember their health; new ones are not remembered",
			zap.Int("max", states.Max))
	}
	return s
}

// endOpen ends the connections tracked on s (close_if_unhealthy) and
// returns how many there were. A TCP socket is closed, as caddy-l4 does;
// a UDP socket's reads and writes are made to fail instead, so that its
// flow ends and the socket still goes to quarantine (see udpflow.go)
// rather than free its port at once.
func endOpen(s *state) int {
	return s.EndOpen(func(c net.Conn) {
		if uc, ok := c.(*net.UDPConn); ok {
			_ = uc.SetDeadline(time.Unix(1, 0))
		} else {
			_ = c.Close()
		}
	})
}
