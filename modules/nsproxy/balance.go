package nsproxy

import (
	"encoding/json"
	"math/rand/v2"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/caddy-l4/layer4"
	"github.com/mholt/caddy-l4/modules/l4proxy"
)

// LoadBalancing chooses among the upstreams.
type LoadBalancing struct {
	// SelectionPolicyRaw is how to choose an available upstream: one of
	// caddy-l4's policies (layer4.proxy.selection_policies: random,
	// random_choose, least_conn, round_robin, weighted_round_robin, first,
	// ip_hash). Default: random.
	SelectionPolicyRaw json.RawMessage `json:"selection,omitempty" caddy:"namespace=layer4.proxy.selection_policies inline_key=policy"`

	// TryDuration is how long to keep trying when every upstream is down
	// or fails to connect. Within one attempt each available upstream is
	// tried once, in the policy's order, before waiting. Default: 0 (one
	// attempt).
	TryDuration caddy.Duration `json:"try_duration,omitempty"`

	// TryInterval is how long to wait between attempts. Default: 250ms.
	TryInterval caddy.Duration `json:"try_interval,omitempty"`

	policy l4proxy.Selector
}

// cand is an upstream resolved for one connection: its target and the
// target's state.
type cand struct {
	u    *Upstream
	t    *target
	st   *state
	held bool   // st was taken for this connection: release it after
	more []cand // the upstream's other addresses (dial with several)
}

// available tells whether c may be selected now: with several addresses,
// all of them must be, as in caddy-l4.
func (c *cand) available() bool {
	if !c.u.available(c.st) {
		return false
	}
	for i := range c.more {
		if !c.more[i].u.available(c.more[i].st) {
			return false
		}
	}
	return true
}

// release returns the states held for this connection.
func (c *cand) release() {
	if c.held {
		c.st.Release()
	}
	for i := range c.more {
		c.more[i].release()
	}
}

// pick chooses an available candidate that is not in skip and returns its
// index, or -1.
//
// caddy-l4's policies see only the available candidates, through stand-in
// l4proxy.Upstream values (their health and connection counts are
// unexported): round_robin, weighted_round_robin, first, ip_hash and random
// work unchanged; least_conn and random_choose need connection counts and
// are done here with ours, per resolved target. With a single upstream
// there is nothing to choose.
func (h *Handler) pick(cx *layer4.Connection, all []cand, skip map[*Upstream]bool) int {
	if len(all) == 1 {
		if c := &all[0]; !skip[c.u] && c.available() {
			return 0
		}
		return -1
	}
	cands := make([]int, 0, len(all))
	for i := range all {
		if c := &all[i]; !skip[c.u] && c.available() {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		return -1
	}
	switch p := h.LoadBalancing.policy.(type) {
	case *l4proxy.LeastConnSelection:
		return leastConn(all, cands)
	case *l4proxy.RandomChoiceSelection:
		rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		return leastConn(all, cands[:min(max(p.Choose, 2), len(cands))])
	}
	pool := make(l4proxy.UpstreamPool, len(cands))
	for i, c := range cands {
		pool[i] = all[c].u.shadow
	}
	chosen := h.LoadBalancing.policy.Select(pool, cx)
	for _, c := range cands {
		if all[c].u.shadow == chosen {
			return c
		}
	}
	return -1
}

// leastConn returns the index of the candidate (of all, among those
// listed in cs) with the fewest connections, a random one among ties.
func leastConn(all []cand, cs []int) int {
	best := -1
	least, ties := int32(-1), 0
	for _, i := range cs {
		n := all[i].st.Sessions.Load()
		switch {
		case least < 0 || n < least:
			best, least, ties = i, n, 1
		case n == least:
			ties++
			if rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return best
}
