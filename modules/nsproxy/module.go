// Package nsproxy is a layer4 proxy handler (layer4.handlers.netns_proxy)
// whose upstreams may live in other network namespaces, named with the
// listen grammar: netns/<namespace>/<network>/<ip>:<port>.
//
// Only the upstream socket's creation happens in the namespace; the
// connect and all I/O run in the netpoller, so no OS thread is held per
// connection. Between plain TCP connections bulk transfers are moved by
// the kernel (splice), small messages through a pooled buffer; see package
// relay.
package nsproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/mholt/caddy-l4/layer4"
	"github.com/mholt/caddy-l4/modules/l4proxy"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/kernel/relay"
	"github.com/caddy-netns/caddy-netns/modules/nsmatch"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

func init() {
	caddy.RegisterModule(&Handler{})
}

// Handler proxies layer4 connections (TCP and UDP) to upstreams that may be
// in other network namespaces. Each upstream has one address; for each
// connection the load balancing policy picks an available upstream, and a
// failed connect moves on to the next one.
type Handler struct {
	// Upstreams are the backends. Required: at least one.
	Upstreams []*Upstream `json:"upstreams,omitempty"`

	// DialTimeout bounds each connect to an upstream. Default: 5s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// LoadBalancing chooses among the upstreams. Default: random, one
	// attempt per upstream.
	LoadBalancing *LoadBalancing `json:"load_balancing,omitempty"`

	// HealthChecks mark upstreams down and up. Default: none.
	HealthChecks *HealthChecks `json:"health_checks,omitempty"`

	ctx    caddy.Context
	logger *zap.Logger
	policy *allow.Policy
}

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "layer4.handlers.netns_proxy",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision parses the upstreams, loads the selection policy and starts the
// active health checker.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.ctx = ctx
	h.logger = ctx.Logger()
	policy, err := nsnetwork.PolicyFor(ctx)
	if err != nil {
		return err
	}
	h.policy = policy
	if h.DialTimeout == 0 {
		h.DialTimeout = caddy.Duration(5 * time.Second)
	}
	if h.LoadBalancing == nil {
		h.LoadBalancing = new(LoadBalancing)
	}
	if h.LoadBalancing.SelectionPolicyRaw != nil {
		mod, err := ctx.LoadModule(h.LoadBalancing, "SelectionPolicyRaw")
		if err != nil {
			return fmt.Errorf("load_balancing.selection: %w", err)
		}
		h.LoadBalancing.policy = mod.(l4proxy.Selector)
	} else {
		h.LoadBalancing.policy = &l4proxy.RandomSelection{}
	}
	if h.LoadBalancing.TryDuration > 0 && h.LoadBalancing.TryInterval == 0 {
		h.LoadBalancing.TryInterval = caddy.Duration(250 * time.Millisecond)
	}

	var passive *PassiveHealthChecks
	if h.HealthChecks != nil && h.HealthChecks.Passive != nil {
		passive = h.HealthChecks.Passive
		if passive.MaxFails == 0 {
			passive.MaxFails = 1
		}
	}
	if len(h.Upstreams) == 0 {
		return errors.New("no upstreams")
	}
	repl := caddy.NewReplacer()
	for i, u := range h.Upstreams {
		if u == nil || u.Dial == "" {
			return fmt.Errorf("upstreams[%d]: missing dial address", i)
		}
		u.Dial = repl.ReplaceKnown(u.Dial, "")
		if !strings.Contains(u.Dial, "{") {
			t, err := parseTarget(u.Dial)
			if err != nil {
				return fmt.Errorf("upstreams[%d]: %w", i, err)
			}
			if t.ns != "" {
				if err := h.policy.Allows(t.ns); err != nil {
					return fmt.Errorf("upstreams[%d]: upstream %q: namespace %q: %w", i, u.Dial, t.ns, err)
				}
			}
			u.target = t
		}
		st, _ := states.LoadOrStore(u.Dial, new(state))
		u.state = st.(*state)
		u.shadow = &l4proxy.Upstream{Dial: []string{u.Dial}, Weight: u.Weight}
		u.passive = passive
		if passive != nil && u.MaxConnections == 0 {
			u.MaxConnections = passive.UnhealthyConnectionCount
		}
	}

	if h.HealthChecks != nil && h.HealthChecks.Active != nil {
		a := h.HealthChecks.Active
		if a.Interval == 0 {
			a.Interval = caddy.Duration(30 * time.Second)
		}
		if a.Timeout == 0 {
			a.Timeout = caddy.Duration(5 * time.Second)
		}
		if a.Port < 0 || a.Port > 65535 {
			return fmt.Errorf("health_checks.active.port %d out of range", a.Port)
		}
		go h.activeHealthChecker(ctx)
	}
	return nil
}

