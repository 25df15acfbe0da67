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
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/mholt/caddy-l4/layer4"
	"github.com/mholt/caddy-l4/modules/l4proxy"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/kernel/relay"
	"github.com/caddy-netns/caddy-netns/modules/nsmatch"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

func init() {
	caddy.RegisterModule(&Handler{})
}

// Handler proxies layer4 connections (TCP and UDP) to upstreams that may be
// in other network namespaces. For each connection the load balancing
// policy picks an available upstream, and a failed connect moves on to the
// next one. An upstream with several addresses is connected to at all of
// them, as caddy-l4's proxy does (mirror.go).
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

	// UDPQuarantine is how long the upstream socket of an ended UDP flow
	// stays open, discarding late replies, before it is closed. A flow
	// ends when neither side has sent for the server's idle_timeout, even
	// if the upstream still owes a reply; were its socket closed at once, the
	// next flow's socket to the same upstream could get its port, and with
	// it the late reply, although that flow may be another tenant's. Each
	// held socket is a file descriptor and a port. A negative value closes
	// at once. Default: 10s.
	UDPQuarantine caddy.Duration `json:"udp_quarantine,omitempty"`

	// UDPQuarantineMax caps how many upstream sockets of ended UDP flows
	// are held in quarantine, counting those of every handler and config
	// in the process (a reload starts new flows, so a cap per handler
	// would be multiplied by the reloads within udp_quarantine). When this
	// handler ends a flow while that many are held, the oldest is closed
	// early, which is logged (a warning) and counted
	// (caddy_netns_udp_quarantine_closed_early_total). Default: 4096.
	UDPQuarantineMax int `json:"udp_quarantine_max,omitempty"`

	handlerCompat // caddy-l4's proxy_protocol (compat.go)

	ctx        caddy.Context
	logger     *zap.Logger
	quarantine *quarantine // upstream sockets of ended UDP flows
	policy     *allow.Policy
	seen       *seenTargets // targets of placeholder upstreams the active checks follow
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
	if h.UDPQuarantine == 0 {
		h.UDPQuarantine = caddy.Duration(defaultUDPQuarantine)
	}
	if h.UDPQuarantineMax == 0 {
		h.UDPQuarantineMax = defaultUDPQuarantineMax
	}
	if h.UDPQuarantineMax < 0 {
		return fmt.Errorf("udp_quarantine_max %d: want a positive number of sockets, or 0 for the default %d", h.UDPQuarantineMax, defaultUDPQuarantineMax)
	}
	h.quarantine = newQuarantine(time.Duration(h.UDPQuarantine), h.UDPQuarantineMax, h.logger)
	if err := registerQuarantineMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("udp quarantine metrics: %w", err)
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
	if err := h.provisionCompat(ctx); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	for i, u := range h.Upstreams {
		if u == nil || u.Dial == "" {
			return fmt.Errorf("upstreams[%d]: missing dial address", i)
		}
		if err := h.provisionTarget(u, passive, repl); err != nil {
			return fmt.Errorf("upstreams[%d]: %w", i, err)
		}
		u.shadow = &l4proxy.Upstream{Dial: []string{u.Dial}, Weight: u.Weight}
		u.more = u.more[:0]
		for j, addr := range u.dialMore {
			e := &Upstream{Dial: addr, MaxConnections: u.MaxConnections, Weight: u.Weight, upstreamCompat: u.upstreamCompat}
			e.localsSet, e.dialMore = nil, nil
			if err := h.provisionTarget(e, passive, repl); err != nil {
				return fmt.Errorf("upstreams[%d]: dial[%d]: %w", i, j+1, err)
			}
			u.more = append(u.more, e)
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
		dials := make([]string, len(h.Upstreams))
		for i, u := range h.Upstreams {
			dials[i] = u.Dial
		}
		h.seen = newSeenTargets(10*time.Duration(a.Interval), strings.Join(dials, "\x00"))
		go h.activeHealthChecker(ctx)
	}
	return nil
}

// provisionTarget parses u's address; a static one gets its target and
// state.
func (h *Handler) provisionTarget(u *Upstream, passive *PassiveHealthChecks, repl *caddy.Replacer) error {
	u.Dial = repl.ReplaceKnown(u.Dial, "")
	if !strings.Contains(u.Dial, "{") {
		t, err := parseTarget(u.Dial)
		if err != nil {
			return err
		}
		if t.ns != "" {
			if err := h.policy.Allows(t.ns); err != nil {
				return fmt.Errorf("upstream %q: namespace %q: %w", u.Dial, t.ns, err)
			}
		}
		u.target = t
		u.state = holdState(keyOf(t))
		if !u.localsDyn && len(u.locals) > 0 {
			u.localsSet = u.localsFor(t, nil)
		}
	}
	u.arrival = strings.Contains(u.Dial, "{"+nsmatch.PlaceholderName+"}")
	u.passive = passive
	if passive != nil && u.MaxConnections == 0 {
		u.MaxConnections = passive.UnhealthyConnectionCount
	}
	return nil
}

