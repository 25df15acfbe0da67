package sctpapp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
	"github.com/caddy-netns/caddy-netns/kernel/sctprelay"
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
	// Upstreams are tried in order, and each upstream's dial addresses in
	// order, until one accepts the association. When none does, the
	// client's association is aborted. Required: at least one.
	Upstreams []*Upstream `json:"upstreams,omitempty"`

	// DialTimeout bounds each attempt to reach an upstream address
	// (INIT and COOKIE exchange). Default: 5s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// Tuning sets SCTP parameters of the upstream associations, applied
	// before each dial (all of Tuning's fields apply here). Default: none
	// (the kernel's values; the streams follow the client's).
	Tuning *Tuning `json:"tuning,omitempty"`

	logger *zap.Logger
	policy *allow.Policy
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
	for i, u := range p.Upstreams {
		if u == nil {
			return fmt.Errorf("upstreams[%d]: empty", i)
		}
		u.targets = u.targets[:0]
		for j, d := range u.Dial {
			if strings.Contains(d, "{") {
				// Resolved per association; the allow list is checked
				// when the namespace is opened.
				u.targets = append(u.targets, target{template: d, addr: d})
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
		}
	}
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
	var repl *caddy.Replacer
	tried := 0
	for _, u := range p.Upstreams {
		for _, t := range u.targets {
			tried++
			if t.template != "" {
				if repl == nil {
					repl = a.Replacer()
				}
				addr := repl.ReplaceKnown(t.template, "")
				a.release() // a first message read for {sctp.ppid} goes to the upstream
				resolved, perr := parseTarget(addr)
				if perr != nil {
					p.logger.Warn("upstream address after placeholders", zap.Stringer("remote", c.RemoteAddr()),
						zap.String("upstream", t.template), zap.Error(perr))
					continue
				}
				t = resolved
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(p.DialTimeout))
			up, err := dial(ctx, p.policy, t, cfg)
			cancel()
			if err != nil {
				p.logger.Warn("upstream unreachable", zap.Stringer("remote", c.RemoteAddr()),
					zap.Stringer("upstream", t), zap.Error(err))
				continue
			}
			res := sctprelay.Relay(c, up)
			p.logger.Debug("relay ended", zap.Stringer("remote", c.RemoteAddr()), zap.Stringer("upstream", t),
				zap.Int64("messages_up", res.AToB.Messages), zap.Int64("bytes_up", res.AToB.Bytes),
				zap.Int64("messages_down", res.BToA.Messages), zap.Int64("bytes_down", res.BToA.Bytes))
			return res.Err
		}
	}
	_ = c.Abort()
	return fmt.Errorf("%w (%d addresses tried), association aborted", ErrNoUpstream, tried)
}

// ErrNoUpstream is returned by Proxy.HandleSCTP when no upstream address
// accepted the association; each failed attempt is logged as a warning.
var ErrNoUpstream = errors.New("no upstream reachable")

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	proxy [<upstreams...>] {
//		upstream <dial addresses...>
//		dial_timeout <duration>
//		tuning {
//			<option> <value>
//		}
//	}
//
// Each same-line argument is an upstream with one dial address; an
// upstream line in the block is one upstream with several addresses. The
// tuning options are Tuning's JSON names (see the sctp server's tuning).
func (p *Proxy) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // handler name
	for d.NextArg() {
		p.Upstreams = append(p.Upstreams, &Upstream{Dial: []string{d.Val()}})
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "upstream":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			p.Upstreams = append(p.Upstreams, &Upstream{Dial: args})
		case "dial_timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("dial_timeout %q: %v", d.Val(), err)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			p.DialTimeout = caddy.Duration(dur)
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
	_ caddyfile.Unmarshaler = (*Proxy)(nil)
)
