package sctpapp

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"

	"github.com/ishidawataru/sctp"
)

// Selection policies of the proxy's load balancing.
const (
	SelectFirst             = "first"
	SelectRoundRobin        = "round_robin"
	SelectLeastAssociations = "least_associations"
	SelectRandom            = "random"
	SelectClientIPHash      = "client_ip_hash"
)

// LoadBalancing chooses an upstream for each association.
type LoadBalancing struct {
	// Selection is the order in which the available upstreams are tried
	// for an association: first (in the configured order), round_robin
	// (each association starts one further along), least_associations
	// (fewest open associations first; ties in configured order), random,
	// or client_ip_hash (the client's primary address picks the first
	// one, so a client keeps its upstream while the set of available ones
	// does not change). Whatever the policy, an upstream that fails to
	// answer is followed by the next available one, so one failed
	// upstream never aborts an association another could take. Default:
	// first.
	Selection string `json:"selection,omitempty"`
}

func (lb *LoadBalancing) validate() error {
	if lb == nil {
		return nil
	}
	switch lb.Selection {
	case "", SelectFirst, SelectRoundRobin, SelectLeastAssociations, SelectRandom, SelectClientIPHash:
		return nil
	}
	return fmt.Errorf("selection: unknown policy %q (want first, round_robin, least_associations, random or client_ip_hash)", lb.Selection)
}

func (lb *LoadBalancing) policy() string {
	if lb == nil || lb.Selection == "" {
		return SelectFirst
	}
	return lb.Selection
}

// ucand is an upstream resolved for one association.
type ucand struct {
	u       *Upstream
	targets []tcand
}

// tcand is one dial address of an upstream, resolved, with its state.
type tcand struct {
	t          target
	st         *state
	held       bool   // st was taken for this association: release it after
	configured string // the dial address as configured
}

// assocs is how many associations the upstream's targets have open.
func (c *ucand) assocs() int {
	n := 0
	for _, t := range c.targets {
		n += int(t.st.Sessions.Load())
	}
	return n
}

// order returns the available upstreams of cands in the order to try them.
func (p *Proxy) order(cands []*ucand, a *Association) []*ucand {
	avail := make([]*ucand, 0, len(cands))
	for _, c := range cands {
		for _, t := range c.targets {
			if p.available(c.u, t.st) {
				avail = append(avail, c)
				break
			}
		}
	}
	if len(avail) < 2 {
		return avail
	}
	rotate := func(start int) []*ucand {
		start %= len(avail)
		return append(avail[start:len(avail):len(avail)], avail[:start]...)
	}
	switch p.LoadBalancing.policy() {
	case SelectRoundRobin:
		return rotate(int(p.rr.Add(1)-1) % len(avail))
	case SelectLeastAssociations:
		slices.SortStableFunc(avail, func(x, y *ucand) int { return x.assocs() - y.assocs() })
	case SelectRandom:
		rand.Shuffle(len(avail), func(i, j int) { avail[i], avail[j] = avail[j], avail[i] })
	case SelectClientIPHash:
		h := fnv.New32a()
		if ra, ok := a.Conn.RemoteAddr().(*sctp.SCTPAddr); ok && ra != nil && len(ra.IPAddrs) > 0 {
			h.Write(ra.IPAddrs[0].IP)
		}
		return rotate(int(h.Sum32() % uint32(len(avail))))
	}
	return avail
}

// available tells whether u may take an association on the target whose
// state is st: not marked down by the checks, and below max_associations.
func (p *Proxy) available(u *Upstream, st *state) bool {
	if st.Unhealthy.Load() {
		return false
	}
	if pc := p.passive(); pc != nil && int(st.Fails.Load()) >= pc.MaxFails {
		return false
	}
	return u.MaxAssociations <= 0 || int(st.Sessions.Load()) < u.MaxAssociations
}

// acquire counts an association on st unless u's max_associations is
// reached.
func acquire(u *Upstream, st *state) bool {
	for {
		n := st.Sessions.Load()
		if u.MaxAssociations > 0 && int(n) >= u.MaxAssociations {
			return false
		}
		if st.Sessions.CompareAndSwap(n, n+1) {
			return true
		}
	}
}
