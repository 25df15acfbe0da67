package sctpapp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
	"github.com/caddy-netns/caddy-netns/kernel/sctprelay"
	"github.com/caddy-netns/caddy-netns/kernel/targets"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

func init() {
	caddy.RegisterModule(new(Proxy))
}

// DefaultDialTimeout bounds one attempt to reach an upstream.
const DefaultDialTimeout = 5 * time.Second

// ReadBuffer is the SO_RCVBUF of the proxy's sockets, listening and
// dialed: 4 MiB, which the kernel doubles, past net.core.rmem_max with
// SO_RCVBUFFORCE (Caddy has CAP_NET_ADMIN where it enters namespaces).
// With the kernel's default of 208 KiB every message larger than about
// 100 KiB waits for a retransmission timer; the buffer is a limit, memory
// is taken only for data waiting to be read.
const ReadBuffer = 4 << 20

// Proxy forwards every association to an upstream: each message whole,
// with its stream, its payload protocol identifier (unchanged) and its
// unordered flag, both ways. A graceful SHUTDOWN on one side shuts the
// other down; an ABORT on one side aborts the other. The upstream is
// asked for as many outbound streams as the client opened towards Caddy,
// and may open at most as many towards Caddy as Caddy has towards the
// client.
type Proxy struct {
	// Upstreams are tried in the load balancing's order, and each
	// upstream's dial addresses in order, until one accepts the
	// association; upstreams marked down by the health checks or at their
	// max_associations are skipped. When none accepts, the client's
	// association is aborted. Required: at least one.
	Upstreams []*Upstream `json:"upstreams,omitempty"`

	// LoadBalancing chooses the order of the upstreams per association.
	// Default: selection first (the configured order).
	LoadBalancing *LoadBalancing `json:"load_balancing,omitempty"`

	// HealthChecks mark upstream targets down and up. Default: none
	// (every upstream is tried).
	HealthChecks *HealthChecks `json:"health_checks,omitempty"`

	// DialTimeout bounds each attempt to reach an upstream address
	// (INIT and COOKIE exchange). Default: 5s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// Tuning sets SCTP parameters of the upstream associations, applied
	// before each dial (all of Tuning's fields apply here). Default: none
	// (the kernel's values; the streams follow the client's).
	Tuning *Tuning `json:"tuning,omitempty"`

	logger *zap.Logger
	policy *allow.Policy
	rr     atomic.Uint64 // round_robin's counter

	followed *targets.Follower[followed] // placeholder targets the active checks follow
}

// CaddyModule returns the Caddy module information.
func (*Proxy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "sctp.handlers.proxy",
		New: func() caddy.Module { return new(Proxy) },
	}
}

// Provision parses the upstream addresses.
func (p *Proxy) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	policy, err := nsnetwork.PolicyFor(ctx)
	if err != nil {
		return err
	}
	p.policy = policy
	if p.DialTimeout == 0 {
		p.DialTimeout = caddy.Duration(DefaultDialTimeout)
	}
	if err := p.LoadBalancing.validate(); err != nil {
		return fmt.Errorf("load_balancing: %w", err)
	}
	if err := p.HealthChecks.provision(); err != nil {
		return fmt.Errorf("health_checks: %w", err)
	}
	ttl := time.Duration(0)
	if p.HealthChecks != nil && p.HealthChecks.Active != nil {
		ttl = 10 * time.Duration(p.HealthChecks.Active.Interval)
	}
	p.followed = targets.NewFollower[followed](ttl)
	for i, u := range p.Upstreams {
		if u == nil {
			return fmt.Errorf("upstreams[%d]: empty", i)
		}
		if u.MaxAssociations < 0 {
			return fmt.Errorf("upstreams[%d].max_associations: %d is negative", i, u.MaxAssociations)
		}
		u.targets = u.targets[:0]
		u.states = u.states[:0]
		for j, d := range u.Dial {
			if strings.Contains(d, "{") {
				// Resolved per association; the allow list is checked
				// when the namespace is opened.
				u.targets = append(u.targets, target{template: d, addr: d})
				u.states = append(u.states, nil)
				continue
			}
			t, err := parseTarget(d)
			if err != nil {
				return fmt.Errorf("upstreams[%d].dial[%d]: %w", i, j, err)
			}
			if t.ns != "" {
				if err := p.policy.Allows(t.ns); err != nil {
					return fmt.Errorf("upstreams[%d].dial[%d]: %q: namespace %q: %w", i, j, d, t.ns, err)
				}
			}
			u.targets = append(u.targets, t)
			u.states = append(u.states, holdState(keyOf(t)))
		}
	}
	if p.HealthChecks != nil && p.HealthChecks.Active != nil {
		go p.checker(ctx)
	}
	return nil
}

