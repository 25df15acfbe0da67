package nshttp

import (
	"errors"
	"net/http"

	"github.com/caddy-netns/caddy-netns/modules/nsmatch"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(MatchNetns{})
}

// MatchNetns matches requests by the network namespace they arrived in:
// the namespace of the listening socket, as named in a netns listen
// address (netns/<namespace>/<network>/<host>:<port>, or a namespace set
// such as netns/tenant-*/tcp/:80). Each entry is a name under
// /var/run/netns or an absolute path to a namespace file; an entry with *
// or ? is a pattern (tenant-* matches every namespace whose name starts
// with tenant-). Requests on listeners outside netns addresses, and HTTP/3
// requests, match no entry. Matching also sets the
// {http.request.netns.*} placeholders.
//
// JSON: "netns": ["ns1", "/var/run/netns/ns2"]
type MatchNetns []string

// CaddyModule returns the Caddy module information.
func (MatchNetns) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.matchers.netns",
		New: func() caddy.Module { return new(MatchNetns) },
	}
}

// Provision replaces global placeholders in the entries and makes the
// server's connections known to the matcher.
func (m *MatchNetns) Provision(ctx caddy.Context) error {
	nsmatch.ReplaceGlobals(*m)
	track(ctx)
	return nil
}

// Validate checks that every entry is a name or an absolute path.
func (m MatchNetns) Validate() error {
	return nsmatch.ValidateEntries("netns", m)
}

// MatchWithError reports whether r arrived in one of the namespaces.
func (m MatchNetns) MatchWithError(r *http.Request) (bool, error) {
	a, err := Arrival(r)
	switch {
	case errors.Is(err, ErrNoConn):
		return false, nil
	case err != nil:
		return false, err
	}
	return a.IsAny(m), nil
}

// Match is MatchWithError without the error.
func (m MatchNetns) Match(r *http.Request) bool {
	ok, _ := m.MatchWithError(r)
	return ok
}

// UnmarshalCaddyfile sets up the matcher from Caddyfile tokens. Syntax:
//
//	netns <namespace> [<namespace>...]
func (m *MatchNetns) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	entries, err := nsmatch.UnmarshalEntries(d)
	if err != nil {
		return err
	}
	*m = append(*m, entries...)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner                 = (*MatchNetns)(nil)
	_ caddy.Validator                   = MatchNetns(nil)
	_ caddyhttp.RequestMatcherWithError = MatchNetns(nil)
	_ caddyfile.Unmarshaler             = (*MatchNetns)(nil)
)
