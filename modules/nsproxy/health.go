package nsproxy

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// HealthChecks configures active and passive health checks.
type HealthChecks struct {
	// Active checks connect to each upstream on a timer, from inside the
	// upstream's namespace. Default: none.
	Active *ActiveHealthChecks `json:"active,omitempty"`

	// Passive checks count failed connects of proxied connections.
	// Default: none.
	Passive *PassiveHealthChecks `json:"passive,omitempty"`
}

// ActiveHealthChecks connect to every upstream on a timer; an upstream
// that does not accept the connection within the timeout is marked down
// until a check succeeds again. For UDP upstreams a check only shows that
// the address can be routed to from the namespace: UDP has no handshake.
//
// An upstream whose address has placeholders (such as
// netns/{l4.netns.name}/tcp/127.0.0.1:80) is many targets, one per tenant:
// each target a connection has resolved to is checked from then on, and
// marked down or up on its own, also across reloads of a config with the
// same upstreams. A target is no longer checked (and its health forgotten)
// when its namespace is gone or its name names another
// namespace, when no connection has resolved to it for 10 intervals, or
// when more than 4096 targets of the handler are followed (the least
// recently used goes).
type ActiveHealthChecks struct {
	// Port to check instead of the upstream's own port. Default: the
	// upstream's port.
	Port int `json:"port,omitempty"`

	// Interval between checks. Default: 30s.
	Interval caddy.Duration `json:"interval,omitempty"`

	// Timeout for each connect. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Fall is how many consecutive failed checks mark an upstream down.
	// Default: 1.
	Fall int `json:"fall,omitempty"`

	// Rise is how many consecutive successful checks mark it up again.
	// Default: 1.
	Rise int `json:"rise,omitempty"`

	// CloseIfUnhealthy, as caddy-l4's, ends the open proxied connections
	// of this handler to an upstream target the moment a check marks it
	// down, instead of letting them run until they close on their own
	// (failover: clients reconnect and reach a healthy upstream). The
	// upstream connection is closed, which ends the client's. With
	// placeholders, only the target marked down (one tenant's) is
	// affected. Passive checks never close connections. Default: false.
	CloseIfUnhealthy bool `json:"close_if_unhealthy,omitempty"`
}

// PassiveHealthChecks remember failed connects. They are counted per
// target: an upstream with placeholders, such as
// netns/{l4.netns.name}/tcp/127.0.0.1:80, is one target per namespace
// (by identity, device and inode) and address, so one tenant's failing
// backend does not mark another tenant's down.
type PassiveHealthChecks struct {
	// FailDuration is how long a failed connect to an upstream is
	// remembered; > 0 enables passive checks. Default: 0.
	FailDuration caddy.Duration `json:"fail_duration,omitempty"`

	// MaxFails is how many remembered failures mark an upstream down.
	// Default: 1.
	MaxFails int `json:"max_fails,omitempty"`

	// UnhealthyConnectionCount is the default max_connections of
	// upstreams that set none. Default: 0 (no limit).
	UnhealthyConnectionCount int `json:"unhealthy_connection_count,omitempty"`
}

// countFailure remembers a failed connect to c's target for FailDuration.
func (h *Handler) countFailure(c *cand) {
	p := c.u.passive
	if p == nil || p.FailDuration <= 0 {
		return
	}
	st := c.st
	st.fails.Add(1)
	st.hold() // the failure keeps the target's state until it is forgotten
	time.AfterFunc(time.Duration(p.FailDuration), func() {
		st.fails.Add(-1)
		st.release()
	})
}

// activeHealthChecker checks every upstream now and at each interval until
// the config is unloaded.
func (h *Handler) activeHealthChecker(ctx context.Context) {
	a := h.HealthChecks.Active
	t := time.NewTicker(time.Duration(a.Interval))
	defer t.Stop()
	for {
		h.checkAll(ctx)
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// maxParallelChecks bounds the checks of one handler in flight at once.
const maxParallelChecks = 64

// check is one target to check.
type check struct {
	upstream string // the upstream's address as configured
	t        target
	st       *state
	locals   []net.Addr // local_address, as for proxied connections
}

func (h *Handler) checkAll(ctx context.Context) {
	a := h.HealthChecks.Active
	var checks []check
	for _, up := range h.Upstreams {
		for _, u := range append([]*Upstream{up}, up.more...) { // every address of a dial
			if u.target != nil && u.state != nil {
				checks = append(checks, check{u.Dial, *u.target, u.state, u.localsSet})
			}
		}
	}
	checks = append(checks, h.seen.sweep(time.Now())...)
	sem := make(chan struct{}, maxParallelChecks)
	var wg sync.WaitGroup
	for _, c := range checks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			t := c.t
			if a.Port > 0 {
				host, _, _ := net.SplitHostPort(t.hostport)
				t.hostport = net.JoinHostPort(host, strconv.Itoa(a.Port))
			}
			cctx, cancel := context.WithTimeout(ctx, time.Duration(a.Timeout))
			defer cancel()
			conn, err := dial(cctx, h.policy, &t, c.locals...)
			if err == nil {
				_ = conn.Close()
			}
			if ctx.Err() != nil {
				return
			}
			log := h.logger.With(zap.String("netns", t.ns), zap.String("upstream", c.upstream), zap.String("address", t.hostport))
			if err != nil {
				log.Debug("active health check failed", zap.Error(err))
			}
			if c.st.record(err == nil, a.Rise, a.Fall) {
				if err != nil {
					log.Warn("upstream is down", zap.Error(err))
					// Connections tracked here are those of handlers
					// with close_if_unhealthy, whichever handler's
					// check marked the shared target down.
					if n := c.st.endOpen(); n > 0 {
						log.Info("closed connections to the unhealthy upstream", zap.Int("connections", n))
					}
				} else {
					log.Info("upstream is up")
				}
			}
		})
	}
	wg.Wait()
}

