// Package targets keeps health and load per resolved upstream target: the
// namespace's identity, the network and the address. An upstream with
// placeholders is one target per tenant, and one tenant's failing backend
// must not mark another's down. A namespace deleted and re-created under
// the same name is a new target.
//
// States are shared by every config that reaches the same target, so
// health survives a reload, and live only while something holds them: a
// static upstream of a loaded config, a connection or association, a
// remembered failure (for fail_duration), or a target that the active
// checks follow (Follower). Namespaces come and go, so nothing else keeps
// a state, and a Registry is capped.
package targets

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// Key identifies a resolved target.
type Key struct {
	// NS is the namespace's identity; zero for the process's own
	// namespace and for a namespace file that could not be found (then
	// Path is set).
	NS nsenter.ID
	// Path is the namespace file (or name) when NS is zero for a target
	// in a named namespace.
	Path     string
	Network  string
	HostPort string
}

// KeyOf identifies the target hostport on network in the namespace named
// ns ("" for the process's own). The namespace is identified by id when
// it is not zero (the namespace a connection arrived in), else by the
// file its name leads to now.
func KeyOf(ns string, id nsenter.ID, network, hostport string) Key {
	k := Key{Network: network, HostPort: hostport}
	switch {
	case ns == "":
	case id != nsenter.ID{}:
		k.NS = id
	default:
		p, err := nsenter.Path(ns)
		if err != nil {
			k.Path = ns
			break
		}
		if id, err := nsenter.StatID(p); err == nil {
			k.NS = id
		} else {
			k.Path = p
		}
	}
	return k
}

// Gone reports whether the namespace of a target identified as k, named
// ns, no longer exists under that name.
func Gone(k Key, ns string) bool {
	if ns == "" || k.NS == (nsenter.ID{}) {
		return false
	}
	p, err := nsenter.Path(ns)
	if err != nil {
		return true
	}
	id, err := nsenter.StatID(p)
	return err != nil || id != k.NS
}

// State is a target's health and load.
type State struct {
	key  Key
	reg  *Registry
	refs int // guarded by reg.mu

	// Sessions counts the connections or associations open to the target.
	Sessions atomic.Int32
	// Fails counts the failures remembered (passive checks).
	Fails atomic.Int32
	// Unhealthy is set while the active checks have the target down.
	Unhealthy atomic.Bool

	mu             sync.Mutex
	okRun, failRun int

	// open are connections to be ended when the target is marked down.
	openMu sync.Mutex
	open   map[net.Conn]struct{}
}

// Registry is a process-wide map of the states of targets, capped at Max.
type Registry struct {
	// Max bounds the targets remembered at once. Past it a new target
	// gets a state of its own that nothing else shares: its load and
	// failures are not remembered for the next user.
	Max int

	mu     sync.Mutex
	m      map[Key]*State
	warned bool
}

// NewRegistry returns an empty registry of at most max targets.
func NewRegistry(max int) *Registry {
	return &Registry{Max: max, m: map[Key]*State{}}
}

// Hold returns the shared state of k with a reference taken; Release
// returns it. full is true when k is not remembered because the registry
// is at Max, the first time since it was last below 90% of it (for one
// warning).
func (r *Registry) Hold(k Key) (s *State, full bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.m[k]; s != nil {
		s.refs++
		return s, false
	}
	s = &State{key: k, reg: r, refs: 1}
	if len(r.m) >= r.Max {
		full = !r.warned
		r.warned = true
		return s, full
	}
	r.m[k] = s
	return s, false
}

// Len is how many targets are remembered.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// Has reports whether k is remembered.
func (r *Registry) Has(k Key) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.m[k]
	return ok
}

// Key identifies s's target.
func (s *State) Key() Key { return s.key }

// Hold takes another reference on s.
func (s *State) Hold() {
	s.reg.mu.Lock()
	s.refs++
	s.reg.mu.Unlock()
}

// Release returns a reference; with the last one s is forgotten.
func (s *State) Release() {
	r := s.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.refs--; s.refs > 0 {
		return
	}
	if r.m[s.key] == s {
		delete(r.m, s.key)
		if len(r.m) < r.Max*9/10 {
			r.warned = false
		}
	}
}

// Record folds one active check into the target's runs: rise successes in
// a row mark it up, fall failures in a row down (each at least 1). It
// reports whether the target's health changed.
func (s *State) Record(ok bool, rise, fall int) (changed bool) {
	rise, fall = max(rise, 1), max(fall, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.failRun = 0
		s.okRun = min(s.okRun+1, rise)
		if s.okRun >= rise {
			return s.Unhealthy.CompareAndSwap(true, false)
		}
		return false
	}
	s.okRun = 0
	s.failRun = min(s.failRun+1, fall)
	if s.failRun >= fall {
		return s.Unhealthy.CompareAndSwap(false, true)
	}
	return false
}

// Track remembers c, a connection to the target, to be ended by EndOpen;
// Untrack forgets it.
func (s *State) Track(c net.Conn) {
	s.openMu.Lock()
	if s.open == nil {
		s.open = map[net.Conn]struct{}{}
	}
	s.open[c] = struct{}{}
	s.openMu.Unlock()
}

// Untrack forgets c.
func (s *State) Untrack(c net.Conn) {
	s.openMu.Lock()
	delete(s.open, c)
	s.openMu.Unlock()
}

// EndOpen calls end on every tracked connection, forgets them and returns
// how many there were.
func (s *State) EndOpen(end func(net.Conn)) int {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	n := len(s.open)
	for c := range s.open {
		end(c)
		delete(s.open, c)
	}
	return n
}
