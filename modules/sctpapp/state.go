package sctpapp

import (
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/kernel/targets"
)

// Health and load are kept per resolved target (kernel/targets): the
// namespace's identity, the network and the address. An upstream with
// placeholders, such as netns/{sctp.netns.name}/sctp/10.0.0.2:38412, is
// one target per tenant. Entries are shared by every config that reaches
// the same target, so health survives a reload; a state's Sessions are
// the associations open to the target.

// stateKey identifies a resolved target.
type stateKey = targets.Key

// state is a target's health and load.
type state = targets.State

// states are the targets of the SCTP proxy, at most 65536 remembered at
// once (states.Max).
var states = targets.NewRegistry(65536)

// keyOf identifies t by the file its namespace name leads to now.
func keyOf(t target) stateKey {
	return targets.KeyOf(t.ns, nsenter.ID{}, t.network, t.hostport)
}

// holdState returns the shared state of k with a reference taken;
// Release returns it.
func holdState(k stateKey) *state {
	s, _ := states.Hold(k)
	return s
}