// Cleanup releases the upstreams' shared state. A connection still being
// handled keeps using it; it is only no longer shared.
func (h *Handler) Cleanup() error {
	for _, u := range h.Upstreams {
		if u == nil {
			continue
		}
		for _, e := range append([]*Upstream{u}, u.more...) {
			if e.state != nil && !e.released {
				e.released = true
				e.state.Release()
			}
		}
	}
	h.seen.close()
	return nil
}

// Handle proxies cx to an upstream. Its log lines carry the namespace the
// connection arrived in (netns) and the upstream.
func (h *Handler) Handle(cx *layer4.Connection, _ layer4.Handler) error {
	// Nothing here is computed unless a line is logged or a placeholder is
	// read: short connections are dominated by such per-connection work.
	log := connLog{h: h, cx: cx}
	nsmatch.Provide(cx, log.arrivalUnknown)

	c, up, more, err := h.connect(cx, log)
	if err != nil {
		return fmt.Errorf("netns %q: %s connection from %s: %w", arrivalName{cx}, cx.LocalAddr().Network(), cx.RemoteAddr(), err)
	}
	t := c.t
	defer c.release()
	defer c.st.Sessions.Add(-1)
	if len(more) > 0 {
		rawMore := slices.Clone(more)
		defer h.closeMore(&c, rawMore, more)
	}
	raw := up
	defer func() { h.closeUpstream(raw, up) }()
	if a := h.activeChecks(); a != nil && a.CloseIfUnhealthy {
		c.st.Track(raw)
		defer c.st.Untrack(raw)
	}
	if up, err = h.wrapUpstream(cx, c.u, t, up); err != nil {
		return fmt.Errorf("netns %q: %w", arrivalName{cx}, err)
	}
	log.t = t
	if len(more) > 0 {
		return h.mirror(cx, log, &c, up, more)
	}
	debug := log.enabled(zapcore.DebugLevel)

	var start time.Time
	if debug {
		start = time.Now()
	}
	var res relay.Result
	splice := false
	if upTCP, ok := up.(*net.TCPConn); ok {
		down, pending, err := rawTCP(cx)
		if err != nil {
			return fmt.Errorf("netns %q: reading matched bytes: %w", arrivalName{cx}, err)
		}
		if down != nil {
			splice = true
			if len(pending) > 0 {
				if _, err := upTCP.Write(pending); err != nil {
					return fmt.Errorf("netns %q: upstream %s: %w", arrivalName{cx}, t, err)
				}
			}
			if debug {
				log.logger().Debug("proxying", zap.Bool("splice", true))
			}
			res = relay.Pipe(down, upTCP)
			res.Up += int64(len(pending))
		}
	}
	if !splice {
		if debug {
			log.logger().Debug("proxying", zap.Bool("splice", false))
		}
		if uc, ok := raw.(*net.UDPConn); ok {
			res = pipeUDP(downConn{cx}, up, uc)
		} else {
			res = relay.Pipe(downConn{cx}, up)
		}
	}
	if debug {
		log.logger().Debug("connection closed",
			zap.Int64("bytes_up", res.Up), zap.Int64("bytes_down", res.Down),
			zap.Duration("duration", time.Since(start)), zap.Error(res.Err))
	}
	return nil
}

// closeUpstream closes up, the connection to the upstream, whose socket is
// raw. A UDP socket is quarantined instead (see udpflow.go); a wrapper
// around it is left to the collector, since closing it would close the
// socket.
func (h *Handler) closeUpstream(raw, up net.Conn) {
	if uc, ok := raw.(*net.UDPConn); ok {
		h.quarantine.add(uc)
		return
	}
	_ = up.Close()
}

// connLog is a connection's logger, made only when a line is logged: its
// fields (arrival namespace, addresses, upstream) cost allocations that
// short connections would otherwise pay for nothing. Check enabled before
// building a line's own fields.
type connLog struct {
	h  *Handler
	cx *layer4.Connection
	t  *target // the upstream, once chosen
}

func (l connLog) enabled(lvl zapcore.Level) bool { return l.h.logger.Core().Enabled(lvl) }