// Cleanup releases the upstreams' shared state.
func (h *Handler) Cleanup() error {
	for _, u := range h.Upstreams {
		if u != nil && u.state != nil {
			_, _ = states.Delete(u.Dial)
		}
	}
	return nil
}

// Handle proxies cx to an upstream. Its log lines carry the namespace the
// connection arrived in (netns) and the upstream.
func (h *Handler) Handle(cx *layer4.Connection, _ layer4.Handler) error {
	// Nothing here is computed unless a line is logged or a placeholder is
	// read: short connections are dominated by such per-connection work.
	ns := arrivalName{cx}
	log := h.logger.WithLazy(zap.Stringer("netns", ns),
		zap.String("network", cx.LocalAddr().Network()),
		zap.Stringer("local", cx.LocalAddr()),
		zap.Stringer("remote", cx.RemoteAddr()))
	nsmatch.Provide(cx, func(err error) {
		log.Warn("arrival namespace unknown; {l4.netns.*} placeholders are empty", zap.Error(err))
	})

	u, up, t, err := h.connect(cx, log)
	if err != nil {
		return fmt.Errorf("netns %q: %s connection from %s: %w", ns, cx.LocalAddr().Network(), cx.RemoteAddr(), err)
	}
	u.state.conns.Add(1)
	defer u.state.conns.Add(-1)
	defer up.Close()
	log = log.WithLazy(zap.Stringer("upstream", t))

	start := time.Now()
	var res relay.Result
	splice := false
	if upTCP, ok := up.(*net.TCPConn); ok {
		down, pending, err := rawTCP(cx)
		if err != nil {
			return fmt.Errorf("netns %q: reading matched bytes: %w", ns, err)
		}
		if down != nil {
			splice = true
			if len(pending) > 0 {
				if _, err := upTCP.Write(pending); err != nil {
					return fmt.Errorf("netns %q: upstream %s: %w", ns, t, err)
				}
			}
			log.Debug("proxying", zap.Bool("splice", true))
			res = relay.Pipe(down, upTCP)
			res.Up += int64(len(pending))
		}
	}
	if !splice {
		log.Debug("proxying", zap.Bool("splice", false))
		res = relay.Pipe(downConn{cx}, up)
	}
	log.Debug("connection closed",
		zap.Int64("bytes_up", res.Up), zap.Int64("bytes_down", res.Down),
		zap.Duration("duration", time.Since(start)), zap.Error(res.Err))
	return nil
}

// arrivalName names the namespace a connection arrived in when it is
// printed; "" when that is unknown.
type arrivalName struct{ cx *layer4.Connection }

func (a arrivalName) String() string {
	arr, _ := nsmatch.Of(a.cx)
	return arr.Name
}

