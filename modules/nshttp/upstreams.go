package nshttp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func init() {
	caddy.RegisterModule(Upstreams{})
}

// Upstreams is a dynamic upstream source
// (http.reverse_proxy.upstreams.netns) that gives each request the
// upstream its placeholders resolve to, such as
// netns/{http.request.netns.name}/tcp/10.0.0.1:80. Unlike a placeholder
// in a static upstream, whose health is one record shared by every
// namespace, each resolved address is an upstream of its own to Caddy:
// passive health checks (fail_duration, max_fails,
// unhealthy_request_count) count per namespace, so one namespace's
// failing backend never marks the others down. Use it with the netns
// transport. Caddy runs no active health checks on dynamic upstreams.
type Upstreams struct {
	// Dial is the upstream address, with placeholders. Required.
	Dial string `json:"dial,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Upstreams) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.upstreams.netns",
		New: func() caddy.Module { return new(Upstreams) },
	}
}

// Provision makes the server's connections known, for the
// {http.request.netns.*} placeholders.
func (u *Upstreams) Provision(ctx caddy.Context) error {
	if u.Dial == "" {
		return errors.New("dial: missing upstream address")
	}
	u.Dial = caddy.NewReplacer().ReplaceKnown(u.Dial, "")
	track(ctx)
	return nil
}

// GetUpstreams returns the one upstream Dial resolves to for r.
func (u *Upstreams) GetUpstreams(r *http.Request) ([]*reverseproxy.Upstream, error) {
	dial := u.Dial
	if strings.Contains(dial, "{http.request.netns.") {
		if _, err := Arrival(r); err != nil {
			return nil, fmt.Errorf("upstream %q: %w", dial, err)
		}
	}
	if strings.Contains(dial, "{"+PlaceholderProxyNetns+"}") {
		if ns, ok := ProxyNetns(r); !ok || ns == "" {
			return nil, fmt.Errorf("upstream %q: the connection's PROXY header has no NETNS TLV", dial)
		}
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		dial = repl.ReplaceAll(dial, "")
	}
	return []*reverseproxy.Upstream{{Dial: dial}}, nil
}

// UnmarshalCaddyfile sets up the source from Caddyfile tokens. Syntax:
//
//	dynamic netns <address>
func (u *Upstreams) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // source name
	if !d.NextArg() {
		return d.ArgErr()
	}
	u.Dial = d.Val()
	if d.NextArg() || d.NextBlock(d.Nesting()) {
		return d.Err("dynamic netns: want one address and no block")
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Upstreams)(nil)
	_ reverseproxy.UpstreamSource = (*Upstreams)(nil)
	_ caddyfile.Unmarshaler       = (*Upstreams)(nil)
)
