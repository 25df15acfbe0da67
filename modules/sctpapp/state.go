package sctpapp

import (
	"sync"
	"sync/atomic"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// Health and load are kept per resolved target: the namespace's identity,
// the network and the address. An upstream with placeholders, such as
// netns/{sctp.netns.name}/sctp/10.0.0.2:38412, is one target per tenant,
// and one tenant's failing core must not mark another's down. A namespace
// deleted and re-created under the same name is a new target.
//
// Entries are shared by every config that reaches the same target, so
// health survives a reload, and live only while something holds them: a
// static upstream of a loaded config, an association, a remembered failure
// (for fail_duration) or a target the active checks follow. The map is
// capped (maxStates).

// stateKey identifies a resolved target.
type stateKey struct {
	// ns is the namespace's identity; zero for Caddy's own namespace and
	// for a namespace file that could not be found (then path is set).
	ns       nsenter.ID
	path     string
	network  string
	hostport string
}

// state is a target's health and load.
type state struct {
	key  stateKey
	refs int // guarded by states

	assocs    atomic.Int32 // associations open to the target
	fails     atomic.Int32 // failures remembered (passive checks)
	unhealthy atomic.Bool  // marked down by the active checks

	mu             sync.Mutex
	okRun, failRun int
}

// maxStates bounds the targets remembered at once. Past it a new target
// gets a state of its own that nothing else shares.
var maxStates = 65536

var states = struct {
	sync.Mutex
	m map[stateKey]*state
}{m: map[stateKey]*state{}}

// keyOf identifies t by the file its namespace name leads to now.
func keyOf(t target) stateKey {
	k := stateKey{network: t.network, hostport: t.hostport}
	if t.ns == "" {
		return k
	}
	p, err := nsenter.Path(t.ns)
	if err != nil {
		k.path = t.ns
		return k
	}
	if id, err := nsenter.StatID(p); err == nil {
		k.ns = id
	} else {
		k.path = p
	}
	return k
}

// holdState returns the shared state of k with a reference taken;
// release returns it.
func holdState(k stateKey) *state {
	states.Lock()
	defer states.Unlock()
	if s := states.m[k]; s != nil {
		s.refs++
		return s
	}
	s := &state{key: k, refs: 1}
	if len(states.m) < maxStates {
		states.m[k] = s
	}
	return s
}

// hold takes another reference on s.
func (s *state) hold() {
	states.Lock()
	s.refs++
	states.Unlock()
}

// release returns a reference; with the last one s is forgotten.
func (s *state) release() {
	states.Lock()
	defer states.Unlock()
	if s.refs--; s.refs > 0 {
		return
	}
	if states.m[s.key] == s {
		delete(states.m, s.key)
	}
}

// record folds one active check into the target's runs and reports
// whether its health changed.
func (s *state) record(ok bool, passes, fails int) (changed bool) {
	passes, fails = max(passes, 1), max(fails, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.failRun = 0
		s.okRun = min(s.okRun+1, passes)
		if s.okRun >= passes {
			return s.unhealthy.CompareAndSwap(true, false)
		}
		return false
	}
	s.okRun = 0
	s.failRun = min(s.failRun+1, fails)
	if s.failRun >= fails {
		return s.unhealthy.CompareAndSwap(false, true)
	}
	return false
}