// connect picks upstreams and dials them until one answers: within an
// attempt every available upstream is tried once; attempts repeat every
// try_interval for try_duration.
func (h *Handler) connect(cx *layer4.Connection, log *zap.Logger) (*Upstream, net.Conn, *target, error) {
	repl := cx.Replacer()
	start := time.Now()
	var lastErr error
	for {
		skip := map[*Upstream]bool{}
		for {
			u := h.pick(cx, skip)
			if u == nil {
				break
			}
			skip[u] = true
			t := u.target
			if t == nil {
				var err error
				if t, err = parseTarget(repl.ReplaceAll(u.Dial, "")); err != nil {
					lastErr = err
					log.Warn("upstream address", zap.String("upstream", u.Dial), zap.Error(err))
					continue
				}
			}
			ctx, cancel := context.WithTimeout(h.ctx, time.Duration(h.DialTimeout))
			up, err := dial(ctx, h.policy, t)
			cancel()
			if err == nil {
				return u, up, t, nil
			}
			lastErr = fmt.Errorf("upstream %s: %w", t, err)
			log.Warn("connecting to upstream failed; trying the next", zap.String("upstream", t.String()), zap.Error(err))
			h.countFailure(u)
		}
		if lastErr == nil {
			lastErr = errors.New("no upstream available")
		}
		if time.Since(start) >= time.Duration(h.LoadBalancing.TryDuration) {
			return nil, nil, nil, lastErr
		}
		select {
		case <-time.After(time.Duration(h.LoadBalancing.TryInterval)):
		case <-h.ctx.Done():
			return nil, nil, nil, lastErr
		}
	}
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	netns_proxy [<upstream>...] {
//		upstream <address> [{
//			max_connections <int>
//			weight <int>
//		}]
//		dial_timeout <duration>
//
//		lb_policy <policy> [<args>]
//		lb_try_duration <duration>
//		lb_try_interval <duration>
//
//		health_interval <duration>
//		health_timeout <duration>
//		health_port <int>
//		health_rise <int>
//		health_fall <int>
//
//		fail_duration <duration>
//		max_fails <int>
//		unhealthy_connection_count <int>
//	}
//
// An address is netns/<namespace>/<network>/<ip>:<port> or
// [<network>/]<host>:<port>; placeholders are allowed.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // handler name
	for d.NextArg() {
		h.Upstreams = append(h.Upstreams, &Upstream{Dial: d.Val()})
	}
	active := func() *ActiveHealthChecks {
		if h.HealthChecks == nil {
			h.HealthChecks = new(HealthChecks)
		}
		if h.HealthChecks.Active == nil {
			h.HealthChecks.Active = new(ActiveHealthChecks)
		}
		return h.HealthChecks.Active
	}
	passive := func() *PassiveHealthChecks {
		if h.HealthChecks == nil {
			h.HealthChecks = new(HealthChecks)
		}
		if h.HealthChecks.Passive == nil {
			h.HealthChecks.Passive = new(PassiveHealthChecks)
		}
		return h.HealthChecks.Passive
	}
	lb := func() *LoadBalancing {
		if h.LoadBalancing == nil {
			h.LoadBalancing = new(LoadBalancing)
		}
		return h.LoadBalancing
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var err error
		switch opt {
		case "upstream":
			if !d.NextArg() {
				return d.ArgErr()
			}
			u := &Upstream{Dial: d.Val()}
			if d.NextArg() {
				return d.ArgErr()
			}
			for n := d.Nesting(); d.NextBlock(n); {
				switch d.Val() {
				case "max_connections":
					err = intArg(d, &u.MaxConnections)
				case "weight":
					err = intArg(d, &u.Weight)
				default:
					return d.Errf("unknown upstream option %q", d.Val())
				}
				if err != nil {
					return err
				}
			}
			h.Upstreams = append(h.Upstreams, u)
			continue
		case "dial_timeout":
			err = durationArg(d, &h.DialTimeout)
		case "lb_policy":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			mod, uerr := caddyfile.UnmarshalModule(d, "layer4.proxy.selection_policies."+name)
			if uerr != nil {
				return uerr
			}
			raw, jerr := layer4.SetModuleNameInline("policy", name, caddyconfig.JSON(mod, nil))
			if jerr != nil {
				return d.Errf("lb_policy %s: %v", name, jerr)
			}
			lb().SelectionPolicyRaw = raw
		case "lb_try_duration":
			err = durationArg(d, &lb().TryDuration)
		case "lb_try_interval":
			err = durationArg(d, &lb().TryInterval)
		case "health_interval":
			err = durationArg(d, &active().Interval)
		case "health_timeout":
			err = durationArg(d, &active().Timeout)
		case "health_port":
			err = intArg(d, &active().Port)
		case "health_rise":
			err = intArg(d, &active().Rise)
		case "health_fall":
			err = intArg(d, &active().Fall)
		case "fail_duration":
			err = durationArg(d, &passive().FailDuration)
		case "max_fails":
			err = intArg(d, &passive().MaxFails)
		case "unhealthy_connection_count":
			err = intArg(d, &passive().UnhealthyConnectionCount)
		default:
			return d.Errf("unknown netns_proxy option %q", opt)
		}
		if err != nil {
			return err
		}
		if d.NextBlock(nesting + 1) {
			return d.Errf("netns_proxy option %q: blocks are not supported", opt)
		}
	}
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	opt := d.Val()
	if !d.NextArg() {
		return d.ArgErr()
	}
	v, err := caddy.ParseDuration(d.Val())
	if err != nil {
		return d.Errf("%s: %v", opt, err)
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	*dst = caddy.Duration(v)
	return nil
}

func intArg(d *caddyfile.Dispenser, dst *int) error {
	opt := d.Val()
	if !d.NextArg() {
		return d.ArgErr()
	}
	var v int
	if _, err := fmt.Sscanf(d.Val(), "%d", &v); err != nil || fmt.Sprint(v) != d.Val() {
		return d.Errf("%s: %q is not an integer", opt, d.Val())
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	*dst = v
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*Handler)(nil)
	_ caddy.CleanerUpper    = (*Handler)(nil)
	_ layer4.NextHandler    = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
