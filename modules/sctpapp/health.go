package sctpapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/kernel/targets"
)

// HealthChecks mark upstream targets down and up.
type HealthChecks struct {
	// Active checks set up an association to every target on a timer and
	// shut it down again. Default: none.
	Active *ActiveHealthChecks `json:"active,omitempty"`

	// Passive checks count failed dials and early aborts of proxied
	// associations. Default: none.
	Passive *PassiveHealthChecks `json:"passive,omitempty"`
}

// ActiveHealthChecks set up an SCTP association (INIT, COOKIE) to each
// target of every upstream, from the target's namespace and with the
// proxy's tuning, and shut it down gracefully. A target that fails Fails
// checks in a row is skipped until it passes Passes checks in a row.
//
// Targets are the upstreams' resolved addresses: an upstream whose address
// has placeholders is one target per namespace (by identity) and address
// that associations resolved it to; those are checked from the first
// association on, and forgotten when none has resolved to them for 10
// intervals (at most 4096 are followed per proxy). Static targets keep
// their health across reloads of configs that have them.
type ActiveHealthChecks struct {
	// Interval between checks of a target. Default: 30s.
	Interval caddy.Duration `json:"interval,omitempty"`

	// Timeout bounds each check's association setup. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Fails is how many failed checks in a row mark a target down.
	// Default: 1.
	Fails int `json:"fails,omitempty"`

	// Passes is how many successful checks in a row mark it up again.
	// Default: 1.
	Passes int `json:"passes,omitempty"`
}

// PassiveHealthChecks remember failures of proxied associations per
// target (namespace identity and address, like the active checks): a
// failed dial, and with abort_within an upstream association that is
// aborted (by the upstream or for an error on its side) soon after it
// started. A target with max_fails failures remembered is skipped.
type PassiveHealthChecks struct {
	// FailDuration is how long a failure is remembered; > 0 enables
	// passive checks. Default: 0 (disabled).
	FailDuration caddy.Duration `json:"fail_duration,omitempty"`

	// MaxFails is how many remembered failures mark a target down.
	// Default: 1.
	MaxFails int `json:"max_fails,omitempty"`

	// AbortWithin counts an upstream association that is aborted within
	// this long of being set up as a failure. Default: 0 (aborts are not
	// counted).
	AbortWithin caddy.Duration `json:"abort_within,omitempty"`
}

func (h *HealthChecks) provision() error {
	if h == nil {
		return nil
	}
	if a := h.Active; a != nil {
		if a.Interval < 0 || a.Timeout < 0 || a.Fails < 0 || a.Passes < 0 {
			return errors.New("active: interval, timeout, fails and passes must not be negative")
		}
		if a.Interval == 0 {
			a.Interval = caddy.Duration(30 * time.Second)
		}
		if a.Timeout == 0 {
			a.Timeout = caddy.Duration(5 * time.Second)
		}
		a.Fails, a.Passes = max(a.Fails, 1), max(a.Passes, 1)
	}
	if pc := h.Passive; pc != nil {
		if pc.FailDuration < 0 || pc.MaxFails < 0 || pc.AbortWithin < 0 {
			return errors.New("passive: fail_duration, max_fails and abort_within must not be negative")
		}
		if pc.FailDuration == 0 {
			h.Passive = nil // disabled
			return nil
		}
		pc.MaxFails = max(pc.MaxFails, 1)
	}
	return nil
}

// passive returns the passive checks, nil when disabled.
func (p *Proxy) passive() *PassiveHealthChecks {
	if p.HealthChecks == nil {
		return nil
	}
	return p.HealthChecks.Passive
}

// countFailure remembers a failure of st's target for fail_duration.
func (p *Proxy) countFailure(st *state) {
	pc := p.passive()
	if pc == nil {
		return
	}
	st.RememberFailure(time.Duration(pc.FailDuration))
}

// maxFollowed bounds the placeholder targets one proxy's active checks
// follow.
const maxFollowed = 4096

// followed is a target the active checks check.
type followed struct {
	upstream string // as configured
	t        target
}

// follow makes the active checks check t (state st) of upstream from now
// on; a no-op without active checks.
func (p *Proxy) follow(upstream string, t target, st *state) {
	if p.HealthChecks == nil || p.HealthChecks.Active == nil {
		return
	}
	p.followed.Note(st, maxFollowed, func() followed { return followed{upstream: upstream, t: t} })
}

// checker runs the active checks until ctx (the config) is done.
func (p *Proxy) checker(ctx context.Context) {
	targets.Every(ctx, time.Duration(p.HealthChecks.Active.Interval), p.checkAll)
}

func (p *Proxy) checkAll(ctx context.Context) {
	a := p.HealthChecks.Active
	var checks []targets.Followed[followed]
	for _, u := range p.Upstreams {
		for i, t := range u.targets {
			if t.template == "" && u.states[i] != nil {
				checks = append(checks, targets.Followed[followed]{Info: followed{upstream: t.addr, t: t}, State: u.states[i]})
			}
		}
	}
	checks = append(checks, p.followed.Sweep(time.Now(), nil)...)
	targets.CheckEach(checks, func(c targets.Followed[followed]) {
		err := p.check(ctx, c.Info.t)
		if ctx.Err() != nil {
			return
		}
		log := p.logger.With(zap.String("upstream", c.Info.upstream), zap.Stringer("target", c.Info.t))
		if err != nil {
			log.Debug("active health check failed", zap.Error(err))
		}
		if c.State.Record(err == nil, a.Passes, a.Fails) {
			if err != nil {
				log.Warn("upstream is down", zap.Error(err))
			} else {
				log.Info("upstream is up")
			}
		}
	})
}

// check sets up an association to t and shuts it down.
func (p *Proxy) check(ctx context.Context, t target) error {
	cctx, cancel := context.WithTimeout(ctx, time.Duration(p.HealthChecks.Active.Timeout))
	defer cancel()
	cfg := p.Tuning.dialConfig(0, 0, 0)
	c, err := dial(cctx, p.policy, t, cfg)
	if err != nil {
		return err
	}
	if err := c.Shutdown(); err != nil {
		c.Close()
		return fmt.Errorf("shutting the check's association down: %w", err)
	}
	return c.Close()
}

// stopChecks forgets the followed targets.
func (p *Proxy) stopChecks() {
	if p.followed != nil { // nil when Provision failed early
		p.followed.Close()
	}
}