// Cleanup releases the upstreams' shared state; associations still being
// proxied keep using it.
func (p *Proxy) Cleanup() error {
	for _, u := range p.Upstreams {
		if u == nil {
			continue
		}
		if u.released {
			continue
		}
		u.released = true
		for _, st := range u.states {
			if st != nil {
				st.Release()
			}
		}
	}
	p.stopChecks()
	return nil
}

// Validate checks that there is somewhere to dial.
func (p *Proxy) Validate() error {
	if p.DialTimeout < 0 {
		return fmt.Errorf("dial_timeout: %s is negative", time.Duration(p.DialTimeout))
	}
	if err := p.Tuning.validate(true); err != nil {
		return fmt.Errorf("tuning: %w", err)
	}
	for i, u := range p.Upstreams {
		if len(u.Dial) == 0 {
			return fmt.Errorf("upstreams[%d].dial: no address", i)
		}
	}
	if len(p.Upstreams) == 0 {
		return errors.New("upstreams: none configured")
	}
	return nil
}

// HandleSCTP dials an upstream and relays messages until both
// associations have ended.
func (p *Proxy) HandleSCTP(c *sctpnet.Conn) error {
	return p.HandleAssociation(&Association{Conn: c})
}

// HandleAssociation is HandleSCTP with the association's placeholders
// replaced in the upstream addresses that have them.
func (p *Proxy) HandleAssociation(a *Association) error {
	c := a.Conn
	in, out, err := c.Streams()
	if err != nil {
		_ = c.Abort()
		return err
	}
	cfg := p.Tuning.dialConfig(in, out, c.MaxMessageSize())
	cands := p.resolve(a)
	defer func() {
		for _, uc := range cands {
			for _, tc := range uc.targets {
				if tc.held {
					tc.st.Release()
				}
			}
		}
	}()
	tried := 0
	for _, uc := range p.order(cands, a) {
		for _, tc := range uc.targets {
			if !p.available(uc.u, tc.st) || !acquire(uc.u, tc.st) {
				continue
			}
			tried++
			t := tc.t
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(p.DialTimeout))
			up, err := dial(ctx, p.policy, t, cfg)
			cancel()
			if err != nil {
				tc.st.Sessions.Add(-1)
				p.countFailure(tc.st)
				a.dialFailed(tc.configured)
				p.logger.Warn("upstream unreachable", zap.Stringer("remote", c.RemoteAddr()),
					zap.Stringer("upstream", t), zap.Error(err))
				continue
			}
			start := time.Now()
			live := a.proxied(uc.u, t, tc.configured)
			res := sctprelay.RelayLive(c, up, live)
			tc.st.Sessions.Add(-1)
			if pc := p.passive(); pc != nil && res.Failed == sctprelay.SideB && time.Since(start) < time.Duration(pc.AbortWithin) {
				p.countFailure(tc.st)
				p.logger.Warn("upstream association aborted soon after it started: counted as a failure",
					zap.Stringer("remote", c.RemoteAddr()), zap.Stringer("upstream", t), zap.Error(res.Err))
			}
			p.logger.Debug("relay ended", zap.Stringer("remote", c.RemoteAddr()), zap.Stringer("upstream", t),
				zap.Int64("messages_up", res.AToB.Messages), zap.Int64("bytes_up", res.AToB.Bytes),
				zap.Int64("messages_down", res.BToA.Messages), zap.Int64("bytes_down", res.BToA.Bytes))
			return res.Err
		}
	}
	a.release()
	_ = c.Abort()
	return fmt.Errorf("%w (%d addresses tried), association aborted", ErrNoUpstream, tried)
}

// resolve returns the upstreams with their targets for a: placeholders
// replaced, each target's state held. A target whose address does not
// parse after the placeholders is left out, with a warning.
func (p *Proxy) resolve(a *Association) []*ucand {
	var repl *caddy.Replacer
	cands := make([]*ucand, 0, len(p.Upstreams))
	for _, u := range p.Upstreams {
		uc := &ucand{u: u}
		for i, t := range u.targets {
			if t.template == "" {
				uc.targets = append(uc.targets, tcand{t: t, st: u.states[i], configured: t.addr})
				continue
			}
			if repl == nil {
				repl = a.Replacer()
			}
			addr := repl.ReplaceKnown(t.template, "")
			a.release() // a first message read for {sctp.ppid} goes to the upstream
			resolved, err := parseTarget(addr)
			if err != nil {
				p.logger.Warn("upstream address after placeholders", zap.Stringer("remote", a.Conn.RemoteAddr()),
					zap.String("upstream", t.template), zap.Error(err))
				continue
			}
			st := holdState(keyOf(resolved))
			p.follow(t.template, resolved, st)
			uc.targets = append(uc.targets, tcand{t: resolved, st: st, held: true, configured: t.template})
		}
		cands = append(cands, uc)
	}
	return cands
}

