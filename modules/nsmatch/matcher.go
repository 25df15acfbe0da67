package nsmatch

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/mholt/caddy-l4/layer4"
)

func init() {
	caddy.RegisterModule(MatchNetns{})
}

// MatchNetns matches connections by the network namespace they arrived in:
// the namespace of the listening socket, as named in a netns listen address
// (netns/<namespace>/<network>/<host>:<port>). Each entry is a name under
// /var/run/netns or an absolute path to a namespace file; a name and the
// path of the same file are the same entry. An entry with * or ? is a
// pattern, as in set addresses: tenant-* matches every namespace whose
// name starts with tenant-. Connections on listeners
// outside netns addresses match no entry.
//
// JSON: "netns": ["ns1", "/var/run/netns/ns2"]
type MatchNetns []string

// CaddyModule returns the Caddy module information.
func (MatchNetns) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "layer4.matchers.netns",
		New: func() caddy.Module { return new(MatchNetns) },
	}
}

// Provision replaces global placeholders in the entries.
func (m *MatchNetns) Provision(caddy.Context) error {
	ReplaceGlobals(*m)
	return nil
}

// Validate checks that every entry is a name or an absolute path.
func (m MatchNetns) Validate() error {
	return ValidateEntries("netns", m)
}

// Match reports whether cx arrived in one of the namespaces. It also sets
// the {l4.netns.*} placeholders.
func (m MatchNetns) Match(cx *layer4.Connection) (bool, error) {
	a, err := Of(cx)
	if err != nil {
		return false, err
	}
	return a.IsAny(m), nil
}

// UnmarshalCaddyfile sets up the matcher from Caddyfile tokens. Syntax:
//
//	netns <namespace> [<namespace>...]
func (m *MatchNetns) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	entries, err := UnmarshalEntries(d)
	if err != nil {
		return err
	}
	*m = append(*m, entries...)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*MatchNetns)(nil)
	_ caddy.Validator       = MatchNetns(nil)
	_ layer4.ConnMatcher    = MatchNetns(nil)
	_ caddyfile.Unmarshaler = (*MatchNetns)(nil)
)