func (l connLog) logger() *zap.Logger {
	fields := []zap.Field{zap.Stringer("netns", arrivalName{l.cx}),
		zap.String("network", l.cx.LocalAddr().Network()),
		zap.Stringer("local", l.cx.LocalAddr()),
		zap.Stringer("remote", l.cx.RemoteAddr())}
	if l.t != nil {
		fields = append(fields, zap.Stringer("upstream", l.t))
	}
	return l.h.logger.With(fields...)
}

func (l connLog) arrivalUnknown(err error) {
	l.logger().Warn("arrival namespace unknown; {l4.netns.*} placeholders are empty", zap.Error(err))
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
// try_interval for try_duration. The candidate returned has its connection
// counted and, if held, must be released by the caller. With several
// addresses (c.more), more holds their connections, in order, each
// counted likewise.
func (h *Handler) connect(cx *layer4.Connection, log connLog) (c cand, up net.Conn, more []net.Conn, err error) {
	var buf [4]cand // on the stack for up to 4 upstreams
	cands, lastErr := h.resolve(cx, log, buf[:0])
	chosen := -1
	defer func() {
		for i := range cands {
			if i != chosen {
				cands[i].release()
			}
		}
	}()
	start := time.Now()
	for {
		skip := map[*Upstream]bool{}
		for {
			i := h.pick(cx, cands, skip)
			if i < 0 {
				break
			}
			c := &cands[i]
			skip[c.u] = true
			c.st.Sessions.Add(1)
			ctx, cancel := context.WithTimeout(h.ctx, time.Duration(h.DialTimeout))
			up, err := dial(ctx, h.policy, c.t, c.locals(cx)...)
			failed := c
			if err == nil && len(c.more) > 0 {
				more, failed, err = h.connectMore(ctx, cx, c)
				if err != nil {
					_ = up.Close()
				}
			}
			cancel()
			if err == nil {
				chosen = i
				return *c, up, more, nil
			}
			c.st.Sessions.Add(-1)
			lastErr = fmt.Errorf("upstream %s: %w", failed.t, err)
			log.logger().Warn("connecting to upstream failed; trying the next", zap.String("upstream", failed.t.String()), zap.Error(err))
			h.countFailure(failed)
		}
		if lastErr == nil {
			lastErr = errors.New("no upstream available")
		}
		if time.Since(start) >= time.Duration(h.LoadBalancing.TryDuration) {
			return cand{}, nil, nil, lastErr
		}
		select {
		case <-time.After(time.Duration(h.LoadBalancing.TryInterval)):
		case <-h.ctx.Done():
			return cand{}, nil, nil, lastErr
		}
	}
}

// resolve appends to cands the upstreams as targets for cx: placeholders
// replaced, and each target's state held for the connection. An upstream
// whose address does not parse is left out; the error is returned.
func (h *Handler) resolve(cx *layer4.Connection, log connLog, cands []cand) ([]cand, error) {
	var repl *caddy.Replacer
	var lastErr error
	for _, u := range h.Upstreams {
		c, ok := h.resolveOne(cx, log, u, &repl, &lastErr)
		if !ok {
			continue
		}
		for _, e := range u.more {
			m, ok := h.resolveOne(cx, log, e, &repl, &lastErr)
			if !ok {
				c.release()
				break
			}
			c.more = append(c.more, m)
		}
		if len(c.more) == len(u.more) {
			cands = append(cands, c)
		}
	}
	return cands, lastErr
}

// resolveOne resolves u for cx; false when its address does not parse
// (logged, and kept in lastErr).
func (h *Handler) resolveOne(cx *layer4.Connection, log connLog, u *Upstream, repl **caddy.Replacer, lastErr *error) (cand, bool) {
	if u.target != nil {
		return cand{u: u, t: u.target, st: u.state}, true
	}
	if *repl == nil {
		*repl = cx.Replacer()
	}
	t, err := parseTarget((*repl).ReplaceAll(u.Dial, ""))
	if err != nil {
		*lastErr = err
		log.logger().Warn("upstream address", zap.String("upstream", u.Dial), zap.Error(err))
		return cand{}, false
	}
	if u.arrival && t.ns != "" {
		// The upstream names the arrival namespace: dial into that
		// very namespace, not whatever has its name by now.
		if arr, err := nsmatch.Of(cx); err == nil && arr.Name == t.ns {
			t.id = arr.ID
		}
	}
	k := keyOf(t)
	st := holdState(k)
	h.seen.note(u, t, k, st)
	return cand{u: u, t: t, st: st, held: true}, true
}

// Interface guards
var (
	_ caddy.Provisioner     = (*Handler)(nil)
	_ caddy.CleanerUpper    = (*Handler)(nil)
	_ layer4.NextHandler    = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