// maxSeen bounds the targets of placeholder upstreams one handler's
// active checks follow.
var maxSeen = 4096

// seenTargets are the targets of placeholder upstreams that connections
// resolved to, for the active checks. A nil *seenTargets follows nothing.
type seenTargets struct {
	ttl time.Duration // forget a target not resolved to for this long
	sig string        // the handler's upstream addresses, see following

	mu     sync.Mutex
	m      map[stateKey]*seenTarget
	closed bool
}

type seenTarget struct {
	upstream string
	t        target
	st       *state // held while followed
	last     time.Time
	locals   []net.Addr // the upstream's local_address without placeholders
}

// following lists the open seenTargets by the upstream addresses of their
// handler, so that a reloaded config keeps following (and keeps the health
// of) the targets its previous version followed: Caddy provisions the new
// config before it cleans up the old one.
var following = struct {
	sync.Mutex
	m map[string]map[*seenTargets]bool
}{m: map[string]map[*seenTargets]bool{}}

// newSeenTargets returns the targets to follow for a handler whose
// upstreams' addresses joined are sig, starting with those that an open
// handler with the same addresses follows.
func newSeenTargets(ttl time.Duration, sig string) *seenTargets {
	s := &seenTargets{ttl: ttl, sig: sig, m: map[stateKey]*seenTarget{}}
	following.Lock()
	defer following.Unlock()
	for prev := range following.m[sig] {
		prev.mu.Lock()
		for k, e := range prev.m {
			e.st.hold()
			c := *e
			s.m[k] = &c
		}
		prev.mu.Unlock()
		break
	}
	if following.m[sig] == nil {
		following.m[sig] = map[*seenTargets]bool{}
	}
	following.m[sig][s] = true
	return s
}

// note follows the target t (key k, state st) of upstream u from now on.
func (s *seenTargets) note(u *Upstream, t *target, k stateKey, st *state) {
	if s == nil {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if e := s.m[k]; e != nil {
		e.last = now
		return
	}
	if len(s.m) >= maxSeen {
		var oldest *seenTarget
		for _, e := range s.m {
			if oldest == nil || e.last.Before(oldest.last) {
				oldest = e
			}
		}
		s.forget(oldest)
	}
	st.hold()
	e := &seenTarget{upstream: u.Dial, t: *t, st: st, last: now}
	if len(u.locals) > 0 && !u.localsDyn {
		e.locals = u.localsFor(t, nil)
	}
	s.m[k] = e
}

// forget stops following e; s.mu is held.
func (s *seenTargets) forget(e *seenTarget) {
	delete(s.m, e.st.key)
	e.st.release()
}

// sweep forgets the targets that are gone or unused and returns the others
// to check.
func (s *seenTargets) sweep(now time.Time) []check {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	all := make([]*seenTarget, 0, len(s.m))
	for _, e := range s.m {
		all = append(all, e)
	}
	s.mu.Unlock()
	// Stat the namespace files without the lock: connections note targets
	// meanwhile (and update when each was last resolved to, which is
	// therefore read only under the lock).
	gone := map[*seenTarget]bool{}
	for _, e := range all {
		if namespaceGone(e.st.key, e.t.ns) {
			gone[e] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []check
	for _, e := range all {
		switch {
		case s.m[e.st.key] != e:
		case gone[e] || now.Sub(e.last) > s.ttl:
			s.forget(e)
		default:
			out = append(out, check{e.upstream, e.t, e.st, e.locals})
		}
	}
	return out
}

// close forgets every target.
func (s *seenTargets) close() {
	if s == nil {
		return
	}
	following.Lock()
	if delete(following.m[s.sig], s); len(following.m[s.sig]) == 0 {
		delete(following.m, s.sig)
	}
	following.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, e := range s.m {
		s.forget(e)
	}
}

// namespaceGone reports whether the namespace of a target identified as k,
// named ns, no longer exists under that name.
func namespaceGone(k stateKey, ns string) bool {
	if ns == "" || k.ns == (nsenter.ID{}) {
		return false
	}
	p, err := nsenter.Path(ns)
	if err != nil {
		return true
	}
	id, err := nsenter.StatID(p)
	return err != nil || id != k.ns
}

// activeChecks returns the active health checks; nil when there are none.
func (h *Handler) activeChecks() *ActiveHealthChecks {
	if h.HealthChecks == nil {
		return nil
	}
	return h.HealthChecks.Active
}