// ErrNoUpstream is returned by Proxy.HandleSCTP when no upstream address
// accepted the association; each failed attempt is logged as a warning.
var ErrNoUpstream = errors.New("no upstream reachable")

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	proxy [<upstreams...>] {
//		upstream <dial addresses...> [{
//			max_associations <n>
//		}]
//		lb_policy first|round_robin|least_associations|random|client_ip_hash
//		dial_timeout <duration>
//		fail_duration <duration>
//		max_fails <n>
//		abort_within <duration>
//		health_interval <duration>
//		health_timeout <duration>
//		health_fails <n>
//		health_passes <n>
//		tuning {
//			<option> <value>
//		}
//	}
//
// Each same-line argument is an upstream with one dial address; an
// upstream line in the block is one upstream with several addresses.
// fail_duration, max_fails and abort_within are the passive health checks;
// any health_* option turns the active ones on. The tuning options are
// Tuning's JSON names (see the sctp server's tuning).
func (p *Proxy) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // handler name
	for d.NextArg() {
		p.Upstreams = append(p.Upstreams, &Upstream{Dial: []string{d.Val()}})
	}
	duration := func() (caddy.Duration, error) {
		name := d.Val()
		if !d.NextArg() {
			return 0, d.ArgErr()
		}
		dur, err := caddy.ParseDuration(d.Val())
		if err != nil {
			return 0, d.Errf("%s %q: %v", name, d.Val(), err)
		}
		if d.NextArg() {
			return 0, d.ArgErr()
		}
		return caddy.Duration(dur), nil
	}
	number := func() (int, error) {
		name := d.Val()
		if !d.NextArg() {
			return 0, d.ArgErr()
		}
		n, err := strconv.Atoi(d.Val())
		if err != nil || n < 0 {
			return 0, d.Errf("%s %q: want a number, 0 or more", name, d.Val())
		}
		if d.NextArg() {
			return 0, d.ArgErr()
		}
		return n, nil
	}
	passive := func() *PassiveHealthChecks {
		if p.HealthChecks == nil {
			p.HealthChecks = new(HealthChecks)
		}
		if p.HealthChecks.Passive == nil {
			p.HealthChecks.Passive = new(PassiveHealthChecks)
		}
		return p.HealthChecks.Passive
	}
	active := func() *ActiveHealthChecks {
		if p.HealthChecks == nil {
			p.HealthChecks = new(HealthChecks)
		}
		if p.HealthChecks.Active == nil {
			p.HealthChecks.Active = new(ActiveHealthChecks)
		}
		return p.HealthChecks.Active
	}
	var err error
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "upstream":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			u := &Upstream{Dial: args}
			for un := d.Nesting(); d.NextBlock(un); {
				if d.Val() != "max_associations" {
					return d.Errf("unrecognized upstream option %q (want max_associations)", d.Val())
				}
				if u.MaxAssociations, err = number(); err != nil {
					return err
				}
			}
			p.Upstreams = append(p.Upstreams, u)
		case "lb_policy":
			if !d.NextArg() {
				return d.ArgErr()
			}
			p.LoadBalancing = &LoadBalancing{Selection: d.Val()}
			if err := p.LoadBalancing.validate(); err != nil {
				return d.Errf("lb_policy: %v", err)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		case "dial_timeout":
			if p.DialTimeout, err = duration(); err != nil {
				return err
			}
		case "fail_duration":
			if passive().FailDuration, err = duration(); err != nil {
				return err
			}
		case "max_fails":
			if passive().MaxFails, err = number(); err != nil {
				return err
			}
		case "abort_within":
			if passive().AbortWithin, err = duration(); err != nil {
				return err
			}
		case "health_interval":
			if active().Interval, err = duration(); err != nil {
				return err
			}
		case "health_timeout":
			if active().Timeout, err = duration(); err != nil {
				return err
			}
		case "health_fails":
			if active().Fails, err = number(); err != nil {
				return err
			}
		case "health_passes":
			if active().Passes, err = number(); err != nil {
				return err
			}
		case "tuning":
			t, err := unmarshalTuning(d)
			if err != nil {
				return err
			}
			p.Tuning = t
		default:
			return d.Errf("unrecognized proxy option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ Handler               = (*Proxy)(nil)
	_ AssociationHandler    = (*Proxy)(nil)
	_ caddy.Provisioner     = (*Proxy)(nil)
	_ caddy.Validator       = (*Proxy)(nil)
	_ caddy.CleanerUpper    = (*Proxy)(nil)
	_ caddyfile.Unmarshaler = (*Proxy)(nil)
)
