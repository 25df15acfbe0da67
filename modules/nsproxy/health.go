package nsproxy

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
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
// Upstreams whose address has placeholders are not checked.
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
}

// PassiveHealthChecks remember failed connects.
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

// countFailure remembers a failed connect for FailDuration.
func (h *Handler) countFailure(u *Upstream) {
	p := u.passive
	if p == nil || p.FailDuration <= 0 {
		return
	}
	u.state.fails.Add(1)
	time.AfterFunc(time.Duration(p.FailDuration), func() { u.state.fails.Add(-1) })
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

func (h *Handler) checkAll(ctx context.Context) {
	a := h.HealthChecks.Active
	done := make(chan struct{}, len(h.Upstreams))
	n := 0
	for _, u := range h.Upstreams {
		if u.target == nil {
			continue
		}
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			t := *u.target
			if a.Port > 0 {
				host, _, _ := net.SplitHostPort(t.hostport)
				t.hostport = net.JoinHostPort(host, strconv.Itoa(a.Port))
			}
			cctx, cancel := context.WithTimeout(ctx, time.Duration(a.Timeout))
			defer cancel()
			c, err := dial(cctx, h.policy, &t)
			if err == nil {
				_ = c.Close()
			}
			if ctx.Err() != nil {
				return
			}
			log := h.logger.With(zap.String("netns", t.ns), zap.String("upstream", u.Dial), zap.String("address", t.hostport))
			if err != nil {
				log.Debug("active health check failed", zap.Error(err))
			}
			if u.state.record(err == nil, a.Rise, a.Fall) {
				if err != nil {
					log.Warn("upstream is down", zap.Error(err))
				} else {
					log.Info("upstream is up")
				}
			}
		}()
	}
	for range n {
		<-done
	}
}
