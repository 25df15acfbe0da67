package nsproxy

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/kernel/targets"
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
	st.RememberFailure(time.Duration(p.FailDuration))
}

// activeHealthChecker checks every upstream now and at each interval until
// the config is unloaded.
func (h *Handler) activeHealthChecker(ctx context.Context) {
	targets.Every(ctx, time.Duration(h.HealthChecks.Active.Interval), h.checkAll)
}

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
	targets.CheckEach(checks, func(c check) {
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
		if c.st.Record(err == nil, a.Rise, a.Fall) {
			if err != nil {
				log.Warn("upstream is down", zap.Error(err))
				// Connections tracked here are those of handlers
				// with close_if_unhealthy, whichever handler's
				// check marked the shared target down.
				if n := endOpen(c.st); n > 0 {
					log.Info("closed connections to the unhealthy upstream", zap.Int("connections", n))
				}
			} else {
				log.Info("upstream is up")
			}
		}
	})
}

// maxSeen bounds the targets of placeholder upstreams one handler's
// active checks follow.
var maxSeen = 4096

// seenTargets are the targets of placeholder upstreams that connections
// resolved to, for the active checks. A nil *seenTargets follows nothing.
type seenTargets struct {
	sig string // the handler's upstream addresses, see following
	f   *targets.Follower[seenTarget]
}

// seenTarget is what a followed target is checked with.
type seenTarget struct {
	upstream string
	t        target
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
	s := &seenTargets{sig: sig, f: targets.NewFollower[seenTarget](ttl)}
	following.Lock()
	defer following.Unlock()
	for prev := range following.m[sig] {
		s.f.Adopt(prev.f)
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
	s.f.Note(st, maxSeen, func() seenTarget {
		e := seenTarget{upstream: u.Dial, t: *t}
		if len(u.locals) > 0 && !u.localsDyn {
			e.locals = u.localsFor(t, nil)
		}
		return e
	})
}

// sweep forgets the targets that are gone or unused and returns the others
// to check.
func (s *seenTargets) sweep(now time.Time) []check {
	if s == nil {
		return nil
	}
	var out []check
	for _, e := range s.f.Sweep(now, func(e targets.Followed[seenTarget]) bool {
		return targets.Gone(e.State.Key(), e.Info.t.ns)
	}) {
		out = append(out, check{e.Info.upstream, e.Info.t, e.State, e.Info.locals})
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
	s.f.Close()
}

// activeChecks returns the active health checks; nil when there are none.
func (h *Handler) activeChecks() *ActiveHealthChecks {
	if h.HealthChecks == nil {
		return nil
	}
	return h.HealthChecks.Active
}
