package nsproxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// Health and load are kept per resolved target: the namespace's identity,
// the network and the address. An upstream with placeholders, such as
// netns/{l4.netns.name}/tcp/127.0.0.1:80, is one target per tenant, and one
// tenant's failing backend must not mark another's down. A namespace
// deleted and re-created under the same name is a new target.
//
// Entries are shared by every config that reaches the same target, so
// health survives a reload like caddy-l4's peers, and live only while
// something holds them: a static upstream of a loaded config, a connection,
// a remembered failure (for fail_duration), or a target that the active
// checks follow. Namespaces come and go, so nothing else keeps an entry,
// and the map is capped (maxStates).

// stateKey identifies a resolved target.
type stateKey struct {
	// ns is the namespace's identity; zero for Caddy's own namespace and
	// for a namespace file that could not be found.
	ns nsenter.ID
	// path is the namespace file when ns is zero for a netns target.
	path     string
	network  string
	hostport string
}

// state is a target's health and load.
type state struct {
	key  stateKey
	refs int // guarded by states

	conns     atomic.Int32
	fails     atomic.Int32
	unhealthy atomic.Bool

	mu             sync.Mutex
	okRun, failRun int

	// open are the upstream sockets of proxied connections to be ended
	// when the target is marked down (close_if_unhealthy).
	openMu sync.Mutex
	open   map[net.Conn]struct{}
}

// maxStates bounds the targets remembered at once. Past it a new target
// gets a state of its own that nothing else shares: its connections and
// failures are not remembered for the next connection.
var maxStates = 65536

var states = struct {
	sync.Mutex
	m      map[stateKey]*state
	warned bool
}{m: map[stateKey]*state{}}

// keyOf identifies t. The namespace of a netns target is identified by
// t.id when set (the namespace the connection arrived in), else by the
// file its name leads to now.
func keyOf(t *target) stateKey {
	k := stateKey{network: t.network, hostport: t.hostport}
	switch {
	case t.ns == "":
	case t.id != nsenter.ID{}:
		k.ns = t.id
	default:
		p, err := nsenter.Path(t.ns)
		if err != nil {
			k.path = t.ns
			break
		}
		if id, err := nsenter.StatID(p); err == nil {
			k.ns = id
		} else {
			k.path = p
		}
	}
	return k
}

// holdState returns the shared state of k and takes a reference on it;
// release returns it.
func holdState(k stateKey) *state {
	states.Lock()
	defer states.Unlock()
	if s := states.m[k]; s != nil {
		s.refs++
		return s
	}
	s := &state{key: k, refs: 1}
	if len(states.m) >= maxStates {
		if !states.warned {
			states.warned = true
			caddy.Log().Named("layer4.handlers.netns_proxy").Warn("too many upstream targets to remember their health; new ones are not remembered",
				zap.Int("max", maxStates))
		}
		return s
	}
	states.m[k] = s
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
		if len(states.m) < maxStates*9/10 {
			states.warned = false
		}
	}
}

// record folds one active check into the target's runs and reports
// whether its health changed.
func (s *state) record(ok bool, rise, fall int) (changed bool) {
	rise, fall = max(rise, 1), max(fall, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.failRun = 0
		s.okRun = min(s.okRun+1, rise)
		if s.okRun >= rise {
			return s.unhealthy.CompareAndSwap(true, false)
		}
		return false
	}
	s.okRun = 0
	s.failRun = min(s.failRun+1, fall)
	if s.failRun >= fall {
		return s.unhealthy.CompareAndSwap(false, true)
	}
	return false
}

// track remembers c, a proxied connection's upstream socket, to be ended
// when the target is marked down; untrack forgets it.
func (s *state) track(c net.Conn) {
	s.openMu.Lock()
	if s.open == nil {
		s.open = map[net.Conn]struct{}{}
	}
	s.open[c] = struct{}{}
	s.openMu.Unlock()
}

func (s *state) untrack(c net.Conn) {
	s.openMu.Lock()
	delete(s.open, c)
	s.openMu.Unlock()
}

// endOpen ends the tracked connections and returns how many there were. A
// TCP socket is closed, as caddy-l4 does; a UDP socket's reads and writes
// are made to fail instead, so that its flow ends and the socket still
// goes to quarantine (see udpflow.go) rather than free its port at once.
func (s *state) endOpen() int {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	n := len(s.open)
	for c := range s.open {
		if uc, ok := c.(*net.UDPConn); ok {
			_ = uc.SetDeadline(time.Unix(1, 0))
		} else {
			_ = c.Close()
		}
		delete(s.open, c)
	}
	return n
}
