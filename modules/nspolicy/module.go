// Package nspolicy is the netns app: the allow list of the network
// namespaces a config may use, enforced wherever this repository opens a
// namespace for a config (listeners, netns_proxy upstreams and their health
// checks, SCTP), and the process-wide ceiling CADDY_NETNS_ALLOW; and the
// settings of the caddy_netns_* metrics (metrics.go).
//
// The list belongs to the config: a config that is refused never changes
// what the running one may do, and a reload that narrows the list applies
// to the sockets the new config opens. Without a list (and without the
// ceiling) every namespace the process can open is allowed, as before the
// list existed.
package nspolicy

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// ModuleID is the app's name in a config's "apps".
const ModuleID = nsnetwork.PolicyApp

func init() {
	caddy.RegisterModule(new(App))
	httpcaddyfile.RegisterGlobalOption(ModuleID, parseGlobalOption)
}

// App holds the allow list of network namespaces for one config. With the
// app in a config, a listen address, upstream or any other netns address of
// that config that names a namespace outside the list is refused when the
// config loads (or, for addresses with placeholders, when they are used),
// with an error naming the namespace.
//
// Caddy's own network namespace is always allowed, however it is named:
// every config reaches it with a plain address anyway.
//
// The process-wide ceiling CADDY_NETNS_ALLOW (entries separated by spaces
// or commas), when set, must allow a namespace as well: a config can
// narrow it but never widen it.
type App struct {
	// Allow lists the namespaces this config may use. Each entry is a
	// name or a glob of names under /var/run/netns (ns1, tenant-*), an
	// absolute path or a glob of paths in which * does not cross a slash
	// (/proc/*/ns/net, /var/run/docker/netns/*), or an absolute path
	// ending in a slash for everything below a directory
	// (/var/run/docker/netns/). A name also allows the same file given by
	// path (netns//var/run/netns/ns1/... or /run/netns/ns1: /var/run and
	// /run are one). Paths are compared as written, with no other link
	// resolved: a path through another process's view of the file system
	// (/proc/<pid>/root/run/netns/ns1, /proc/<pid>/cwd/ns1) is not the
	// name ns1. The namespace then opened must be the very one (same
	// device and inode) that the entry names at that moment, looked up by
	// Caddy in its own mount namespace, in the entry's directory and
	// without following links below it. If the file a config names is a
	// symbolic link, each path it leads to must be allowed too; a
	// /proc/<pid>/ns/net path is matched as that path, never as the name
	// of the namespace it happens to be in. Default: every namespace.
	Allow []string `json:"allow,omitempty"`

	// Metrics turns the per-namespace series of the caddy_netns_*
	// metrics off or caps them (see Metrics). Default: every
	// per-namespace series, no cap.
	Metrics *Metrics `json:"metrics,omitempty"`

	list *allow.List
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  ModuleID,
		New: func() caddy.Module { return new(App) },
	}
}

// Provision compiles the allow list and checks the metrics settings; a
// bad entry fails the config.
func (a *App) Provision(caddy.Context) error {
	if err := a.Metrics.validate(); err != nil {
		return err
	}
	if a.Allow == nil {
		// No allow field: every namespace, as documented; a config
		// that only sets other settings must not become an empty list
		// that allows nothing. An explicit "allow": [] still allows
		// nothing.
		a.list = nil
		return nil
	}
	repl := caddy.NewReplacer()
	entries := make([]string, len(a.Allow))
	for i, s := range a.Allow {
		entries[i] = repl.ReplaceKnown(s, "")
	}
	l, err := allow.Compile("this config's netns allow list", entries)
	if err != nil {
		return err
	}
	a.list = l
	return nil
}

// AllowList returns the compiled allow list (nil: no list). It is how
// nsnetwork.PolicyFor finds a config's list without importing this app.
func (a *App) AllowList() *allow.List { return a.list }

// Start does nothing: the list is consulted by the modules that open
// namespaces.
func (*App) Start() error { return nil }

// Stop does nothing.
func (*App) Stop() error { return nil }

// UnmarshalCaddyfile sets up the app from Caddyfile tokens. Syntax:
//
//	netns {
//		allow <name|glob|/path|/path/glob|/dir/>...
//		metrics {
//			per_namespace on|off|<max series>
//		}
//	}
//
// allow may be repeated; the entries add up. per_namespace on (the
// default) exports every per-namespace series, off none, a number at most
// that many per scrape.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "allow":
			if d.CountRemainingArgs() == 0 {
				return d.ArgErr()
			}
			for d.NextArg() {
				if err := allow.CheckEntry(d.Val()); err != nil {
					return d.Errf("netns allow %q: %v", d.Val(), err)
				}
				a.Allow = append(a.Allow, d.Val())
			}
		case "metrics":
			if a.Metrics == nil {
				a.Metrics = new(Metrics)
			}
			if err := a.Metrics.unmarshalCaddyfile(d); err != nil {
				return err
			}
		default:
			return d.Errf("unknown netns option %q", d.Val())
		}
	}
	return nil
}

// parseGlobalOption turns the global option into the netns app; several
// netns blocks add up.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	a := new(App)
	if prev, ok := existing.(httpcaddyfile.App); ok {
		if err := json.Unmarshal(prev.Value, a); err != nil {
			return nil, d.Errf("parsing the earlier netns option: %v", err)
		}
	}
	if err := a.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: ModuleID, Value: caddyconfig.JSON(a, nil)}, nil
}

// Interface guards
var (
	_ caddy.App             = (*App)(nil)
	_ caddy.Provisioner     = (*App)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
)
