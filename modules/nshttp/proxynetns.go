package nshttp

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-netns/caddy-netns/modules/nsmatch"
)

func init() {
	caddy.RegisterModule(MatchProxyNetns{})
}

// PlaceholderProxyNetns is the namespace named by the NETNS TLV (type
// 0x30) of the PROXY protocol v2 header the request's connection came
// with (read by Caddy's proxy_protocol listener wrapper), as HAProxy sends
// it; empty when there was none. Set by the proxy_protocol_netns matcher
// and the netns transport.
const PlaceholderProxyNetns = "http.request.proxy_protocol.netns"

// ProxyNetns returns the namespace named in the NETNS TLV of the PROXY
// header r's connection came with, and sets {http.request.proxy_protocol.netns}.
func ProxyNetns(r *http.Request) (string, bool) {
	ci, ok := r.Context().Value(connKey{}).(*connInfo)
	if !ok {
		return "", false
	}
	ns, ok := nsmatch.ProxyNetns(nsmatch.ProxyHeader(ci.conn))
	if repl, rok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); rok {
		repl.Set(PlaceholderProxyNetns, ns)
	}
	return ns, ok
}

// MatchProxyNetns matches requests by the namespace named in the NETNS TLV
// of the PROXY protocol v2 header of their connection (as HAProxy's
// bind ... namespace sends it), so that a chain of proxies keeps the
// namespace the client came from. Entries are as for the netns matcher.
// Matching also sets {http.request.proxy_protocol.netns}.
//
// JSON: "proxy_protocol_netns": ["tenant-*"]
type MatchProxyNetns []string

// CaddyModule returns the Caddy module information.
func (MatchProxyNetns) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.matchers.proxy_protocol_netns",
		New: func() caddy.Module { return new(MatchProxyNetns) },
	}
}

// Provision makes the server's connections known to the matcher.
func (m *MatchProxyNetns) Provision(ctx caddy.Context) error {
	track(ctx)
	return nil
}

// Validate checks that every entry is a name or an absolute path.
func (m MatchProxyNetns) Validate() error {
	return nsmatch.ValidateEntries("proxy_protocol_netns", m)
}

// MatchWithError reports whether r's PROXY header names one of the
// namespaces.
func (m MatchProxyNetns) MatchWithError(r *http.Request) (bool, error) {
	ns, _ := ProxyNetns(r)
	return nsmatch.MatchesNetns(ns, m), nil
}

// Match is MatchWithError without the error.
func (m MatchProxyNetns) Match(r *http.Request) bool {
	ok, _ := m.MatchWithError(r)
	return ok
}

// UnmarshalCaddyfile sets up the matcher from Caddyfile tokens. Syntax:
//
//	proxy_protocol_netns <namespace> [<namespace>...]
func (m *MatchProxyNetns) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	entries, err := nsmatch.UnmarshalEntries(d)
	if err != nil {
		return err
	}
	*m = append(*m, entries...)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner                 = (*MatchProxyNetns)(nil)
	_ caddy.Validator                   = MatchProxyNetns(nil)
	_ caddyhttp.RequestMatcherWithError = MatchProxyNetns(nil)
	_ caddyfile.Unmarshaler             = (*MatchProxyNetns)(nil)
)
